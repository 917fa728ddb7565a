"""Play a server that swaps a compute party's key: every site refuses to share.

Clients encrypt their shares to the three parties' X25519 keys, which the
server relays. Each key comes with the party's signature by its TLS key and
the party's certificate; a site checks them against the parties' CA before it
encrypts anything.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from flwr.app import ConfigRecord

from clients.mpc_handlers import checked_party_keys
from fedsec.errors import ConfigError, CryptoError
from fedsec.mpc.keys import generate_party_keys
from fedsec.mpc.tls import (
    attest_party_key,
    make_throwaway_pki,
    verify_party_keys,
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("mpc-tls")
    identities = make_throwaway_pki(folder)
    keys = list(generate_party_keys()[0].public_keys)
    attested = [attest_party_key(identities[i], i, keys[i]) for i in range(3)]
    certs = [c for c, _ in attested]
    sigs = [s for _, s in attested]
    return folder, keys, certs, sigs


def test_genuine_keys_are_accepted(pki) -> None:
    folder, keys, certs, sigs = pki
    verify_party_keys(folder / "ca.pem", keys, certs, sigs)


def test_a_swapped_key_is_refused(pki) -> None:
    folder, keys, certs, sigs = pki
    own = list(generate_party_keys()[0].public_keys)[1]  # the server's key
    with pytest.raises(CryptoError, match="party 1"):
        verify_party_keys(folder / "ca.pem", [keys[0], own, keys[2]], certs, sigs)


def test_keys_in_the_wrong_order_are_refused(pki) -> None:
    folder, keys, certs, sigs = pki
    order = [1, 0, 2]  # a server routing party 0's shares to party 1
    with pytest.raises(CryptoError, match="party 0"):
        verify_party_keys(
            folder / "ca.pem",
            [keys[i] for i in order],
            [certs[i] for i in order],
            [sigs[i] for i in order],
        )


def test_a_certificate_from_another_ca_is_refused(pki, tmp_path: Path) -> None:
    folder, keys, certs, sigs = pki
    rogue = make_throwaway_pki(tmp_path / "rogue")  # the server's own CA
    own = list(generate_party_keys()[0].public_keys)[2]
    cert, sig = attest_party_key(rogue[2], 2, own)
    with pytest.raises(CryptoError, match="party 2"):
        verify_party_keys(
            folder / "ca.pem",
            [keys[0], keys[1], own],
            [*certs[:2], cert],
            [*sigs[:2], sig],
        )
    # and the genuine parties do not pass against the rogue CA either
    with pytest.raises(CryptoError, match="party 0"):
        verify_party_keys(tmp_path / "rogue" / "ca.pem", keys, certs, sigs)


def test_missing_attestations_are_refused(pki) -> None:
    folder, keys, certs, sigs = pki
    with pytest.raises(CryptoError):
        verify_party_keys(folder / "ca.pem", keys, [], [])
    with pytest.raises(CryptoError):
        verify_party_keys(folder / "ca.pem", keys, certs, [b"", *sigs[1:]])
    with pytest.raises(CryptoError):
        verify_party_keys(folder / "missing.pem", keys, certs, sigs)


def test_the_site_handler_checks_before_encrypting(pki) -> None:
    folder, keys, certs, sigs = pki
    record = ConfigRecord(
        {"public-keys": keys, "party-certificates": certs, "key-signatures": sigs}
    )
    node = {"mpc-ca-file": str(folder / "ca.pem")}
    assert checked_party_keys(record, node) == keys
    swapped = ConfigRecord(
        {
            "public-keys": [keys[1], keys[0], keys[2]],
            "party-certificates": certs,
            "key-signatures": sigs,
        }
    )
    with pytest.raises(CryptoError):
        checked_party_keys(swapped, node)
    with pytest.raises(ConfigError, match="mpc-ca-file"):
        checked_party_keys(record, {})
