"""Which registered site sent a client package: one site, one package.

The parties refuse a session of fewer than ``min-sites`` clients, but a
package is cheap to make: the parties' public keys are public, so a server can
encrypt packages of its own (zero updates) to them and pad one real site's
session up to ``min-sites``; with noise off the release is then that site's
update. This is a Sybil attack (Douceur, *The Sybil Attack*, IPTPS 2002): the
parties counted packages, not sites. The fix is the one the active variant of
secure aggregation uses (Bonawitz et al., CCS 2017, Section 6): identities
from a registry distributed out of band (:mod:`fedsec.identity`: site name →
Ed25519 verification key, one signing key per site).

Every site signs each of its three packages (:func:`sign_packages`) over
:func:`package_statement`, which binds the package's SHA-256, the party it is
for, the session, the client id and the site's name. A party that has the
registry (its own node config, never a message) keeps a package only if it is
signed by a registered site, and each site at most once per session
(:func:`authenticate`); any other package is left out, like one that does not
decrypt. So a signature cannot be moved to another package, party, session
or client id, a package relabelled with another site's name fails (that
site's key does not verify it), and a site asked twice in one session counts
once (its package with the lowest client id).

The parties then agree on the clients
(:func:`~fedsec.mpc.clip_and_sum.agree_on_clients`): a client is kept only if
all three parties hold consistent shares of it. The kept clients are a subset
of each party's authenticated packages, where every site appears at most
once, so ``min-sites`` counts distinct registered sites. What it cannot count
is honesty: a registered site that colludes with the server can still sign
packages of zeros.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fedsec.crypto.signatures import sign, verify
from fedsec.errors import CryptoError, PolicyError
from fedsec.mpc.shares import PARTIES
from fedsec.policy import SitePolicy

_LABEL = b"fedsec/mpc/package-origin/v1|"
_HEAD = struct.Struct(">BQQH")  # party, session, client id, length of the name
POLICY_KEY = "require-signed-sites"


@dataclass(frozen=True)
class Origin:
    """Who a package says it is from, as the server relays it.

    Attributes
    ----------
    site
        The sender's site name in the registry ("" if it sent none).
    signature
        Its Ed25519 signature over :func:`package_statement` (b"" if none).
    """

    site: str
    signature: bytes


def package_statement(
    package: bytes, *, party: int, session: int, client_id: int, site: str
) -> bytes:
    """The bytes a site signs for one package (the one place they are built)."""
    name = site.encode()
    head = _HEAD.pack(party, session, client_id, len(name))
    return _LABEL + head + name + hashlib.sha256(package).digest()


def sign_packages(
    signing_key: bytes,
    packages: Sequence[bytes],
    *,
    site: str,
    session: int,
    client_id: int,
) -> list[bytes]:
    """Sign the packages of one client (package ``i`` is for party ``i``)."""
    if len(packages) != PARTIES:
        raise CryptoError("a client signs exactly three packages", stage="share")
    return [
        sign(
            signing_key,
            package_statement(
                p, party=i, session=session, client_id=client_id, site=site
            ),
        )
        for i, p in enumerate(packages)
    ]


def authenticate(
    packages: Mapping[int, bytes],
    origins: Mapping[int, Origin],
    registry: Mapping[str, bytes],
    *,
    party: int,
    session: int,
) -> tuple[dict[int, bytes], list[int]]:
    """Keep the packages signed by a registered site, each site at most once.

    Packages are taken in client-id order; a site's first valid package
    counts, a later one from the same site is left out. A package without an
    origin, from a name not in ``registry`` or with a signature that does not
    verify is left out (a forged label does not use up the real site's turn).

    Returns
    -------
    tuple
        The kept packages and the sorted ids of those left out.
    """
    kept: dict[int, bytes] = {}
    rejected: list[int] = []
    seen: set[str] = set()
    for cid in sorted(packages):
        origin = origins.get(cid)
        if origin is None or origin.site in seen or origin.site not in registry:
            rejected.append(cid)
            continue
        try:
            statement = package_statement(
                packages[cid],
                party=party,
                session=session,
                client_id=cid,
                site=origin.site,
            )
            verify(registry[origin.site], statement, origin.signature)
        except (CryptoError, struct.error, UnicodeError):
            rejected.append(cid)
            continue
        seen.add(origin.site)
        kept[cid] = packages[cid]
    return kept, rejected


def require_registry(
    policy: SitePolicy, registry: Mapping[str, bytes] | None, *, node_id: int
) -> None:
    """Refuse to count unsigned packages when the policy asks for signed sites."""
    if registry is None and policy.require_signed_sites:
        raise PolicyError(
            POLICY_KEY,
            True,
            "a party without a site registry (node config 'secagg-keys-dir')",
            stage="sites",
            node_id=node_id,
        )
