"""Secure-aggregation handlers of the ClientApp (``query.secagg_<stage>``).

The handlers only move messages: each parses the request with the protocol's
strict ``from_record`` (any malformed field is a typed error and a one-line
error reply), calls the :class:`~fedsec.secagg.client.SecAggClient` method of
its stage, and stores the client's whole state as bytes in ``context.state``
(node-local memory; the secret keys never leave the site). The masked-input
handler first trains: the update ``trained − global`` is what gets masked.

Everything that can weaken the site's guarantee comes from the site itself
(:mod:`clients.site_config`): its policy (checked by the protocol client and,
for distributed DP, here), its signing key and the site registry (node config
``secagg-keys-dir``, never the run config). With distributed DP the site
checks the round's noise against its policy twice: when it masks (the noise
if every participant survives) and when it unmasks (the noise the actual
survivors carry), and refuses to unmask below its floor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from clients.errors import one_line_errors
from clients.faults import maybe_corrupt_shares, maybe_drop
from clients.site_config import site_policy, trust_anchors
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
from fedsec.policy import SitePolicy
from fedsec.secagg.client import SecAggClient
from fedsec.secagg.messages import (
    AdvertiseKeysRequest,
    ClientMessage,
    ConsistencyRequest,
    MaskedInput,
    MaskedInputRequest,
    SeedRevealRequest,
    ShareKeysRequest,
    UnmaskRequest,
)
from fedsec.secagg.stages import Stage

STATE_KEY = "fedsec.secagg"
# distributed DP: the noise parameters of the round being unmasked
DDP_STATE_KEY = "fedsec.secagg.ddp"
# statistics (clients.analytics_handlers): the round's noise, to check the
# survivors before unmasking
STATS_STATE_KEY = "fedsec.secagg.statistics"

Handler = Callable[[Message, Context], Message]


@dataclass(frozen=True)
class Update:
    """What a site masks: a flat float32 update, its weight, public metrics."""

    delta: npt.NDArray[np.float32]
    weight: int
    public_metrics: dict[str, float]


UpdateFn = Callable[[Message, Context, ClientSettings], Update]


def _load(
    context: Context, settings: ClientSettings, policy: SitePolicy
) -> SecAggClient:
    saved = context.state.get(STATE_KEY)
    if isinstance(saved, ConfigRecord):
        return SecAggClient.from_bytes(bytes(saved["client"]), policy)
    signing_key = None
    if settings.secagg.mode == "active":
        anchors = trust_anchors(context)
        folder = anchors.require_keys_dir()
        if not anchors.site_name:
            raise ConfigError("the active variant needs node config 'secagg-site'")
        signing_key = load_signing_key(folder, anchors.site_name)
    return SecAggClient(
        context.node_id,
        settings.secagg.protocol_config(),
        signing_key=signing_key,
        policy=policy,
    )


def reply(
    msg: Message,
    context: Context,
    client: SecAggClient,
    out: ClientMessage,
    **extra: Any,
) -> Message:
    """Store the client's state, reply with its protocol message (and ``extra``)."""
    context.state[STATE_KEY] = ConfigRecord({"client": client.to_bytes()})
    content = RecordDict({PROTOCOL_RECORD: ConfigRecord(out.to_record()), **extra})
    return Message(content=content, reply_to=msg)


def prepare(
    msg: Message, context: Context, stage: Stage
) -> tuple[ClientSettings, SecAggClient, dict[str, Any], SitePolicy]:
    """Settings, the site's protocol client, the request's record, the policy."""
    settings = ClientSettings.from_mapping(dict(msg.content["config"]))
    maybe_drop(context.node_config, settings.faults, stage.value)
    policy = site_policy(context)
    if settings.dp.mode not in ("distributed", "local_opacus"):
        policy.require_dp_noise(None)  # refused if the site requires DP
    client = _load(context, settings, policy)
    return settings, client, dict(msg.content[PROTOCOL_RECORD]), policy


@one_line_errors
def advertise_keys(msg: Message, context: Context) -> Message:
    """Stage 0: fresh key pairs for a new key set (and this site's name)."""
    _, client, record, _ = prepare(msg, context, Stage.ADVERTISE_KEYS)
    out = client.advertise_keys(AdvertiseKeysRequest.from_record(record))
    name = ConfigRecord({"name": trust_anchors(context).site_name})
    return reply(msg, context, client, out, **{SITE_RECORD: name})


@one_line_errors
def seed_reveal(msg: Message, context: Context) -> Message:
    """Stage 0b (sparse graph): reveal the nonce the graph seed is built from."""
    _, client, record, _ = prepare(msg, context, Stage.SEED_REVEAL)
    out = client.seed_reveal(SeedRevealRequest.from_record(record))
    return reply(msg, context, client, out)


