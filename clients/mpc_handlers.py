"""MPC handlers of the ClientApp: sharing sites and compute parties.

Every site answers ``query.mpc_share``: it trains, secret-shares its update
``trained − global`` with its weight, and encrypts one package to each
compute party (X25519 + AES-GCM), so the relaying server learns nothing.

The three compute parties (node config ``mpc-party`` = 0, 1, 2 in deployment;
partitions 0, 1, 2 in simulation) also answer ``query.mpc_hello`` with their
public key and listening address, and ``query.mpc_compute``: they connect to
each other over mutual TLS, clip every update to the norm bound on the shares,
sum, add their noise shares, and return only their additive output share.
All three must run at the same time; in simulation the harness gives Ray at
least three concurrent ClientApps, and a party that cannot reach the others
within ``mpc-timeout`` seconds fails with a one-line error instead of hanging.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)
from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp

from clients.errors import one_line_errors
from clients.faults import maybe_drop
from fedsec.config import ClientSettings
from fedsec.errors import ConfigError, ProtocolError
from fedsec.flower.mpc import COMPUTE, HELLO, MPC_RECORD, NOT_A_PARTY, SHARE
from fedsec.flower.records import flatten, record_to_weights
from fedsec.net import free_port

if TYPE_CHECKING:
    from fedsec.mpc.tls import TlsIdentity

STATE_KEY = "fedsec.mpc"


def party_index(node_config: dict[str, Any]) -> int:
    """0, 1 or 2 for a compute party, else :data:`NOT_A_PARTY`."""
    if "mpc-party" in node_config:
        index = int(node_config["mpc-party"])
    elif "partition-id" in node_config and int(node_config["partition-id"]) < 3:
        index = int(node_config["partition-id"])
    else:
        return NOT_A_PARTY
    if index not in (0, 1, 2):
        raise ConfigError(f"mpc-party must be 0, 1 or 2, got {index}")
    return index


@one_line_errors
def hello(msg: Message, context: Context) -> Message:
    """Say whether this node is a compute party; publish its key and address."""
    node_config = dict(context.node_config)
    index = party_index(node_config)
    content: dict[str, Any] = {"party": index}
    if index != NOT_A_PARTY:
        settings = ClientSettings.from_mapping(dict(msg.content["config"]))
        saved = context.state.get(STATE_KEY)
        if isinstance(saved, ConfigRecord):
            secret = X25519PrivateKey.from_private_bytes(bytes(saved["secret"]))
            address = str(saved["address"])
        else:
            secret = X25519PrivateKey.generate()
            address = str(node_config.get("mpc-address", f"127.0.0.1:{free_port()}"))
            raw = secret.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
            context.state[STATE_KEY] = ConfigRecord({"secret": raw, "address": address})
        from fedsec.mpc.keys import raw_public
        from fedsec.mpc.tls import attest_party_key

        public = raw_public(secret)
        cert, signature = attest_party_key(
            _identity(node_config, settings, index), index, public
        )
        content.update(
            {
                "public-key": public,
                "address": address,
                "certificate": cert,
                "key-signature": signature,
            }
        )
    return Message(
        content=RecordDict({MPC_RECORD: ConfigRecord(content)}), reply_to=msg
    )


@one_line_errors
def share(msg: Message, context: Context) -> Message:
    """Train, then secret-share the update to the three parties, encrypted."""
    from clients.local_update import local_update
    from fedsec.mpc.client import client_share
    from fedsec.mpc.range_check import coordinate_bound
    from fedsec.mpc.ring import FixedPoint

    settings = ClientSettings.from_mapping(dict(msg.content["config"]))
    maybe_drop(context.node_config, settings.faults, "mpc_share")
    record = msg.content[MPC_RECORD]
    keys = checked_party_keys(record, dict(context.node_config), settings)
    update = local_update(
        record_to_weights(msg.content["arrays"]),
        msg.content["config"],
        settings,
        context,
    )
    delta = flatten(update.weights) - flatten(update.start)
    packages = client_share(
        delta,
        # with noise the parties clamp every weight to 1 (an unweighted mean)
        1
        if settings.mpc.noise_multiplier > 0
        else min(update.num_examples, settings.mpc.max_weight),
        keys,
        session=int(record["session"]),
        client_id=int(record["client-id"]),
        encoder=FixedPoint(settings.mpc.frac_bits),
        clamp=coordinate_bound(
            delta.size, settings.mpc.clip_norm, settings.mpc.frac_bits
        ),
    )
    out = ConfigRecord({"packages": packages})
    return Message(content=RecordDict({MPC_RECORD: out}), reply_to=msg)


@one_line_errors
def compute(msg: Message, context: Context) -> Message:
    """Run clip-and-sum with the two other parties; reply with the output share."""
    from fedsec.flower.records import weights_to_record
    from fedsec.mpc.clip_and_sum import ClipSumConfig
    from fedsec.mpc.keys import PartyKeys
    from fedsec.mpc.party import Party
    from fedsec.mpc.tcp import TlsChannel

    settings = ClientSettings.from_mapping(dict(msg.content["config"]))
    node_config = dict(context.node_config)
    index = party_index(node_config)
    saved = context.state.get(STATE_KEY)
    if index == NOT_A_PARTY or not isinstance(saved, ConfigRecord):
        raise ProtocolError("this node is not a set-up compute party", stage="compute")
    record = msg.content[MPC_RECORD]
    keys = PartyKeys(
        index,
        X25519PrivateKey.from_private_bytes(bytes(saved["secret"])),
        tuple(bytes(k) for k in record["public-keys"]),  # type: ignore[arg-type]
    )
    identity = _identity(node_config, settings, index)
    addresses = [_address(a) for a in record["addresses"]]
    config = ClipSumConfig(
        clip_norm=float(record["clip-norm"]),
        max_weight=int(record["max-weight"]),
        noise_std=float(record["noise-std"]),
        frac_bits=int(record["frac-bits"]),
    )
    packages = dict(zip(record["client-ids"], record["packages"], strict=True))
    channel = TlsChannel.connect(
        index, addresses, identity, timeout=settings.mpc.timeout
    )
    try:
        party = Party(keys, channel, config)
        out = party.run_clip_and_sum(
            int(record["session"]), packages, int(record["dim"])
        )
    finally:
        channel.close()
    report = party.last_report
    meta = ConfigRecord(
        {
            "bytes-between-parties": int(report.stats.bytes_sent) if report else 0,
            "rounds": int(report.stats.rounds) if report else 0,
            "seconds": float(report.seconds) if report else 0.0,
        }
    )
    arrays = weights_to_record(out.to_arrays())
    return Message(
        content=RecordDict({"share": arrays, MPC_RECORD: meta}), reply_to=msg
    )


def checked_party_keys(
    record: ConfigRecord, node_config: dict[str, Any], settings: ClientSettings
) -> list[bytes]:
    """The parties' X25519 keys from the server, each checked against the CA.

    The CA certificate is node config ``mpc-ca-file``, else ``ca.pem`` in
    ``mpc-tls-dir`` (node or run config). A key the relaying server swapped,
    or one without a valid attestation, raises :class:`CryptoError` and
    nothing is encrypted.
    """
    from fedsec.mpc.tls import verify_party_keys

    keys = [bytes(k) for k in record["public-keys"]]
    certs = [bytes(c) for c in record.get("party-certificates", [])]
    sigs = [bytes(c) for c in record.get("key-signatures", [])]
    if "mpc-ca-file" in node_config:
        ca_file = Path(str(node_config["mpc-ca-file"]))
    else:
        folder = str(node_config.get("mpc-tls-dir", settings.mpc.tls_dir))
        if not folder:
            raise ConfigError(
                "a site needs the compute parties' CA certificate to check their "
                "keys: node config 'mpc-ca-file'"
            )
        ca_file = Path(folder) / "ca.pem"
    verify_party_keys(ca_file, keys, certs, sigs)
    return keys


def _identity(
    node_config: dict[str, Any], settings: ClientSettings, index: int
) -> TlsIdentity:
    from fedsec.mpc.tls import TlsIdentity, party_name

    folder = str(node_config.get("mpc-tls-dir", settings.mpc.tls_dir))
    if not folder:
        raise ConfigError("a compute party needs 'mpc-tls-dir'")
    name = party_name(index)
    path = Path(folder)
    return TlsIdentity(path / "ca.pem", path / f"{name}.pem", path / f"{name}.key")


def _address(text: str) -> tuple[str, int]:
    host, _, port = str(text).rpartition(":")
    if not host or not port.isdigit():
        raise ProtocolError(f"bad party address {text!r}", stage="compute")
    return host, int(port)


def register(app: ClientApp) -> None:
    """Register the MPC query handlers on ``app``."""
    app.query(HELLO)(hello)
    app.query(SHARE)(share)
    app.query(COMPUTE)(compute)
