"""The federation's statistics as a run mode: one analytics round over the Grid.

Secure mode (``secagg-mode`` set, or the statistics that precede training
with ``standardise='global'``) runs one round of the secure-aggregation
backend's protocol (:meth:`~strategies.secagg_backend.SecAggBackend.secure_sum`):
every connected site masks its statistics vector, written as digits in the
ring (:mod:`fedsec.analytics.digits`), so the server learns only the exact
sums over the surviving sites (at least t of them, and at least each site's
``policy-min-sites``). Sites may drop at any stage, as in a training round.
With ``dp-mode='distributed'`` every site adds discrete noise calibrated for
``dp-survivor-fraction`` of the sites surviving, and ε is reported for the
actual survivors. Plain mode (``secagg-mode='none'``) asks every site for its
integers in the clear and sums them: for comparison, and for sites whose
policy takes part in ``plain``.

The result (:class:`~fedsec.analytics.result.GlobalStatistics`) is written as
JSON, a Markdown table and a PNG of the histograms into ``analytics-out``.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from flwr.app import ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy.strategy_utils import sample_nodes

from fedsec.analytics.digits import DigitLayout
from fedsec.analytics.layout import Layout
from fedsec.analytics.noise import StatsNoise, magnitudes
from fedsec.analytics.result import GlobalStatistics, summarise
from fedsec.config import RunConfig, SecAggSettings
from fedsec.data.schema import Schema
from fedsec.dp.accounting import epsilon_of_steps
from fedsec.errors import AbortError
from fedsec.flower.analytics import (
    ANALYTICS_RECORD,
    MASKED_ACTION,
    PLAIN_ACTION,
    SCHEMA_KEY,
    STATISTICS_RECORD,
    AnalyticsRequest,
    message_type,
)
from fedsec.flower.exchange import send_and_collect
from fedsec.flower.records import content_bytes
from strategies.secagg_backend import MaskedStage, SecAggBackend, SecureSumAborted

log = logging.getLogger("fedsec")


@dataclass
class AnalyticsOutcome:
    """One analytics round: the statistics (``None`` if aborted) and its cost."""

    statistics: GlobalStatistics | None
    seconds: float
    bytes_up: int
    bytes_down: int
    metrics: dict[str, float] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)


def secure_settings(cfg: RunConfig) -> SecAggSettings:
    """The secure-aggregation settings of a statistics round.

    The run's own with a ``secagg-mode``; otherwise the semi-honest variant
    with the run's other ``secagg-*`` values (the statistics that precede
    training are always summed securely).
    """
    if cfg.secagg.enabled:
        return cfg.secagg
    return replace(cfg.secagg, mode="semi_honest")


def statistics_noise(cfg: RunConfig, num_sites: int) -> StatsNoise:
    """Distributed DP of the statistics: the run's ``dp-*`` values, or none."""
    if cfg.dp.mode != "distributed":
        return StatsNoise()
    expected = max(1, math.ceil(cfg.dp.survivor_fraction * num_sites - 1e-9))
    return StatsNoise(cfg.dp.noise_multiplier, expected)


def request_config(cfg: RunConfig, schema: Schema) -> ConfigRecord:
    """The config record a statistics request carries: run config and schema."""
    return ConfigRecord({**cfg.client_mapping(), SCHEMA_KEY: schema.to_json()})


def run_analytics(
    grid: Grid,
    cfg: RunConfig,
    schema: Schema,
    *,
    backend: SecAggBackend | None = None,
    protocol_round: int = 1,
    secure: bool | None = None,
) -> AnalyticsOutcome:
    """One statistics round over every connected site (at least ``min-nodes``).

    ``backend`` lets training reuse the key set of its own secure backend;
    ``secure`` defaults to whether the run config sets a ``secagg-mode``.
    """
    started = time.perf_counter()
    _, nodes = sample_nodes(grid, cfg.strategy.available_nodes, 0)
    layout = Layout.of(schema, cfg.analytics.frac_bits, cfg.analytics.max_rows)
    config = request_config(cfg, schema)
    secure = cfg.secagg.enabled if secure is None else secure
    if secure or backend is not None:
        backend = backend or SecAggBackend(secure_settings(cfg))
        outcome = _secure_round(
            grid, cfg, layout, nodes, config, backend, protocol_round
        )
    else:
        outcome = _plain_round(grid, cfg, layout, nodes, config)
    outcome.seconds = time.perf_counter() - started
    stats = outcome.statistics
    if stats is not None:
        log.info(
            "analytics [%s]: %d sites, %d rows, %d features; seconds=%.2f "
            "bytes_down=%d bytes_up=%d",
            stats.mode,
            stats.sites,
            stats.rows,
            len(stats.features),
            outcome.seconds,
            outcome.bytes_down,
            outcome.bytes_up,
        )
    return outcome


