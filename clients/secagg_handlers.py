"""Secure-aggregation handlers of the ClientApp (``query.secagg_<stage>``).

The handlers only move messages: each parses the request with the protocol's
strict ``from_record`` (any malformed field is a typed error and a one-line
error reply), calls the :class:`~fedsec.secagg.client.SecAggClient` method of
its stage, and stores the client's whole state as bytes in ``context.state``
(node-local memory; the secret keys never leave the site). The masked-input
handler first trains: the update ``trained − global`` is what gets masked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from clients.errors import one_line_errors
from clients.faults import maybe_drop
from fedsec.config import ClientSettings
from fedsec.errors import ConfigError, MaliciousServerError
from fedsec.flower.records import flatten, record_to_weights
from fedsec.flower.secagg import (
    DP_RECORD,
    PROTOCOL_RECORD,
    SITE_RECORD,
    SITES_RECORD,
    handler_action,
)
from fedsec.identity import load_registry, load_signing_key, verify_keys_for
from fedsec.secagg.client import SecAggClient
from fedsec.secagg.messages import (
    AdvertiseKeysRequest,
    ClientMessage,
    ConsistencyRequest,
    MaskedInputRequest,
    ShareKeysRequest,
    UnmaskRequest,
)
from fedsec.secagg.stages import Stage

STATE_KEY = "fedsec.secagg"

Handler = Callable[[Message, Context], Message]


@dataclass(frozen=True)
class Update:
    """What a site masks: a flat float32 update, its weight, public metrics."""

    delta: npt.NDArray[np.float32]
    weight: int
    public_metrics: dict[str, float]


UpdateFn = Callable[[Message, Context, ClientSettings], Update]


def site_name(node_config: dict[str, Any]) -> str:
    """This site's name: node config ``secagg-site``, or ``site<partition-id>``.

    Only the active variant needs it (to find the site's signing key); without
    either key the site is anonymous (``""``).
    """
    if "secagg-site" in node_config:
        return str(node_config["secagg-site"])
    if "partition-id" in node_config:
        return f"site{int(node_config['partition-id'])}"
    return ""


def keys_dir(node_config: dict[str, Any], settings: ClientSettings) -> Path:
    """The site's key folder: its own node config first, else the run's setting."""
    folder = str(node_config.get("secagg-keys-dir", settings.secagg.keys_dir))
    if not folder:
        raise ConfigError("the active variant needs 'secagg-keys-dir'")
    return Path(folder)


def _load(context: Context, settings: ClientSettings) -> SecAggClient:
    saved = context.state.get(STATE_KEY)
    if isinstance(saved, ConfigRecord):
        return SecAggClient.from_bytes(bytes(saved["client"]))
    signing_key = None
    if settings.secagg.mode == "active":
        folder = keys_dir(dict(context.node_config), settings)
        name = site_name(dict(context.node_config))
        if not name:
            raise ConfigError("the active variant needs node config 'secagg-site'")
        signing_key = load_signing_key(folder, name)
    return SecAggClient(
        context.node_id, settings.secagg.protocol_config(), signing_key=signing_key
    )


def _reply(
    msg: Message,
    context: Context,
    client: SecAggClient,
    out: ClientMessage,
    **extra: Any,
) -> Message:
    context.state[STATE_KEY] = ConfigRecord({"client": client.to_bytes()})
    content = RecordDict({PROTOCOL_RECORD: ConfigRecord(out.to_record()), **extra})
    return Message(content=content, reply_to=msg)


def _prepare(
    msg: Message, context: Context, stage: Stage
) -> tuple[ClientSettings, SecAggClient, dict[str, Any]]:
    settings = ClientSettings.from_mapping(dict(msg.content["config"]))
    maybe_drop(context.node_config, settings.faults, stage.value)
    return settings, _load(context, settings), dict(msg.content[PROTOCOL_RECORD])


@one_line_errors
def advertise_keys(msg: Message, context: Context) -> Message:
    """Stage 0: fresh key pairs for a new key set (and this site's name)."""
    _, client, record = _prepare(msg, context, Stage.ADVERTISE_KEYS)
    out = client.advertise_keys(AdvertiseKeysRequest.from_record(record))
    name = ConfigRecord({"name": site_name(dict(context.node_config))})
    return _reply(msg, context, client, out, **{SITE_RECORD: name})


@one_line_errors
def share_keys(msg: Message, context: Context) -> Message:
    """Stage 1: Shamir shares of the seeds and mask keys, encrypted per peer."""
    settings, client, record = _prepare(msg, context, Stage.SHARE_KEYS)
    if settings.secagg.mode == "active":
        sites = msg.content[SITES_RECORD]
        mapping = dict(zip(sites["nodes"], sites["names"], strict=True))
        registry = load_registry(keys_dir(dict(context.node_config), settings))
        client.set_verify_keys(verify_keys_for(mapping, registry))
    out = client.share_keys(ShareKeysRequest.from_record(record))
    return _reply(msg, context, client, out)


def train_update(msg: Message, context: Context, settings: ClientSettings) -> Update:
    """The default update source: local training from the received global model."""
    from clients.local_update import local_update

    update = local_update(
        record_to_weights(msg.content["arrays"]),
        msg.content["config"],
        settings,
        context,
    )
    delta = flatten(update.weights) - flatten(update.start)
    public = {k: v for k, v in update.metrics.items() if k == "epsilon"}
    return Update(delta.astype(np.float32), update.num_examples, public)


def _masked_with_noise(
    client: SecAggClient,
    request: MaskedInputRequest,
    update: Update,
    msg: Message,
    settings: ClientSettings,
) -> ClientMessage:
    """Distributed DP: clip, rotate, round, add discrete noise, mask in the ring."""
    from fedsec.dp.distributed import DistributedDPParams, encode

    record = msg.content[DP_RECORD]
    params = DistributedDPParams.from_config(dict(record))
    if params.ring_bits != settings.secagg.bits or params.dim != update.delta.size:
        raise MaliciousServerError(
            "noise parameters do not match the round", stage="ddp"
        )
    if params.noise_multiplier < settings.dp.noise_multiplier or (
        params.clip_norm > settings.dp.clip_norm
    ):
        raise MaliciousServerError("noise below the configured level", stage="ddp")
    values = encode(update.delta, params, bytes(record["rotation-seed"]))
    # every site weighs 1: the mean is over the survivors (DP-FedAvg)
    return client.masked_ring_input(request, values.astype(np.uint32), 1)


def make_masked_input(update_fn: UpdateFn) -> Handler:
    """The masked-input handler, taking its update from ``update_fn``."""

    @one_line_errors
    def masked_input(msg: Message, context: Context) -> Message:
        """Stage 2: compute the update, upload it quantised under its masks."""
        settings, client, record = _prepare(msg, context, Stage.MASKED_INPUT)
        request = MaskedInputRequest.from_record(record)
        update = update_fn(msg, context, settings)
        if DP_RECORD in msg.content:
            out = _masked_with_noise(client, request, update, msg, settings)
        elif settings.dp.mode == "distributed":
            # an honest site never sends a noise-free update when DP is on
            raise MaliciousServerError(
                "distributed DP is on but the request carries no noise parameters",
                stage=Stage.MASKED_INPUT.value,
            )
        else:
            out = client.masked_input(request, update.delta, update.weight)
        return _reply(
            msg, context, client, out, metrics=MetricRecord(update.public_metrics)
        )

    return masked_input


@one_line_errors
def consistency_check(msg: Message, context: Context) -> Message:
    """Stage 3 (active variant): sign the survivor set the server announced."""
    _, client, record = _prepare(msg, context, Stage.CONSISTENCY_CHECK)
    out = client.consistency_check(ConsistencyRequest.from_record(record))
    return _reply(msg, context, client, out)


@one_line_errors
def unmask(msg: Message, context: Context) -> Message:
    """Stage 4: per peer, the self-mask share if it survived, else the key share."""
    _, client, record = _prepare(msg, context, Stage.UNMASK)
    out = client.unmask(UnmaskRequest.from_record(record))
    return _reply(msg, context, client, out)


def register(app: ClientApp, update_fn: UpdateFn = train_update) -> None:
    """Register one query handler per protocol stage on ``app``.

    ``update_fn`` produces the vector to mask (benchmarks pass a synthetic one).
    """
    handlers: dict[Stage, Handler] = {
        Stage.ADVERTISE_KEYS: advertise_keys,
        Stage.SHARE_KEYS: share_keys,
        Stage.MASKED_INPUT: make_masked_input(update_fn),
        Stage.CONSISTENCY_CHECK: consistency_check,
        Stage.UNMASK: unmask,
    }
    for stage, handler in handlers.items():
        app.query(handler_action(stage))(handler)
