"""Package origins: what a site's signature binds, and which packages a party keeps."""

from __future__ import annotations

import itertools

import pytest

from fedsec.crypto.signatures import generate_signing_key, verify, verify_key_of
from fedsec.errors import CryptoError, PolicyError
from fedsec.mpc.origin import (
    Origin,
    authenticate,
    package_statement,
    require_registry,
    sign_packages,
)
from fedsec.policy import SitePolicy

SESSION = 77
SITES = ["site0", "site1", "site2"]
KEYS = {s: generate_signing_key() for s in SITES}
REGISTRY = {s: verify_key_of(k) for s, k in KEYS.items()}


def _signed(site: str, client_id: int, session: int = SESSION):
    """Three distinct packages of one client, and their signatures."""
    packages = [f"{site}|{client_id}|{i}".encode() * 10 for i in range(3)]
    sigs = sign_packages(
        KEYS[site], packages, site=site, session=session, client_id=client_id
    )
    return packages, sigs


FIELDS = {
    "package": dict(package=b"another package"),
    "party": dict(party=2),
    "session": dict(session=SESSION + 1),
    "client id": dict(client_id=8),
    "site": dict(site="site1"),
}


@pytest.mark.parametrize("changed", sorted(FIELDS))
def test_the_statement_binds_every_field(changed: str) -> None:
    base = dict(package=b"package", party=1, session=SESSION, client_id=7)
    statement = package_statement(**base, site="site0")
    signature = sign_packages(
        KEYS["site0"],
        [b"x", b"package", b"y"],
        site="site0",
        session=SESSION,
        client_id=7,
    )[1]
    verify(REGISTRY["site0"], statement, signature)
    other = package_statement(**{**base, "site": "site0", **FIELDS[changed]})
    assert other != statement
    with pytest.raises(CryptoError):
        verify(REGISTRY["site0"], other, signature)


def test_statements_of_different_fields_never_collide() -> None:
    """The name is length-prefixed: no two (site, package) splits give one statement."""
    a = package_statement(b"x", party=0, session=1, client_id=2, site="ab")
    b = package_statement(b"x", party=0, session=1, client_id=2, site="a")
    assert a != b
    statements = {
        package_statement(pkg, party=p, session=s, client_id=c, site=site)
        for pkg, p, s, c, site in itertools.product(
            [b"", b"a"], range(3), [0, 1], [0, 1], ["site0", "site1"]
        )
    }
    assert len(statements) == 2 * 3 * 2 * 2 * 2


def test_a_client_signs_exactly_three_packages() -> None:
    with pytest.raises(CryptoError):
        sign_packages(KEYS["site0"], [b"a", b"b"], site="site0", session=1, client_id=0)


def _relayed(party: int, clients: dict[int, tuple[str, int]]):
    """Packages and origins at ``party``: cid -> (signing site, signed as cid)."""
    packages, origins = {}, {}
    for cid, (site, signed_as) in clients.items():
        pk, sigs = _signed(site, signed_as)
        packages[cid] = pk[party]
        origins[cid] = Origin(site, sigs[party])
    return packages, origins


@pytest.mark.parametrize("party", range(3))
def test_honest_packages_of_registered_sites_are_kept(party: int) -> None:
    packages, origins = _relayed(party, {c: (f"site{c}", c) for c in range(3)})
    kept, rejected = authenticate(
        packages, origins, REGISTRY, party=party, session=SESSION
    )
    assert kept == packages
    assert rejected == []


def _forgeries():
    """(name, how to alter client 1's package or origin at party 0)."""
    server_key = generate_signing_key()
    pk, sigs = _signed("site1", 1)

    def ghost(packages, origins):
        sig = sign_packages(server_key, pk, site="ghost", session=SESSION, client_id=1)
        origins[1] = Origin("ghost", sig[0])

    def registered_name_server_key(packages, origins):
        packages[1] = b"zeros made up by the server"
        sig = sign_packages(
            server_key,
            [packages[1], b"", b""],
            site="site1",
            session=SESSION,
            client_id=1,
        )
        origins[1] = Origin("site1", sig[0])

    def relabelled(packages, origins):
        origins[1] = Origin("site2", origins[1].signature)

    def other_party(packages, origins):
        origins[1] = Origin("site1", sigs[2])

    def other_package(packages, origins):
        packages[1] = b"another package under site1's signature"

    def other_session(packages, origins):
        old, old_sigs = _signed("site1", 1, session=SESSION - 1)
        packages[1], origins[1] = old[0], Origin("site1", old_sigs[0])

    def unsigned(packages, origins):
        del origins[1]

    def truncated_signature(packages, origins):
        origins[1] = Origin("site1", origins[1].signature[:32])

    return {
        f.__name__: f
        for f in (
            ghost,
            registered_name_server_key,
            relabelled,
            other_party,
            other_package,
            other_session,
            unsigned,
            truncated_signature,
        )
    }


@pytest.mark.parametrize("forgery", sorted(_forgeries()))
def test_a_forged_origin_is_left_out(forgery: str) -> None:
    packages, origins = _relayed(0, {0: ("site0", 0), 1: ("site1", 1), 2: ("site2", 2)})
    _forgeries()[forgery](packages, origins)
    kept, rejected = authenticate(packages, origins, REGISTRY, party=0, session=SESSION)
    assert rejected == [1]
    assert sorted(kept) == [0, 2]


def test_a_package_moved_to_another_client_id_is_left_out() -> None:
    packages, origins = _relayed(0, {0: ("site0", 0), 5: ("site1", 1)})
    kept, rejected = authenticate(packages, origins, REGISTRY, party=0, session=SESSION)
    assert (sorted(kept), rejected) == ([0], [5])


def test_a_site_counts_once_per_session_its_first_valid_package() -> None:
    # site0 signed as clients 3 and 4 (the server asked it twice); client 1
    # is a forged package labelled site0 that must not use up its turn
    packages, origins = _relayed(
        0, {1: ("site1", 1), 3: ("site0", 3), 4: ("site0", 4), 6: ("site2", 6)}
    )
    packages[0] = b"forged"
    origins[0] = Origin("site0", origins[3].signature)
    kept, rejected = authenticate(packages, origins, REGISTRY, party=0, session=SESSION)
    assert sorted(kept) == [1, 3, 6]
    assert rejected == [0, 4]


def test_odd_relayed_values_are_left_out_not_raised() -> None:
    packages, origins = _relayed(0, {0: ("site0", 0)})
    packages[-1] = packages[2**64] = b"x"
    origins[-1] = origins[2**64] = origins[0]
    registry = {**REGISTRY, "\udcff": b"\x00" * 32}
    packages[9], origins[9] = b"y", Origin("\udcff", b"\x00" * 64)
    kept, rejected = authenticate(packages, origins, registry, party=0, session=SESSION)
    assert sorted(kept) == [0]
    assert rejected == [-1, 9, 2**64]


def test_a_policy_that_requires_signed_sites_needs_a_registry() -> None:
    strict = SitePolicy.from_node_config(
        {"policy-modes": "mpc", "policy-require-signed-sites": "true"}
    )
    assert strict.require_signed_sites
    with pytest.raises(PolicyError) as info:
        require_registry(strict, None, node_id=1)
    assert info.value.key == "require-signed-sites"
    assert "policy-require-signed-sites=True" in str(info.value)
    assert "secagg-keys-dir" in str(info.value)
    require_registry(strict, REGISTRY, node_id=1)
    require_registry(SitePolicy(modes=frozenset({"mpc"})), None, node_id=1)
