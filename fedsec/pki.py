"""Throwaway key material for a Flower deployment: TLS and SuperNode keys.

Two kinds of material, both made with ``cryptography`` (no ``openssl`` or
``ssh-keygen`` subprocess):

* **TLS for the SuperLink** (:func:`make_server_tls`): a fresh CA and a server
  certificate it signs, whose subject alternative names list the addresses the
  SuperNodes and the ``flwr`` CLI dial (by default IP ``127.0.0.1`` and DNS
  ``localhost``). The CA private key is never written: it signs the one
  server certificate and is dropped, so nobody can issue another certificate
  the SuperNodes would trust. The SuperNodes and the CLI get only ``ca.pem``.
* **SuperNode authentication keys** (:func:`make_node_auth_key`): one ECDSA
  P-384 key pair per site, in the formats Flower 1.42 reads: the private key
  in OpenSSH format (``flower-supernode --auth-supernode-private-key`` loads
  it with ``load_ssh_private_key``) and the public key as one OpenSSH line
  (``ecdsa-sha2-nistp384 AAAA...``, what ``flwr supernode register`` loads
  with ``load_ssh_public_key``). The SuperLink, started with
  ``--enable-supernode-auth``, accepts a SuperNode only if its public key was
  registered beforehand and it signs its requests with the matching private
  key.

Private keys are written to files created with mode 0600 (never readable by
others, not even for an instant) inside a folder of mode 0700, and are
never returned or logged: callers get paths. This is for tests and a local
demonstration; real hospital sites bring certificates from their own PKI and
create their key pair on the site.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fedsec.errors import ConfigError

DEFAULT_HOSTS = ("127.0.0.1", "localhost")
NODE_AUTH_CURVE = ec.SECP384R1()
_TLS_CURVE = ec.SECP256R1()


@dataclass(frozen=True)
class ServerTls:
    """Paths of the SuperLink's TLS material (PEM).

    Attributes
    ----------
    ca_cert
        The CA certificate: ``--ssl-ca-certfile`` of the SuperLink,
        ``--root-certificates`` of each SuperNode, ``root-certificates`` of
        the ``flwr`` CLI connection.
    cert, key
        The server certificate and its private key (mode 0600):
        ``--ssl-certfile`` / ``--ssl-keyfile`` of the SuperLink.
    """

    ca_cert: Path
    cert: Path
    key: Path


@dataclass(frozen=True)
class NodeAuthKey:
    """Paths of one SuperNode's authentication key pair (OpenSSH formats).

    Attributes
    ----------
    private_key
        ``--auth-supernode-private-key`` of the SuperNode (mode 0600).
    public_key
        The argument of ``flwr supernode register``.
    """

    private_key: Path
    public_key: Path


def make_server_tls(
    directory: Path,
    hosts: Sequence[str] = DEFAULT_HOSTS,
    *,
    valid_for: dt.timedelta = dt.timedelta(days=2),
) -> ServerTls:
    """Create a throwaway CA and a server certificate for ``hosts``.

    Parameters
    ----------
    directory
        Where to write ``ca.pem``, ``server.pem`` and ``server.key``
        (created with mode 0700 if missing).
    hosts
        IP addresses and DNS names the server certificate is valid for; the
        first one is also its common name.
    valid_for
        Validity of both certificates from now (they start 5 minutes in the
        past to tolerate clock skew).

    Returns
    -------
    ServerTls
        The paths of the three files.
    """
    if not hosts:
        raise ConfigError("a server certificate needs at least one host")
    sans = [_san(host) for host in hosts]
    _make_private_dir(directory)
    now = dt.datetime.now(dt.UTC)
    start, end = now - dt.timedelta(minutes=5), now + valid_for

    ca_key = ec.generate_private_key(_TLS_CURVE)
    ca_name = x509_name("fedsec throwaway deployment CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage(cert_sign=True), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(_TLS_CURVE)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509_name(hosts[0]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(cert_sign=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    out = ServerTls(
        ca_cert=directory / "ca.pem",
        cert=directory / "server.pem",
        key=directory / "server.key",
    )
    out.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    out.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    write_secret(
        out.key,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    return out


def make_node_auth_key(directory: Path, name: str) -> NodeAuthKey:
    """Create one SuperNode's ECDSA P-384 key pair as ``<name>`` / ``<name>.pub``.

    Parameters
    ----------
    directory
        Where to write the two files (created with mode 0700 if missing).
    name
        File stem and key comment, e.g. the site name; letters, digits,
        ``-``, ``_`` and ``.`` only.

    Returns
    -------
    NodeAuthKey
        The paths of the private key (OpenSSH format, 0600) and of the
        public key (one OpenSSH line).
    """
    if not name or name[0] == "." or not all(c.isalnum() or c in "-_." for c in name):
        raise ConfigError(f"invalid key name {name!r}")
    _make_private_dir(directory)
    key = ec.generate_private_key(NODE_AUTH_CURVE)
    out = NodeAuthKey(
        private_key=directory / f"{name}.key", public_key=directory / f"{name}.pub"
    )
    write_secret(
        out.private_key,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        ),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    out.public_key.write_bytes(public + b" " + name.encode() + b"\n")
    return out


def x509_name(common_name: str) -> x509.Name:
    """A name with only a common name."""
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not host or not all(c.isalnum() or c in "-." for c in host):
        raise ConfigError(f"not an IP address or DNS name: {host!r}")
    return x509.DNSName(host)


def key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    """Signatures only; also certificate and CRL signing for a CA."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _make_private_dir(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)


def write_secret(path: Path, data: bytes) -> None:
    """Write ``data`` to a file that is 0600 from its creation on."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)  # an existing file keeps its old mode
        handle.write(data)
