"""How the MPC clip-and-sum travels in Flower messages (both sides agree).

- ``query.mpc_hello`` (once): every node answers whether it is compute party
  0, 1 or 2 (``-1`` otherwise), with the party's X25519 public key and the
  address its TLS listener will use.
- ``query.mpc_share`` (every round, to the training sites): the global model
  under ``"arrays"``, the training config under ``"config"`` and, under
  ``"mpc"``, the session id and the three public keys; the reply holds one
  AES-GCM package per party (the server relays them but cannot open them),
  and, from a site with a signing key, its site name (``"site"``) and one
  Ed25519 signature per package (``"signatures"``,
  :func:`~fedsec.mpc.origin.sign_packages`); under ``"metrics"``, the site's
  public metrics (its ε with local DP).
- ``query.mpc_compute`` (every round, to the three parties at once): a
  party's packages with, per package, the sender's site name and its
  signature for that party (``"sites"``, ``"signatures"``; ``""`` and
  ``b""`` for a site that sent none), the parties' addresses and the public
  clip-and-sum parameters; the reply is the party's additive output share.

The session id is fresh per round and unpredictable (63 random bits, chosen
by the server): a party computes each id at most once, and its log outlives
runs. Both sides derive the public terms from the run config with
:func:`clip_sum_config`; each site binds them into its packages and checks
them against its own policy, each party against its own.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from fedsec.config import MPCSettings
from fedsec.errors import ProtocolError
from fedsec.mpc.origin import Origin
from fedsec.mpc.params import ClipSumConfig
from fedsec.mpc.shares import PARTIES

MPC_RECORD = "mpc"
HELLO = "mpc_hello"
SHARE = "mpc_share"
COMPUTE = "mpc_compute"
NOT_A_PARTY = -1
SESSION_BITS = 63  # a ConfigRecord int is signed 64-bit


def message_type(action: str) -> str:
    """The Flower message type of an MPC action: ``query.<action>``."""
    return f"query.{action}"


def new_session() -> int:
    """A fresh, unpredictable session id in ``[0, 2^63)``."""
    return secrets.randbits(SESSION_BITS)


def clip_sum_config(settings: MPCSettings) -> ClipSumConfig:
    """The public terms a run asks for (the server's request; sites check them).

    With noise (``mpc-noise-multiplier`` z > 0) every weight is clamped to 1
    (sensitivity C) and the noise is ``z C``; without, the weight bound is
    ``mpc-max-weight``.
    """
    noisy = settings.noise_multiplier > 0
    return ClipSumConfig(
        clip_norm=settings.clip_norm,
        max_weight=1 if noisy else settings.max_weight,
        noise_std=settings.noise_multiplier * settings.clip_norm,
        frac_bits=settings.frac_bits,
    )


def share_origin(record: Mapping[str, Any]) -> tuple[str, list[bytes]]:
    """The site name and the three signatures of a share reply (server side).

    A reply without them, or with other than one signature per party, is
    relayed as unsigned (``""`` and three ``b""``): a party with a registry
    leaves it out.
    """
    site = str(record.get("site", ""))
    signatures = [bytes(s) for s in record.get("signatures", [])]
    if not site or len(signatures) != PARTIES:
        return "", [b""] * PARTIES
    return site, signatures


def relayed_origins(
    client_ids: Sequence[int], record: Mapping[str, Any]
) -> dict[int, Origin]:
    """Client id → :class:`~fedsec.mpc.origin.Origin` of a compute request.

    A request without origins gives none (a party with a registry then
    refuses the session for too few sites).

    Raises
    ------
    ProtocolError
        If there is not one site name and one signature per package.
    """
    sites = list(record.get("sites", []))
    signatures = list(record.get("signatures", []))
    if not sites and not signatures:
        return {}
    if len(sites) != len(client_ids) or len(signatures) != len(client_ids):
        raise ProtocolError(
            "need one site name and one signature per package", stage="compute"
        )
    return {
        int(c): Origin(str(site), bytes(sig))
        for c, site, sig in zip(client_ids, sites, signatures, strict=True)
        if site
    }
