"""The fedsec ServerApp: typed config in, federated rounds (or statistics) out.

``flwr run .`` calls :func:`main` with ``[tool.flwr.app.config]`` (plus
``-c`` overrides) as ``context.run_config``; the Hydra entry point builds an
app around an already parsed :class:`~fedsec.config.RunConfig` with
:func:`make_server_app`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp

from fedsec.analytics.layout import Layout
from fedsec.analytics.report import write_report
from fedsec.config import RunConfig
from fedsec.data import (
    Dataset,
    Scaling,
    Schema,
    load_site_table,
    resolve_schema,
    server_test_set,
    to_dataset,
)
from fedsec.flower.analytics import SCHEMA_KEY
from fedsec.flower.records import record_to_weights, weights_to_record
from fedsec.models import EvalResult, build_model, evaluate, get_weights, set_weights
from strategies.analytics import AnalyticsOutcome, require_statistics, run_analytics
from strategies.backend_factory import build_backend
from strategies.backends import AggregationBackend, wait_for_nodes
from strategies.factory import build_strategy
from strategies.loop import History, RoundRecord, run_rounds
from strategies.run_output import RunOutput
from strategies.secagg_backend import SecAggBackend

log = logging.getLogger("fedsec")


def _setup_logging() -> None:
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s fedsec: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def load_test_set(
    cfg: RunConfig, schema: Schema, scaling: Scaling | None
) -> Dataset | None:
    """The server's test rows: ``test-path``, or the schema's embedded held-out rows.

    Scaled with the federation's statistics when training uses them,
    otherwise on the test rows' own. ``None`` when the schema has no
    embedded data set and no test file is named (accuracy is then NaN).
    """
    if cfg.data.test_path:
        table = load_site_table(cfg.data.test_path, schema)
        return to_dataset(table, scaling or Scaling.fit(table))
    if schema.dataset:
        return server_test_set(schema, cfg.data.test_fraction, cfg.data.seed, scaling)
    return None


def run(
    grid: Grid,
    cfg: RunConfig,
    *,
    backend: AggregationBackend | None = None,
    on_round: Callable[[RoundRecord], None] | None = None,
    on_model: Callable[[int, ArrayRecord], None] | None = None,
) -> History:
    """Train ``cfg.num_rounds`` rounds over ``grid`` and return the history.

    With ``standardise='global'`` a secure statistics round comes first
    (reusing the training backend's key set when it is a secure-aggregation
    one) and every request then carries the federation's scaling. With
    ``vertical-model`` set, one vertical training session instead
    (:mod:`strategies.vertical`). Waits first for the federation
    (:func:`~strategies.backends.wait_for_nodes`).
    """
    _setup_logging()
    wait_for_nodes(grid, cfg.strategy.available_nodes, cfg.round_timeout)
    if cfg.vertical.enabled:
        from strategies.vertical import run_vertical

        return run_vertical(grid, cfg)
    schema = resolve_schema(cfg.data.task, cfg.data.task_schema)
    backend = backend or build_backend(cfg)
    statistics = None
    scaling = None
    extra: dict[str, list[float]] = {}
    if cfg.data.standardise == "global":
        reuse = backend if isinstance(backend, SecAggBackend) else None
        outcome = run_analytics(
            grid, cfg, schema, backend=reuse, protocol_round=0, secure=True
        )
        statistics = require_statistics(outcome)
        layout = Layout.of(schema, cfg.analytics.frac_bits, cfg.analytics.max_rows)
        scaling = statistics.scaling(layout)
        extra = dict(scaling.to_config())
    test_set = load_test_set(cfg, schema, scaling)
    model = build_model(
        cfg.train.model,
        schema.input_dim,
        schema.num_outputs,
        cfg.train.hidden_dim,
        seed=cfg.data.seed,
    )
    strategy = build_strategy(cfg.strategy, secure=backend.name != "plain")

    def evaluate_global(arrays: ArrayRecord) -> EvalResult:
        if test_set is None:
            return EvalResult(loss=float("nan"), accuracy=float("nan"), num_examples=0)
        set_weights(model, record_to_weights(arrays))
        return evaluate(model, test_set)

    log.info(
        "fedsec: task=%s model=%s strategy=%s backend=%s rounds=%d standardise=%s",
        schema.name,
        cfg.train.model,
        cfg.strategy.name,
        backend.name,
        cfg.num_rounds,
        cfg.data.standardise,
    )
    if test_set is None:
        log.info("fedsec: no server test set (schema without data set, no test-path)")
    history = run_rounds(
        grid,
        strategy,
        backend,
        weights_to_record(get_weights(model)),
        num_rounds=cfg.num_rounds,
        train_config=ConfigRecord(
            {
                **cfg.client_mapping(),
                "num-server-rounds": cfg.num_rounds,
                SCHEMA_KEY: schema.to_json(),
                **extra,
            }
        ),
        evaluate=evaluate_global,
        timeout=cfg.round_timeout,
        on_round=on_round,
        on_model=on_model,
    )
    history.statistics = statistics
    return history


def analyse(grid: Grid, cfg: RunConfig) -> AnalyticsOutcome:
    """``mode='analytics'``: one statistics round; write JSON, Markdown, PNG."""
    _setup_logging()
    wait_for_nodes(grid, cfg.strategy.available_nodes, cfg.round_timeout)
    schema = resolve_schema(cfg.data.task, cfg.data.task_schema)
    outcome = run_analytics(grid, cfg, schema)
    stats = require_statistics(outcome)
    outcome.paths = write_report(stats, Path(cfg.analytics.out_dir))
    log.info("analytics: wrote %s", ", ".join(str(p) for p in outcome.paths.values()))
    return outcome


def run_mode(grid: Grid, cfg: RunConfig) -> History | AnalyticsOutcome:
    """Train, or compute the federation's statistics (``mode``)."""
    if cfg.mode == "analytics":
        return analyse(grid, cfg)
    return run(grid, cfg)


def make_server_app(
    cfg: RunConfig,
    on_finish: Callable[[History | AnalyticsOutcome], None] | None = None,
    on_error: Callable[[BaseException], None] | None = None,
) -> ServerApp:
    """A ServerApp bound to an already parsed config (Hydra, tests).

    ``on_finish`` receives the history (or, with ``mode='analytics'``, the
    analytics outcome); ``on_error`` any exception the run raised (the
    simulation engine only logs it), before it is re-raised.
    """
    server_app = ServerApp()

    @server_app.main()
    def _main(grid: Grid, context: Context) -> None:
        try:
            history = run_mode(grid, cfg)
        except BaseException as exc:
            if on_error is not None:
                on_error(exc)
            raise
        if on_finish is not None:
            on_finish(history)

    return server_app


app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Entry point of ``flwr run``: parse the run config once, then train or analyse.

    With ``FEDSEC_RUNS_DIR`` set on the coordinator, a training run's metrics
    and global models are kept there (:mod:`strategies.run_output`).
    """
    cfg = RunConfig.from_mapping(context.run_config)
    output = RunOutput.from_env(context.run_id)
    if output is None or cfg.mode == "analytics":
        run_mode(grid, cfg)
    else:
        run(grid, cfg, on_round=output.round, on_model=output.model)
