"""Certificates for the parties' mutual-TLS channel, and their key attestations.

Each party has a certificate for the DNS name ``party-<i>`` (in the subject
common name and the subject alternative name) signed by a CA all parties
trust; a connection is accepted only if the peer presents such a certificate,
and its index is read from the certificate, not from anything the peer says.
:func:`make_throwaway_pki` creates a CA and three party certificates for tests,
benchmarks and a loopback demo; a deployment brings its own.

The same certificates pin the parties' X25519 keys, to which clients encrypt
their shares: a party signs its key with its TLS key
(:func:`attest_party_key`) and every client checks the three attestations
against the CA certificate before it encrypts anything
(:func:`verify_party_keys`). A relaying server that swaps a key for its own
is caught: it cannot sign for ``party-<i>`` without the CA.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from fedsec.errors import CryptoError
from fedsec.mpc.shares import PARTIES
from fedsec.pki import key_usage, write_secret, x509_name

_ATTESTATION = b"fedsec/mpc/party-key/v1|"


def party_name(index: int) -> str:
    """The DNS name in party ``index``'s certificate."""
    return f"party-{index}"


@dataclass(frozen=True)
class TlsIdentity:
    """File paths of a party's TLS material (PEM).

    Attributes
    ----------
    ca_file
        The CA certificate that signs every party certificate.
    cert_file, key_file
        This party's certificate and private key.
    """

    ca_file: Path
    cert_file: Path
    key_file: Path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_secret(path, pem)


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    valid_for: dt.timedelta = dt.timedelta(days=2),
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + valid_for)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(key_usage(cert_sign=True), critical=True)
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
        ).add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def make_throwaway_pki(
    directory: Path,
    names: list[str] | None = None,
    *,
    valid_for: dt.timedelta = dt.timedelta(days=2),
) -> list[TlsIdentity]:
    """Create a fresh CA and one certificate per party name in ``directory``.

    Parameters
    ----------
    directory
        Where to write ``ca.pem`` and ``<name>.pem`` / ``<name>.key``.
    names
        Certificate names (default ``party-0 .. party-2``).
    valid_for
        Validity of the CA and party certificates from now (default two
        days: tests and demos; ``fedsec provision`` asks for longer).

    Returns
    -------
    list[TlsIdentity]
        One identity per name, in order.
    """
    directory.mkdir(parents=True, exist_ok=True)
    names = names or [party_name(i) for i in range(PARTIES)]
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _issue(
        "fedsec-mpc-ca",
        ca_key,
        x509_name("fedsec-mpc-ca"),
        ca_key,
        ca=True,
        valid_for=valid_for,
    )
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    out = []
    for name in names:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue(name, key, ca_cert.subject, ca_key, ca=False, valid_for=valid_for)
        cert_file, key_file = directory / f"{name}.pem", directory / f"{name}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key_file, key)
        out.append(TlsIdentity(ca_file, cert_file, key_file))
    return out


def _key_statement(index: int, public_key: bytes) -> bytes:
    return _ATTESTATION + bytes([index]) + public_key


def attest_party_key(
    identity: TlsIdentity, index: int, public_key: bytes
) -> tuple[bytes, bytes]:
    """Sign party ``index``'s raw X25519 ``public_key`` with its TLS key.

    Returns
    -------
    tuple[bytes, bytes]
        The party's certificate (PEM) and the ECDSA-SHA256 signature.
    """
    key = serialization.load_pem_private_key(identity.key_file.read_bytes(), None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CryptoError("a party's TLS key must be an EC key")
    signature = key.sign(_key_statement(index, public_key), ec.ECDSA(hashes.SHA256()))
    return identity.cert_file.read_bytes(), signature


def verify_party_keys(
    ca_file: Path,
    public_keys: Sequence[bytes],
    certificates: Sequence[bytes],
    signatures: Sequence[bytes],
) -> None:
    """Check that key ``i`` is attested by a CA-issued certificate for ``party-<i>``.

    Raises
    ------
    CryptoError
        If anything is missing, expired, issued by another CA, named for
        another party, or signed over another key. The message names the
        party, never a key.
    """
    if not len(public_keys) == len(certificates) == len(signatures) == PARTIES:
        raise CryptoError("need a key, a certificate and a signature per party")
    try:
        ca = x509.load_pem_x509_certificate(ca_file.read_bytes())
    except (OSError, ValueError) as exc:
        raise CryptoError("cannot read the compute parties' CA certificate") from exc
    now = dt.datetime.now(dt.UTC)
    for i, (key, pem, sig) in enumerate(
        zip(public_keys, certificates, signatures, strict=True)
    ):
        try:
            cert = x509.load_pem_x509_certificate(pem)
            cert.verify_directly_issued_by(ca)
            if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
                raise ValueError("certificate outside its validity period")
            names = cert.extensions.get_extension_for_class(
                x509.SubjectAlternativeName
            ).value.get_values_for_type(x509.DNSName)
            if names != [party_name(i)]:
                raise ValueError("certificate for another party")
            pub = cert.public_key()
            if not isinstance(pub, ec.EllipticCurvePublicKey):
                raise ValueError("not an EC certificate")
            pub.verify(sig, _key_statement(i, key), ec.ECDSA(hashes.SHA256()))
        except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound) as exc:
            raise CryptoError(f"the key of compute party {i} is not attested") from exc
