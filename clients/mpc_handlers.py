"""MPC handlers of the ClientApp: sharing sites and compute parties.

Every site answers ``query.mpc_share``: it checks the request against its own
policy (mode ``mpc``, clipping norm, weight bound, noise) and the parties'
keys against the parties' CA from its own node config, then trains,
secret-shares its update ``trained − global`` with its weight, and encrypts
one package to each compute party (X25519 + AES-GCM, the terms it checked
bound into each package), so the relaying server learns nothing. A site with
a signing key (node config ``secagg-keys-dir`` and ``secagg-site``) signs each
package (:func:`~fedsec.mpc.origin.sign_packages`) and replies with its name.

The three compute parties (node config ``mpc-party`` = 0, 1, 2 in deployment;
partitions 0, 1, 2 in simulation) also answer ``query.mpc_hello`` with their
public key and listening address, and ``query.mpc_compute``: they connect to
each other over mutual TLS, clip every update to the norm bound on the shares,
sum, add their noise shares, and return only their additive output share.
Each party decides by its own node config: its TLS folder (``mpc-tls-dir``),
its policy (``policy-*``), its session log (``mpc-session-log``, default
``sessions-party<i>.log`` in its TLS folder) and the site registry
(``registry.json`` in ``secagg-keys-dir``: with it, only packages signed by a
registered site count, each site once); nothing of that comes from the run
config. All three must run at the same time; in simulation the harness
gives Ray at least three concurrent ClientApps, and a party that cannot reach
the others within ``mpc-timeout`` seconds fails with a one-line error instead
of hanging.
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
from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from clients.errors import one_line_errors
from clients.faults import maybe_drop
from clients.site_config import node_config
from fedsec.config import ClientSettings
from fedsec.errors import ConfigError, ProtocolError
from fedsec.flower.mpc import (
    COMPUTE,
    HELLO,
    MPC_RECORD,
    NOT_A_PARTY,
    SHARE,
    clip_sum_config,
    relayed_origins,
)
from fedsec.flower.records import flatten, record_to_weights
from fedsec.identity import load_registry, load_signing_key
from fedsec.mpc.params import MODE, require_terms
from fedsec.net import free_port
from fedsec.policy import SitePolicy, TrustAnchors

if TYPE_CHECKING:
    from fedsec.mpc.tls import TlsIdentity

STATE_KEY = "fedsec.mpc"
SESSION_LOG_KEY = "mpc-session-log"


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


def session_log_path(node_config: dict[str, Any], tls_dir: Path, index: int) -> Path:
    """The party's session log: node config ``mpc-session-log``, else in ``tls_dir``."""
    value = str(node_config.get(SESSION_LOG_KEY, ""))
    return Path(value) if value else tls_dir / f"sessions-party{index}.log"


@one_line_errors
def hello(msg: Message, context: Context) -> Message:
    """Say whether this node is a compute party; publish its key and address."""
    node = node_config(context)
    index = party_index(node)
    content: dict[str, Any] = {"party": index}
    if index != NOT_A_PARTY:
        SitePolicy.from_node_config(node).require_mode(_hello_mode(msg))
        tls_dir = TrustAnchors.from_node_config(node).require_party_tls_dir()
        saved = context.state.get(STATE_KEY)
        if isinstance(saved, ConfigRecord):
            secret = X25519PrivateKey.from_private_bytes(bytes(saved["secret"]))
            address = str(saved["address"])
        else:
            secret = X25519PrivateKey.generate()
            address = str(node.get("mpc-address", f"127.0.0.1:{free_port()}"))
            raw = secret.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
            context.state[STATE_KEY] = ConfigRecord({"secret": raw, "address": address})
        from fedsec.mpc.keys import raw_public
        from fedsec.mpc.tls import attest_party_key

        public = raw_public(secret)
        cert, signature = attest_party_key(_identity(tls_dir, index), index, public)
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


def _hello_mode(msg: Message) -> str:
    """The policy mode a hello asks for: ``vertical`` or clip-and-sum's ``mpc``."""
    if "config" in msg.content:
        settings = ClientSettings.from_mapping(dict(msg.content["config"]))
        if settings.vertical.enabled:
            return "vertical"
    return MODE


@one_line_errors
def share(msg: Message, context: Context) -> Message:
    """Check the request, train, secret-share the update to the three parties.

    Before anything is trained or encrypted: the site's policy must take part
    in ``mpc`` and accept the requested terms, and the parties' keys must be
    attested under the CA of the site's own node config. A site with a
    signing key signs its packages, so parties with the site registry count
    it as a site.
    """
    from clients.local_update import local_update
    from fedsec.mpc.client import client_share
    from fedsec.mpc.origin import sign_packages
    from fedsec.mpc.sessions import check_session_id

    settings = ClientSettings.from_mapping(dict(msg.content["config"]))
    node = node_config(context)
    maybe_drop(node, settings.faults, "mpc_share")
    terms = clip_sum_config(settings.mpc)
    # with local DP-SGD the site's own noise protects it (local_update checks
    # its multiplier against the same policy); else the noise inside the MPC
    local_dp = settings.dp.mode == "local_opacus"
    require_terms(SitePolicy.from_node_config(node), terms, local_dp=local_dp)
    record = msg.content[MPC_RECORD]
    session = int(record["session"])
    check_session_id(session)
    keys = checked_party_keys(record, node)
    signer = site_signer(node)
    update = local_update(
        record_to_weights(msg.content["arrays"]),
        msg.content["config"],
        settings,
        context,
    )
    delta = flatten(update.weights) - flatten(update.start)
    client_id = int(record["client-id"])
    packages = client_share(
        delta,
        # with noise the terms clamp every weight to 1 (an unweighted mean)
        min(update.num_examples, terms.max_weight),
        keys,
        session=session,
        client_id=client_id,
        config=terms,
        clamp=terms.coordinate_bound(delta.size),
    )
    reply: dict[str, Any] = {"packages": packages}
    if signer is not None:
        site, signing_key = signer
        reply["site"] = site
        reply["signatures"] = sign_packages(
            signing_key, packages, site=site, session=session, client_id=client_id
        )
    public = {k: float(v) for k, v in update.metrics.items() if k == "epsilon"}
    content = RecordDict(
        {
            MPC_RECORD: ConfigRecord(reply),
            "metrics": MetricRecord(public),
        }
    )
    return Message(content=content, reply_to=msg)


