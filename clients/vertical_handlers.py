"""Vertical-training handlers of the ClientApp: data holders and compute parties.

A *data holder* (node config ``vertical-holder`` = its index, with its table
at ``vertical-data-path``: an ``id`` column, the columns the federation's
schema gives it and, at the label holder, ``target``; in simulation
partitions ``0..holders-1`` take their columns of the embedded task) answers
the PSI stages and then shares its rows with the compute parties. Before any
list or share leaves it, it checks the request against its own policy (mode
``vertical``; the DP floors against ``vertical-noise-multiplier``) and, before
sharing, the parties' keys against the parties' CA of its own node config.
Its PSI exponent and secret order live in the node's state between messages.

A *compute party* (as in clip-and-sum: ``mpc-party``, ``mpc-tls-dir``, its
policy and session log from its node config) answers ``query.vertical_train``:
it connects to the other two over mutual TLS, aligns the holders' rows from
the final PSI tags itself, trains on the shares and returns the revealed model.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from flwr.app import ConfigRecord, Context, Message, RecordDict

from clients.errors import one_line_errors
from clients.mpc_handlers import (
    STATE_KEY,
    _address,
    _identity,
    checked_party_keys,
    party_index,
    session_log_path,
)
from clients.site_config import node_config
from fedsec.config import ClientSettings, VerticalSettings
from fedsec.errors import ProtocolError
from fedsec.flower.vertical import (
    NOT_A_HOLDER,
    PSI_FINISH,
    PSI_RELAY,
    PSI_START,
    SHARE,
    TRAIN,
    VERTICAL_RECORD,
    schedule_seed,
)
from fedsec.policy import SitePolicy, TrustAnchors

HOLDER_STATE = "fedsec.vertical"


def holder_index(node: dict[str, Any], settings: VerticalSettings) -> int:
    """This node's holder index, or :data:`NOT_A_HOLDER`."""
    if "vertical-holder" in node:
        index = int(node["vertical-holder"])
    elif "partition-id" in node and int(node["partition-id"]) < settings.holders:
        index = int(node["partition-id"])
    else:
        return NOT_A_HOLDER
    if not 0 <= index < settings.holders:
        raise ProtocolError(f"vertical-holder {index} is not in 0..{settings.holders}")
    return index


@lru_cache(maxsize=4)
def _simulated_table(
    task: str, holders: int, label_holder: int, index: int, seed: int, frac: float
) -> Any:
    from fedsec.data import load_task
    from fedsec.data.vertical import column_groups, vertical_tables
    from fedsec.vertical.table import check_table

    frames = vertical_tables(
        task, holders, label_holder=label_holder, test_fraction=frac, seed=seed
    )

    groups = column_groups(load_task(task).num_features, holders)
    return check_table(
        frames[index],
        groups[index],
        labels=index == label_holder,
        holder=index,
        source=f"holder{index}",
    )


def holder_table(node: dict[str, Any], settings: ClientSettings, index: int) -> Any:
    """The holder's checked table: its file (deployment) or its simulated columns."""
    v = settings.vertical
    if "vertical-data-path" in node:
        from fedsec.data import load_task
        from fedsec.data.vertical import column_groups
        from fedsec.vertical.table import load_holder_table

        groups = column_groups(load_task(settings.data.task).num_features, v.holders)
        return load_holder_table(
            str(node["vertical-data-path"]),
            groups[index],
            labels=index == v.label_holder,
            holder=index,
        )
    return _simulated_table(
        settings.data.task,
        v.holders,
        v.label_holder,
        index,
        settings.data.seed,
        settings.data.test_fraction,
    )


def _checked(
    msg: Message, context: Context
) -> tuple[ClientSettings, dict[str, Any], int]:
    settings = ClientSettings.from_mapping(dict(msg.content["config"]))
    node = node_config(context)
    index = holder_index(node, settings.vertical)
    if index != NOT_A_HOLDER:
        policy = SitePolicy.from_node_config(node)
        policy.require_mode("vertical")
        policy.require_dp_noise(settings.vertical.noise_multiplier or None)
    return settings, node, index


def _holder(
    msg: Message, context: Context, *, fresh: bool = False
) -> tuple[Any, ConfigRecord]:
    from fedsec.psi.protocol import OutputMode, PsiTerms
    from fedsec.vertical.holder import VerticalHolder

    settings, node, index = _checked(msg, context)
    if index == NOT_A_HOLDER:
        raise ProtocolError("this node is not a data holder", stage="psi")
    record = msg.content[VERTICAL_RECORD]
    session = int(record["session"])
    terms = PsiTerms(
        session, settings.vertical.holders, OutputMode(settings.vertical.psi)
    )
    table = holder_table(node, settings, index)
    saved = context.state.get(HOLDER_STATE)
    workers = int(node.get("vertical-workers", 1))
    if fresh:
        holder = VerticalHolder(index, table, terms, workers=workers)
        return holder, record
    if not isinstance(saved, ConfigRecord) or int(saved["session"]) != session:
        raise ProtocolError("no PSI state for this session", stage="psi", node_id=index)
    rows = (
        np.frombuffer(bytes(saved["rows"]), dtype="<i8").astype(np.int64)
        if "rows" in saved
        else None
    )
    holder = VerticalHolder(
        index,
        table,
        terms,
        workers=workers,
        state=(bytes(saved["key"]), bytes(saved["order"])),
        rows=rows,
    )
    return holder, record