@one_line_errors
def share_keys(msg: Message, context: Context) -> Message:
    """Stage 1: Shamir shares of the seeds and mask keys, encrypted per peer."""
    settings, client, record, _ = prepare(msg, context, Stage.SHARE_KEYS)
    if settings.secagg.mode == "active":
        sites = msg.content[SITES_RECORD]
        mapping = dict(zip(sites["nodes"], sites["names"], strict=True))
        registry = load_registry(trust_anchors(context).require_keys_dir())
        client.set_verify_keys(verify_keys_for(mapping, registry))
    out = client.share_keys(ShareKeysRequest.from_record(record))
    out = maybe_corrupt_shares(
        context.node_config,
        settings.faults,
        out,
        client.s.node_id,
        client.s.signing_key,
    )
    return reply(msg, context, client, out)


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
    context: Context,
    policy: SitePolicy,
) -> ClientMessage:
    """Distributed DP: clip, rotate, round, add discrete noise, mask in the ring.

    The noise parameters come from the server; the site checks them against
    its own policy (clip norm, and the noise multiplier the sum carries if
    every participant survives) and keeps them to check the survivors later.
    """
    from fedsec.dp.distributed import DistributedDPParams, encode

    record = msg.content[DP_RECORD]
    params = DistributedDPParams.from_config(dict(record))
    participants = len(request.participants)
    if (
        params.ring_bits != client.s.config.bits
        or params.dim != update.delta.size
        or params.num_clients < participants
    ):
        raise MaliciousServerError(
            "noise parameters do not match the round", stage="ddp"
        )
    policy.require_clip(params.clip_norm)
    policy.require_dp_noise(_honest_noise(params, participants, policy))
    values = encode(update.delta, params, bytes(record["rotation-seed"]))
    context.state[DDP_STATE_KEY] = ConfigRecord(params.to_config())  # type: ignore[arg-type]
    # every site weighs 1: the mean is over the survivors (DP-FedAvg)
    return client.masked_ring_input(request, values.astype(np.uint32), 1)


def _check_survivor_noise(
    request: UnmaskRequest, context: Context, policy: SitePolicy
) -> None:
    """Distributed DP: refuse to unmask a sum whose survivors carry too little noise."""
    from fedsec.dp.distributed import DistributedDPParams

    saved = context.state.get(DDP_STATE_KEY)
    if not isinstance(saved, ConfigRecord):
        return  # this site's input of the round carries no distributed noise
    params = DistributedDPParams.from_config(dict(saved))
    policy.require_dp_noise(_honest_noise(params, len(request.survivors), policy))


def _check_statistics_release(
    request: UnmaskRequest, context: Context, policy: SitePolicy
) -> None:
    """Statistics: refuse to unmask a sum over too few sites or with too little noise.

    ``policy-min-sites`` bounds the sites in a released statistic (the
    survivors whose inputs the sum holds); with distributed DP the noise the
    survivors not colluding with the server carry must reach the site's
    ``policy-min-noise-multiplier``.
    """
    from fedsec.analytics.noise import StatsNoise

    saved = context.state.get(STATS_STATE_KEY)
    if not isinstance(saved, ConfigRecord):
        return  # this site's input of the round was not a statistics vector
    policy.require_sites(len(request.survivors), "sites in the released statistics")
    noise = StatsNoise.from_config(dict(saved))
    if noise.enabled:
        honest = len(request.survivors) - policy.colluders
        policy.require_dp_noise(noise.effective(honest))


def _honest_noise(params: Any, summed: int, policy: SitePolicy) -> float:
    """The noise multiplier of a sum of ``summed`` inputs, colluders' noise aside.

    Sites that collude with the server tell it their noise, so only the
    others' noise protects this site: ``policy-colluders`` of them are not
    counted.
    """
    honest = summed - policy.colluders
    if honest < 1:
        return 0.0
    return float(params.effective_noise_multiplier(honest))


def make_masked_input(update_fn: UpdateFn) -> Handler:
    """The masked-input handler, taking its update from ``update_fn``."""

    @one_line_errors
    def masked_input(msg: Message, context: Context) -> Message:
        """Stage 2: compute the update, upload it quantised under its masks."""
        settings, client, record, policy = prepare(msg, context, Stage.MASKED_INPUT)
        request = MaskedInputRequest.from_record(record)
        update = update_fn(msg, context, settings)
        context.state.pop(DDP_STATE_KEY, None)
        context.state.pop(STATS_STATE_KEY, None)
        if DP_RECORD in msg.content:
            out = _masked_with_noise(client, request, update, msg, context, policy)
        elif settings.dp.mode == "distributed":
            # an honest site never sends a noise-free update when DP is on
            raise MaliciousServerError(
                "distributed DP is on but the request carries no noise parameters",
                stage=Stage.MASKED_INPUT.value,
            )
        else:
            out = client.masked_input(request, update.delta, update.weight)
        if not isinstance(out, MaskedInput):  # a share complaint
            return reply(msg, context, client, out)
        return reply(
            msg, context, client, out, metrics=MetricRecord(update.public_metrics)
        )

    return masked_input


@one_line_errors
def consistency_check(msg: Message, context: Context) -> Message:
    """Stage 3 (active variant): sign the survivor set the server announced."""
    _, client, record, _ = prepare(msg, context, Stage.CONSISTENCY_CHECK)
    out = client.consistency_check(ConsistencyRequest.from_record(record))
    return reply(msg, context, client, out)


@one_line_errors
def unmask(msg: Message, context: Context) -> Message:
    """Stage 4: per peer, the self-mask share if it survived, else the key share."""
    _, client, record, policy = prepare(msg, context, Stage.UNMASK)
    request = UnmaskRequest.from_record(record)
    _check_survivor_noise(request, context, policy)
    _check_statistics_release(request, context, policy)
    out = client.unmask(request)
    return reply(msg, context, client, out)


def register(app: ClientApp, update_fn: UpdateFn = train_update) -> None:
    """Register one query handler per protocol stage on ``app``.

    ``update_fn`` produces the vector to mask (benchmarks pass a synthetic one).
    """
    handlers: dict[Stage, Handler] = {
        Stage.ADVERTISE_KEYS: advertise_keys,
        Stage.SEED_REVEAL: seed_reveal,
        Stage.SHARE_KEYS: share_keys,
        Stage.MASKED_INPUT: make_masked_input(update_fn),
        Stage.CONSISTENCY_CHECK: consistency_check,
        Stage.UNMASK: unmask,
    }
    for stage, handler in handlers.items():
        app.query(handler_action(stage))(handler)