@one_line_errors
def compute(msg: Message, context: Context) -> Message:
    """Run clip-and-sum with the two other parties; reply with the output share.

    The party's policy, TLS folder, session log and site registry come from
    its node config only. It refuses terms weaker than its policy, a session
    id in its log and a session of fewer than ``policy-min-sites`` usable
    clients (with a registry: distinct registered sites whose signatures
    verify), before any output share exists.
    """
    from fedsec.flower.records import weights_to_record
    from fedsec.mpc.keys import PartyKeys
    from fedsec.mpc.params import ClipSumConfig
    from fedsec.mpc.party import Party
    from fedsec.mpc.sessions import FileSessionLog
    from fedsec.mpc.tcp import TlsChannel

    settings = ClientSettings.from_mapping(dict(msg.content["config"]))
    node = node_config(context)
    index = party_index(node)
    saved = context.state.get(STATE_KEY)
    if index == NOT_A_PARTY or not isinstance(saved, ConfigRecord):
        raise ProtocolError("this node is not a set-up compute party", stage="compute")
    policy = SitePolicy.from_node_config(node)
    anchors = TrustAnchors.from_node_config(node)
    tls_dir = anchors.require_party_tls_dir()
    sessions = FileSessionLog(session_log_path(node, tls_dir, index), node_id=index)
    record = msg.content[MPC_RECORD]
    keys = PartyKeys(
        index,
        X25519PrivateKey.from_private_bytes(bytes(saved["secret"])),
        tuple(bytes(k) for k in record["public-keys"]),  # type: ignore[arg-type]
    )
    addresses = [_address(a) for a in record["addresses"]]
    config = ClipSumConfig(
        clip_norm=float(record["clip-norm"]),
        max_weight=int(record["max-weight"]),
        noise_std=float(record["noise-std"]),
        frac_bits=int(record["frac-bits"]),
    )
    packages = dict(zip(record["client-ids"], record["packages"], strict=True))
    # connect first: a party that refuses below closes the mesh, so the
    # others fail at once instead of waiting for it until the timeout
    channel = TlsChannel.connect(
        index, addresses, _identity(tls_dir, index), timeout=settings.mpc.timeout
    )
    try:
        origins = relayed_origins(list(record["client-ids"]), record)
        registry = None if anchors.keys_dir is None else load_registry(anchors.keys_dir)
        party = Party(
            keys, channel, config, sessions=sessions, policy=policy, registry=registry
        )
        out = party.run_clip_and_sum(
            int(record["session"]), packages, int(record["dim"]), origins
        )
    finally:
        channel.close()
    report = party.last_report
    meta = ConfigRecord(
        {
            "bytes-between-parties": int(report.stats.bytes_sent) if report else 0,
            "rounds": int(report.stats.rounds) if report else 0,
            "seconds": float(report.seconds) if report else 0.0,
            # whether this party counted registered sites (else packages)
            "sites-checked": party.registry is not None,
        }
    )
    arrays = weights_to_record(out.to_arrays())
    return Message(
        content=RecordDict({"share": arrays, MPC_RECORD: meta}), reply_to=msg
    )


def checked_party_keys(
    record: ConfigRecord, node_config: dict[str, Any]
) -> list[bytes]:
    """The parties' X25519 keys from the server, each checked against the CA.

    The CA certificate comes from the site's own node config only
    (``mpc-ca-file``, else ``ca.pem`` in ``mpc-tls-dir``;
    :class:`~fedsec.policy.TrustAnchors`), never from the run config. A key
    the relaying server swapped, or one without a valid attestation, raises
    :class:`CryptoError` and nothing is encrypted.
    """
    from fedsec.mpc.tls import verify_party_keys

    ca_file = TrustAnchors.from_node_config(node_config).require_parties_ca()
    keys = [bytes(k) for k in record["public-keys"]]
    certs = [bytes(c) for c in record.get("party-certificates", [])]
    sigs = [bytes(c) for c in record.get("key-signatures", [])]
    verify_party_keys(ca_file, keys, certs, sigs)
    return keys


def site_signer(node_config: dict[str, Any]) -> tuple[str, bytes] | None:
    """This site's name and signing key, if its node config gives it a key folder.

    ``secagg-keys-dir`` and ``secagg-site`` (:class:`~fedsec.policy.TrustAnchors`,
    node config only); a site without a key folder shares unsigned packages,
    which a party with the site registry leaves out.
    """
    anchors = TrustAnchors.from_node_config(node_config)
    if anchors.keys_dir is None:
        return None
    if not anchors.site_name:
        raise ConfigError("signing MPC packages needs node config 'secagg-site'")
    return anchors.site_name, load_signing_key(anchors.keys_dir, anchors.site_name)


def _identity(tls_dir: Path, index: int) -> TlsIdentity:
    from fedsec.mpc.tls import TlsIdentity, party_name

    name = party_name(index)
    return TlsIdentity(
        tls_dir / "ca.pem", tls_dir / f"{name}.pem", tls_dir / f"{name}.key"
    )


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