def _save(context: Context, holder: Any) -> None:
    key, order = holder.psi.export_state()
    content: dict[str, Any] = {
        "session": holder.terms.session,
        "key": key,
        "order": order,
    }
    if holder.rows is not None:
        content["rows"] = holder.rows.astype("<i8").tobytes()
    context.state[HOLDER_STATE] = ConfigRecord(content)


def _reply(msg: Message, content: dict[str, Any]) -> Message:
    return Message(
        content=RecordDict({VERTICAL_RECORD: ConfigRecord(content)}), reply_to=msg
    )


@one_line_errors
def psi_start(msg: Message, context: Context) -> Message:
    """Say whether this node holds data; if so, start its PSI list."""
    _, _, index = _checked(msg, context)
    if index == NOT_A_HOLDER:
        return _reply(msg, {"holder": NOT_A_HOLDER})
    holder, _ = _holder(msg, context, fresh=True)
    try:
        points = holder.psi.start()
    finally:
        holder.psi.close()
    _save(context, holder)
    return _reply(msg, {"holder": holder.index, "points": points})


@one_line_errors
def psi_relay(msg: Message, context: Context) -> Message:
    """Raise another holder's list to this holder's exponent.

    In ``shares`` mode the last relay of a list returns the final tags only
    secret-shared and sealed to the parties, whose keys it checks first.
    """
    holder, record = _holder(msg, context)
    origin, hop = int(record["origin"]), int(record["hop"])
    final = holder.terms.mode.value == "shares" and hop == holder.terms.hops
    keys = checked_party_keys(record, node_config(context)) if final else []
    try:
        points, tags = holder.relay(origin, hop, bytes(record["points"]), keys)
    finally:
        holder.psi.close()
    return _reply(msg, {"tags": tags} if tags is not None else {"points": points})


@one_line_errors
def psi_finish(msg: Message, context: Context) -> Message:
    """``intersection`` mode: learn the intersection from every final list."""
    holder, record = _holder(msg, context)
    finals = dict(enumerate(bytes(f) for f in record["finals"]))
    size = holder.finish(finals)
    _save(context, holder)
    return _reply(msg, {"size": size})


@one_line_errors
def share(msg: Message, context: Context) -> Message:
    """Secret-share this holder's rows to the three parties (keys checked first)."""
    settings = ClientSettings.from_mapping(dict(msg.content["config"]))
    holder, record = _holder(msg, context)
    keys = checked_party_keys(record, node_config(context))
    from fedsec.data import load_task
    from fedsec.vertical.holder import part_bound

    terms = settings.vertical.train_terms()
    bound = None
    if terms.noise_multiplier > 0:  # DP: this holder's part of each row
        total = load_task(settings.data.task).num_features
        bound = part_bound(terms.row_norm, holder.table.x.shape[1], total)
    features, labels = holder.blocks(keys, terms.encoder, row_bound=bound)
    content: dict[str, Any] = {"features": features}
    if labels is not None:
        content["labels"] = labels
    return _reply(msg, content)


@one_line_errors
def train(msg: Message, context: Context) -> Message:
    """Compute party: align, train on shares with the others, reveal the model."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from fedsec.mpc.keys import PartyKeys
    from fedsec.mpc.sessions import FileSessionLog
    from fedsec.mpc.tcp import TlsChannel
    from fedsec.vertical.party import HolderInputs, VerticalParty

    settings = ClientSettings.from_mapping(dict(msg.content["config"]))
    node = node_config(context)
    index = party_index(node)
    saved = context.state.get(STATE_KEY)
    if index < 0 or not isinstance(saved, ConfigRecord):
        raise ProtocolError("this node is not a set-up compute party", stage="train")
    policy = SitePolicy.from_node_config(node)
    tls_dir = TrustAnchors.from_node_config(node).require_party_tls_dir()
    sessions = FileSessionLog(session_log_path(node, tls_dir, index), node_id=index)
    record = msg.content[VERTICAL_RECORD]
    keys = PartyKeys(
        index,
        X25519PrivateKey.from_private_bytes(bytes(saved["secret"])),
        tuple(bytes(k) for k in record["public-keys"]),  # type: ignore[arg-type]
    )
    terms = settings.vertical.train_terms()
    tags = [bytes(t) for t in record["tags"]]
    inputs = HolderInputs(
        dict(enumerate(bytes(p) for p in record["features"])),
        bytes(record["labels"]),
        int(record["label-holder"]),
        dict(enumerate(tags)) if tags else None,
    )
    session = int(record["session"])
    addresses = [_address(a) for a in record["addresses"]]
    # connect first: a party that refuses below closes the mesh, so the
    # others fail at once instead of waiting for it until the timeout
    channel = TlsChannel.connect(
        index, addresses, _identity(tls_dir, index), timeout=settings.mpc.timeout
    )
    try:
        party = VerticalParty(keys, channel, terms, sessions=sessions, policy=policy)
        out = party.run(session, inputs, schedule_seed(session))
    finally:
        channel.close()
    return _reply(
        msg,
        {
            "weights": out.weights.astype("<f8").tobytes(),
            "rows": out.rows,
            "seconds": out.seconds,
            "bytes-between-parties": int(out.stats.bytes_sent),
            "rounds": int(out.stats.rounds),
        },
    )


def register(app: Any) -> None:
    """Register the vertical query handlers on ``app``."""
    for action, handler in (
        (PSI_START, psi_start),
        (PSI_RELAY, psi_relay),
        (PSI_FINISH, psi_finish),
        (SHARE, share),
        (TRAIN, train),
    ):
        app.query(action)(handler)
