"""The fedsec ServerApp: typed config in, federated rounds out.

``flwr run .`` calls :func:`main` with ``[tool.flwr.app.config]`` (plus
``-c`` overrides) as ``context.run_config``; the Hydra entry point builds an
app around an already parsed :class:`~fedsec.config.RunConfig` with
:func:`make_server_app`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp

from fedsec.config import RunConfig
from fedsec.data import server_test_set
from fedsec.flower.records import record_to_weights, weights_to_record
from fedsec.models import EvalResult, build_model, evaluate, get_weights, set_weights
from strategies.backend_factory import build_backend
from strategies.backends import AggregationBackend
from strategies.factory import build_strategy
from strategies.loop import History, RoundRecord, run_rounds
from strategies.run_output import RunOutput

log = logging.getLogger("fedsec")


def _setup_logging() -> None:
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s fedsec: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def run(
    grid: Grid,
    cfg: RunConfig,
    *,
    backend: AggregationBackend | None = None,
    on_round: Callable[[RoundRecord], None] | None = None,
    on_model: Callable[[int, ArrayRecord], None] | None = None,
) -> History:
    """Train ``cfg.num_rounds`` rounds over ``grid`` and return the history."""
    _setup_logging()
    test_set = server_test_set(cfg.data.task, cfg.data.test_fraction, cfg.data.seed)
    model = build_model(
        cfg.train.model,
        test_set.num_features,
        test_set.num_outputs,
        cfg.train.hidden_dim,
        seed=cfg.data.seed,
    )
    backend = backend or build_backend(cfg)
    strategy = build_strategy(cfg.strategy, secure=backend.name != "plain")

    def evaluate_global(arrays: ArrayRecord) -> EvalResult:
        set_weights(model, record_to_weights(arrays))
        return evaluate(model, test_set)

    log.info(
        "fedsec: task=%s model=%s strategy=%s backend=%s rounds=%d",
        cfg.data.task,
        cfg.train.model,
        cfg.strategy.name,
        backend.name,
        cfg.num_rounds,
    )
    return run_rounds(
        grid,
        strategy,
        backend,
        weights_to_record(get_weights(model)),
        num_rounds=cfg.num_rounds,
        train_config=ConfigRecord(
            {**cfg.client_mapping(), "num-server-rounds": cfg.num_rounds}  # type: ignore[dict-item]
        ),
        evaluate=evaluate_global,
        timeout=cfg.round_timeout,
        on_round=on_round,
        on_model=on_model,
    )


def make_server_app(
    cfg: RunConfig,
    on_finish: Callable[[History], None] | None = None,
    on_error: Callable[[BaseException], None] | None = None,
) -> ServerApp:
    """A ServerApp bound to an already parsed config (Hydra, tests).

    ``on_finish`` receives the history; ``on_error`` any exception the run
    raised (the simulation engine only logs it), before it is re-raised.
    """
    server_app = ServerApp()

    @server_app.main()
    def _main(grid: Grid, context: Context) -> None:
        try:
            history = run(grid, cfg)
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
    """Entry point of ``flwr run``: parse the run config once, then train.

    With ``FEDSEC_RUNS_DIR`` set on the coordinator, the run's metrics and
    global models are kept there (:mod:`strategies.run_output`).
    """
    cfg = RunConfig.from_mapping(context.run_config)
    output = RunOutput.from_env(context.run_id)
    if output is None:
        run(grid, cfg)
    else:
        run(grid, cfg, on_round=output.round, on_model=output.model)
