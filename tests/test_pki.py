"""fedsec.pki: the deployment's throwaway CA, server certificate and node keys."""

from __future__ import annotations

import argparse
import ipaddress
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec

from fedsec.errors import ConfigError
from fedsec.pki import make_node_auth_key, make_server_tls


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_server_certificate_is_signed_by_the_ca_for_loopback(tmp_path: Path) -> None:
    tls = make_server_tls(tmp_path / "pki")
    ca, cert = _cert(tls.ca_cert), _cert(tls.cert)
    cert.verify_directly_issued_by(ca)  # raises if not
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1")
    ]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_server_certificate_does_not_verify_against_another_ca(tmp_path: Path) -> None:
    mine, other = make_server_tls(tmp_path / "a"), make_server_tls(tmp_path / "b")
    with pytest.raises((ValueError, InvalidSignature)):
        _cert(mine.cert).verify_directly_issued_by(_cert(other.ca_cert))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_tls_handshake_trusting_only_the_ca(tmp_path: Path, host: str) -> None:
    """A real handshake (Python's ssl, hostname checked) as a SuperNode makes one."""
    tls = make_server_tls(tmp_path / "pki")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tls.cert, tls.key)
    client_ctx = ssl.create_default_context(cafile=str(tls.ca_cert))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            with server_ctx.wrap_socket(conn, server_side=True) as tls_conn:
                tls_conn.sendall(b"ok")

        thread = threading.Thread(target=serve)
        thread.start()
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            client_ctx.wrap_socket(raw, server_hostname=host) as conn,
        ):
            assert conn.recv(2) == b"ok"
        thread.join(10)


def test_private_keys_are_0600_in_a_0700_folder(tmp_path: Path) -> None:
    folder = tmp_path / "pki"
    tls = make_server_tls(folder)
    node = make_node_auth_key(folder, "site0")
    assert _mode(folder) == 0o700
    assert _mode(tls.key) == 0o600
    assert _mode(node.private_key) == 0o600
    # only the server key and the node key are secret; the CA key is never written
    secret = {p.name for p in folder.iterdir() if b"PRIVATE KEY" in p.read_bytes()}
    assert secret == {tls.key.name, node.private_key.name}


def test_overwriting_a_loose_key_file_makes_it_0600(tmp_path: Path) -> None:
    folder = tmp_path / "pki"
    folder.mkdir()
    loose = folder / "site0.key"
    loose.write_bytes(b"old")
    loose.chmod(0o644)
    assert make_node_auth_key(folder, "site0").private_key == loose
    assert _mode(loose) == 0o600


def test_node_keys_are_what_flower_parses(tmp_path: Path) -> None:
    """The key files go through Flower's own loaders, as the CLI tools use them."""
    from flwr.cli.supernode.register import try_load_public_key
    from flwr.supercore.primitives.asymmetric import public_key_to_bytes
    from flwr.supernode.cli.flower_supernode import _try_setup_client_authentication

    node = make_node_auth_key(tmp_path, "site0")
    registered = try_load_public_key(node.public_key)  # `flwr supernode register`
    loaded = _try_setup_client_authentication(  # `flower-supernode`
        argparse.Namespace(
            auth_supernode_private_key=str(node.private_key),
            auth_supernode_public_key=None,
        )
    )
    assert loaded is not None
    private, public = loaded
    assert isinstance(private.curve, ec.SECP384R1)
    # the SuperLink matches a node by these bytes: both sides must agree
    assert public_key_to_bytes(public) == registered
    assert node.public_key.read_text().startswith("ecdsa-sha2-nistp384 ")


def test_every_node_gets_its_own_key(tmp_path: Path) -> None:
    a, b = make_node_auth_key(tmp_path, "a"), make_node_auth_key(tmp_path, "b")
    assert a.public_key.read_bytes().split()[1] != b.public_key.read_bytes().split()[1]


@pytest.mark.parametrize("name", ["", ".hidden", "../up", "a/b", "a b"])
def test_bad_key_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError):
        make_node_auth_key(tmp_path, name)


@pytest.mark.parametrize("hosts", [(), ("not a host",), ("x/y",)])
def test_bad_hosts_are_refused(tmp_path: Path, hosts: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError):
        make_server_tls(tmp_path, hosts)