def _secure_round(
    grid: Grid,
    cfg: RunConfig,
    layout: Layout,
    nodes: list[int],
    config: ConfigRecord,
    backend: SecAggBackend,
    protocol_round: int,
) -> AnalyticsOutcome:
    nodes = [n for n in nodes if n not in backend.server.excluded]
    noise = statistics_noise(cfg, len(nodes))
    bits = backend.settings.bits
    digits = DigitLayout.of(magnitudes(layout, noise), bits, len(nodes))
    ask = AnalyticsRequest(len(nodes), bits, noise)
    masked = MaskedStage(
        dim=digits.dim,
        records={ANALYTICS_RECORD: ConfigRecord(ask.to_config())},
        message_type=message_type(MASKED_ACTION),
    )
    try:
        secure = backend.secure_sum(
            grid, protocol_round, nodes, config, masked, cfg.round_timeout
        )
    except SecureSumAborted as exc:
        log.warning("analytics aborted (%s); nothing was revealed", exc.reason)
        return AnalyticsOutcome(None, 0.0, exc.bytes_up, exc.bytes_down, exc.metrics)
    survivors = len(secure.result.survivors)
    metrics = {**secure.metrics, "dim": float(digits.dim)}
    epsilon = None
    if noise.enabled:
        z_eff = noise.effective(survivors)
        # one Gaussian release at sampling rate 1: the RDP bound is rigorous
        epsilon = epsilon_of_steps([(z_eff, 1.0, 1)], cfg.dp.delta, "rdp")
        metrics.update(noise_multiplier=z_eff, epsilon=epsilon)
    stats = summarise(
        layout,
        digits.decode(secure.result.ring_sum),
        sites=survivors,
        mode=backend.name,
        noise_multiplier=noise.effective(survivors),
        epsilon=epsilon,
        delta=cfg.dp.delta if noise.enabled else None,
    )
    return AnalyticsOutcome(stats, 0.0, secure.bytes_up, secure.bytes_down, metrics)


def _plain_round(
    grid: Grid,
    cfg: RunConfig,
    layout: Layout,
    nodes: list[int],
    config: ConfigRecord,
) -> AnalyticsOutcome:
    messages = [
        Message(
            content=RecordDict({"config": config}),
            dst_node_id=node,
            message_type=message_type(PLAIN_ACTION),
        )
        for node in nodes
    ]
    bytes_down = sum(content_bytes(m.content) for m in messages)
    replies = send_and_collect(grid, messages, timeout=cfg.round_timeout)
    totals = [0] * len(layout)
    sites, bytes_up = 0, 0
    for reply in replies:
        if reply.has_error():
            log.info(
                "analytics: node %d dropped: %s",
                reply.metadata.src_node_id,
                reply.error.reason,
            )
            continue
        values = _integers(reply.content[STATISTICS_RECORD].get("values"), len(layout))
        if values is None:
            log.warning(
                "analytics: node %d sent a malformed reply", reply.metadata.src_node_id
            )
            continue
        bytes_up += content_bytes(reply.content)
        totals = [t + v for t, v in zip(totals, values, strict=True)]
        sites += 1
    metrics = {"replies": float(sites), "failures": float(len(nodes) - sites)}
    if sites == 0:
        return AnalyticsOutcome(None, 0.0, bytes_up, bytes_down, metrics)
    stats = summarise(layout, totals, sites=sites, mode="plain")
    return AnalyticsOutcome(stats, 0.0, bytes_up, bytes_down, metrics)


def _integers(values: object, size: int) -> list[int] | None:
    """``values`` if it is a list of ``size`` integers, else ``None``."""
    if not isinstance(values, list) or len(values) != size:
        return None
    out = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
    return out if len(out) == size else None


def require_statistics(outcome: AnalyticsOutcome) -> GlobalStatistics:
    """The statistics, or an :class:`AbortError` saying the round released none."""
    if outcome.statistics is None:
        raise AbortError(
            "the federation's statistics round released nothing (too few sites "
            "survived or every site refused; see the log)",
            stage="analytics",
        )
    return outcome.statistics
