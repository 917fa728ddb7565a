"""Secure aggregation in Flower's simulation: fedsec vs Flower's SecAgg+ vs plain.

For every number of clients ``n`` and model size ``d`` one ``run_simulation``
(Ray, 2 CPUs, one per ClientApp) runs a ServerApp that measures, one after
the other on the same SuperNodes:

- ``fedsec``: :func:`strategies.loop.run_rounds` with FedAvg and
  :class:`~strategies.secagg_backend.SecAggBackend` (Bonawitz et al., CCS 2017;
  sparse graph of Bell et al., CCS 2020); a fraction ``dropout`` of the
  clients drops at the unmask stage, after its masked input was received;
- ``flower-secaggplus``: Flower's legacy ``SecAggPlusWorkflow`` with a legacy
  FedAvg and a ``NumPyClient`` behind ``secaggplus_mod``, the same clients
  dropping at its unmask stage;
- ``plain``: FedAvg with :class:`~strategies.backends.PlainBackend`.

One ClientApp serves all three: the ``query.secagg_*`` handlers of
:mod:`clients.secagg_handlers` with a synthetic update source, and one
``train`` handler that goes through ``secaggplus_mod`` when a message carries
Flower's SecAgg+ record and answers plain FedAvg otherwise.

The model is one float32 vector of ``d`` parameters. A client's update is a
small pseudo-random vector drawn from ``(seed, node id, round)`` and its weight
a fixed example count drawn from ``(seed, node id)`` (benchmark data only:
numpy's generator never touches a mask), so the server recomputes the exact
plaintext weighted average and reports the largest deviation of each round's
result from it (``max_abs_error_average``, and ``max_abs_error_sum``: see
:mod:`experiments.bench_fields`).

Times: ``seconds_per_round`` is the median over the steady rounds (round 1,
with Ray's start-up and fedsec's key set-up, is left out); ``server_seconds``
is the part of a round the server spends outside its exchanges with the
clients, each timed from its push to the arrival of its last reply (protocol
work before the push and after the last reply: building messages, unmasking,
aggregation; replies handled while others are still on their way are not
counted); ``client_seconds`` the median time a
client spends inside its handlers in a round, measured there and sent back as
a metric that the server strips before the protocol sees the reply.

Example::

    python -m experiments.bench_secagg_sim --clients 10 --dim 1000000 \
        --dropout 0.1 --rounds 4
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from flwr.app import (
    ArrayRecord,
    ConfigRecord,
    Context,
    Error,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp
from flwr.common.constant import ErrorCode
from flwr.serverapp import Grid, ServerApp

from experiments.bench_fields import error_fields, ring_fields

Vector = npt.NDArray[np.float32]

IMPLS = ("plain", "fedsec", "flower-secaggplus")
BENCH_RECORD = "bench"  # client-side timing, stripped by the server-side grid
SEED_KEY = "bench-seed"
UPDATE_SCALE = 0.05  # synthetic updates lie in [-0.05, 0.05)
WEIGHTS = (10, 100)  # a client's example count lies in [10, 100]
TIMEOUT = 3600.0


# ----------------------------------------------------------------- synthetic data
def client_weight(seed: int, node_id: int) -> int:
    """The fixed example count of client ``node_id``."""
    rng = np.random.default_rng([seed, node_id])
    return int(rng.integers(WEIGHTS[0], WEIGHTS[1] + 1))


def client_update(seed: int, node_id: int, server_round: int, dim: int) -> Vector:
    """The synthetic update of ``node_id`` in ``server_round`` (benchmark data)."""
    rng = np.random.default_rng([seed, node_id, server_round])
    return rng.uniform(-UPDATE_SCALE, UPDATE_SCALE, dim).astype(np.float32)


def reference_average(
    seed: int, nodes: Iterable[int], server_round: int, dim: int
) -> npt.NDArray[np.float64]:
    """The plaintext weighted average of the round's updates, in float64."""
    total = np.zeros(dim, dtype=np.float64)
    weight = 0
    for node in nodes:
        w = client_weight(seed, node)
        total += w * client_update(seed, node, server_round, dim).astype(np.float64)
        weight += w
    return total / weight


# --------------------------------------------------------------------- ClientApp
def _timed(msg: Message, context: Context, call_next: Any) -> Message:
    """Mod: time the handler and attach the seconds to a successful reply."""
    start = time.perf_counter()
    reply: Message = call_next(msg, context)
    if not reply.has_error():
        reply.content[BENCH_RECORD] = MetricRecord(
            {"client-seconds": time.perf_counter() - start}
        )
    return reply


def _flower_dropout(drops: frozenset[int]) -> Any:
    """Mod: the partitions in ``drops`` fail Flower's SecAgg+ unmask stage."""
    from flwr.common.secure_aggregation.secaggplus_constants import (
        RECORD_KEY_CONFIGS,
        Key,
        Stage,
    )

    def mod(msg: Message, context: Context, call_next: Any) -> Message:
        configs = msg.content.config_records.get(RECORD_KEY_CONFIGS)
        pid = int(context.node_config.get("partition-id", -1))
        if (
            configs is not None
            and configs.get(Key.STAGE) == Stage.UNMASK
            and (pid in drops)
        ):
            reason = f"injected dropout of partition {pid}"
            code = ErrorCode.CLIENT_APP_RAISED_EXCEPTION
            return Message(Error(code=code, reason=reason), reply_to=msg)
        reply: Message = call_next(msg, context)
        return reply

    return mod


def _secaggplus_if_present(msg: Message, context: Context, call_next: Any) -> Message:
    """Mod: Flower's ``secaggplus_mod`` for messages of its workflow only."""
    from flwr.client.mod import secaggplus_mod
    from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS

    if RECORD_KEY_CONFIGS in msg.content.config_records:
        return secaggplus_mod(msg, context, call_next)
    reply: Message = call_next(msg, context)
    return reply


def _legacy_client_fn(context: Context) -> Any:
    """A NumPyClient whose ``fit`` adds this node's synthetic update."""
    from flwr.client import NumPyClient

    node_id = context.node_id

    class SyntheticClient(NumPyClient):
        def fit(
            self, parameters: list[npt.NDArray[Any]], config: dict[str, Any]
        ) -> tuple[list[npt.NDArray[Any]], int, dict[str, Any]]:
            seed, rnd = int(config[SEED_KEY]), int(config["server-round"])
            start = parameters[0].astype(np.float32, copy=False)
            delta = client_update(seed, node_id, rnd, start.size)
            return [start + delta], client_weight(seed, node_id), {}

    return SyntheticClient().to_client()


def _seed_and_round(msg: Message) -> tuple[int, int]:
    """The data seed and the server round of a Message-API request."""
    config: Mapping[str, Any] = msg.content.config_records["config"]
    return int(config[SEED_KEY]), int(config["server-round"])


def _plain_train(msg: Message, context: Context) -> Message:
    """FedAvg's train handler: global model plus this node's synthetic update."""
    from fedsec.flower.records import flatten, record_to_weights, weights_to_record

    seed, rnd = _seed_and_round(msg)
    start = flatten(record_to_weights(msg.content.array_records["arrays"]))
    trained = start + client_update(seed, context.node_id, rnd, start.size)
    content = RecordDict(
        {
            "arrays": weights_to_record({"w": trained}),
            "metrics": MetricRecord(
                {"num-examples": client_weight(seed, context.node_id)}
            ),
        }
    )
    return Message(content=content, reply_to=msg)


def _train(msg: Message, context: Context) -> Message:
    if any(name.startswith("fitins.") for name in msg.content):
        from flwr.client.message_handler.message_handler import (
            handle_legacy_message_from_msgtype,
        )

        reply: Message = handle_legacy_message_from_msgtype(
            _legacy_client_fn, msg, context
        )
        return reply
    return _plain_train(msg, context)


def _synthetic_update(msg: Message, context: Context, _settings: Any) -> Any:
    """fedsec's update source: this node's synthetic update and weight."""
    from clients.secagg_handlers import Update

    seed, rnd = _seed_and_round(msg)
    arrays = msg.content.array_records["arrays"]
    dim = sum(math.prod(a.shape) for a in arrays.values())
    return Update(
        client_update(seed, context.node_id, rnd, dim),
        client_weight(seed, context.node_id),
        {},
    )


class _TimedQueries:
    """Registers fedsec's query handlers on ``app`` behind the timing mod."""

    def __init__(self, app: ClientApp) -> None:
        self.app = app

    def query(self, action: str) -> Callable[[Any], Any]:
        return self.app.query(action, mods=[_timed])


def make_client_app(flower_drops: frozenset[int]) -> ClientApp:
    """The ClientApp serving fedsec, Flower's SecAgg+ and plain FedAvg."""
    from clients.secagg_handlers import register

    app = ClientApp()
    app.train(mods=[_timed, _flower_dropout(flower_drops), _secaggplus_if_present])(
        _train
    )
    register(_TimedQueries(app), update_fn=_synthetic_update)  # type: ignore[arg-type]
    return app


# ------------------------------------------------------------- server-side probe
def _stage_name(msg: Message) -> str:
    """``train``, ``query.secagg_<stage>``, or ``secaggplus_<stage>`` (Flower)."""
    from flwr.common.secure_aggregation.secaggplus_constants import (
        RECORD_KEY_CONFIGS,
        Key,
    )

    configs = msg.content.config_records.get(RECORD_KEY_CONFIGS)
    if configs is not None and Key.STAGE in configs:
        return "secaggplus_" + str(configs[Key.STAGE])
    return str(msg.metadata.message_type)


def _time_protocol(grid: TimedGrid, server: Any) -> None:
    """Count the seconds fedsec's sans-I/O server spends per round."""
    for name in ("begin_round", "handle", "advance", "result"):
        method = getattr(server, name)

        def timed(*args: Any, _method: Any = method, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return _method(*args, **kwargs)
            finally:
                grid.trace.protocol[grid.round] += time.perf_counter() - start

        setattr(server, name, timed)


@dataclass
class _Trace:
    """Per round: wall seconds, seconds in the grid, per-node bytes and seconds."""

    wall: dict[int, float] = field(default_factory=dict)
    in_grid: dict[int, float] = field(default_factory=lambda: defaultdict(float))
    up: dict[tuple[int, int], int] = field(default_factory=lambda: defaultdict(int))
    client: dict[tuple[int, int], float] = field(
        default_factory=lambda: defaultdict(float)
    )
    # per (round, stage): seconds in the grid, summed client seconds
    stage_grid: dict[tuple[int, str], float] = field(
        default_factory=lambda: defaultdict(float)
    )
    stage_client: dict[tuple[int, str], float] = field(
        default_factory=lambda: defaultdict(float)
    )
    protocol: dict[int, float] = field(default_factory=lambda: defaultdict(float))


class TimedGrid(Grid):
    """A Grid that times each exchange and reads the clients' timings.

    fedsec's and plain's servers exchange through ``push_messages`` and
    ``pull_messages`` (:func:`fedsec.flower.exchange.send_and_collect`);
    Flower's SecAgg+ workflow calls ``send_and_receive``. Either way an
    exchange is timed from the push to the pull that brings its last reply
    (or to its last pull, if some reply never came).
    """

    def __init__(self, inner: Grid) -> None:
        self.inner = inner
        self.trace = _Trace()
        self.round = 0
        self._open: tuple[tuple[int, str], float, set[str], float] | None = None

    @property
    def run(self) -> Any:
        return self.inner.run

    def set_run(self, run: Any) -> None:
        self.inner.set_run(run)

    def create_message(self, *args: Any, **kwargs: Any) -> Message:
        return self.inner.create_message(*args, **kwargs)

    def get_node_ids(self) -> Iterable[int]:
        return self.inner.get_node_ids()

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        self._close()
        messages = list(messages)
        start = time.perf_counter()
        ids = list(self.inner.push_messages(messages))
        if messages:
            stage = (self.round, _stage_name(messages[0]))
            self._open = (stage, start, set(ids), time.perf_counter())
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        replies = list(self.inner.pull_messages(message_ids))
        self._read(replies, None if self._open is None else self._open[0])
        if self._open is not None:
            stage, start, pending, _ = self._open
            pending.difference_update(r.metadata.reply_to_message_id for r in replies)
            self._open = (stage, start, pending, time.perf_counter())
            if not pending:
                self._close()
        return replies

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        self._close()
        messages = list(messages)
        stage = (self.round, _stage_name(messages[0])) if messages else None
        start = time.perf_counter()
        replies = list(self.inner.send_and_receive(messages, timeout=timeout))
        if stage is not None:
            self._add(stage, time.perf_counter() - start)
        self._read(replies, stage)
        return replies

    def _close(self) -> None:
        """Book the open exchange (push → its last pull)."""
        if self._open is not None:
            stage, start, _, last = self._open
            self._add(stage, last - start)
            self._open = None

    def _add(self, stage: tuple[int, str], elapsed: float) -> None:
        self.trace.in_grid[stage[0]] += elapsed
        self.trace.stage_grid[stage] += elapsed

    def _read(self, replies: list[Message], stage: tuple[int, str] | None) -> None:
        """Strip the clients' timing records; count their seconds and bytes."""
        from fedsec.flower.records import content_bytes

        for reply in replies:
            if reply.has_error():
                continue
            key = (self.round, reply.metadata.src_node_id)
            bench = reply.content.metric_records.get(BENCH_RECORD)
            if bench is not None:
                del reply.content[BENCH_RECORD]
                seconds = float(cast(float, bench["client-seconds"]))
                self.trace.client[key] += seconds
                if stage is not None:
                    self.trace.stage_client[stage] += seconds
            self.trace.up[key] += content_bytes(reply.content)

    def fresh(self) -> _Trace:
        """Start a new trace; return the finished one."""
        self._close()
        done, self.trace, self.round = self.trace, _Trace(), 0
        return done


# ------------------------------------------------------------------ the cases
@dataclass(frozen=True)
class Case:
    """One measured configuration."""

    clients: int
    dim: int
    dropout: float
    graph: str
    rounds: int
    seed: int = 0

    @property
    def dropped(self) -> frozenset[int]:
        """Partitions that drop after masking (the first ``round(dropout · n)``)."""
        return frozenset(range(round(self.dropout * self.clients)))


def _fedsec_settings(case: Case) -> Any:
    from fedsec.config import RunConfig

    return RunConfig.from_mapping(
        {
            "secagg-mode": "semi_honest",
            "secagg-graph": case.graph,
            "secagg-rounds-per-key-set": case.rounds,
            "secagg-max-weight": WEIGHTS[1],
            "secagg-clip": 1.0,
            "faults-drop": ",".join(f"{p}:unmask" for p in sorted(case.dropped)),
        }
    )


def _run_message_api(grid: TimedGrid, case: Case, impl: str) -> list[Vector]:
    """fedsec or plain through ``run_rounds``; returns the global model per round."""
    from flwr.serverapp.strategy import FedAvg

    from fedsec.flower.records import flatten, record_to_weights, weights_to_record
    from fedsec.models import EvalResult
    from strategies.backends import AggregationBackend, PlainBackend, RoundOutcome
    from strategies.loop import RoundRecord, run_rounds
    from strategies.secagg_backend import SecAggBackend

    models: list[Vector] = []
    eval_seconds: list[float] = []
    config: dict[str, Any] = {SEED_KEY: case.seed}
    inner: AggregationBackend
    if impl == "fedsec":
        cfg = _fedsec_settings(case)
        inner = SecAggBackend(cfg.secagg)
        _time_protocol(grid, inner.server)
        config |= cfg.client_mapping()
    else:
        inner = PlainBackend()

    class Marked:
        name = inner.name

        def train_round(
            self, grid_: Grid, server_round: int, messages: list[Message], t: float
        ) -> RoundOutcome:
            grid.round = server_round
            return inner.train_round(grid_, server_round, messages, t)

    def evaluate(arrays: ArrayRecord) -> EvalResult:
        start = time.perf_counter()
        models.append(flatten(record_to_weights(arrays)).copy())
        eval_seconds.append(time.perf_counter() - start)
        return EvalResult(loss=0.0, accuracy=0.0, num_examples=0)

    def on_round(record: RoundRecord) -> None:
        grid.trace.wall[record.round] = record.seconds - eval_seconds[-1]

    n = case.clients
    run_rounds(
        grid,
        FedAvg(fraction_evaluate=0.0, min_train_nodes=n, min_available_nodes=n),
        Marked(),
        weights_to_record({"w": np.zeros(case.dim, dtype=np.float32)}),
        num_rounds=case.rounds,
        train_config=ConfigRecord(config),
        evaluate=evaluate,
        timeout=TIMEOUT,
        on_round=on_round,
    )
    return models


def _flower_shares(case: Case) -> tuple[int, int]:
    """Flower's ``num_shares`` and threshold: fedsec's neighbourhood and t."""
    protocol = _fedsec_settings(case).secagg.protocol_config()
    return protocol.degree_for(case.clients) + 1, protocol.threshold_for(case.clients)


def _run_flower(grid: TimedGrid, context: Context, case: Case) -> list[Vector]:
    """Flower's legacy SecAgg+ workflow; returns the global model per round."""
    from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays
    from flwr.server import LegacyContext, ServerConfig
    from flwr.server.strategy import FedAvg as LegacyFedAvg
    from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow

    zeros = np.zeros(case.dim, dtype=np.float32)
    models: list[Vector] = [zeros]
    started: dict[int, float] = {}

    class Recording(LegacyFedAvg):
        def configure_fit(self, server_round: int, *args: Any) -> Any:
            grid.round = server_round
            started[server_round] = time.perf_counter()
            return super().configure_fit(server_round, *args)

        def aggregate_fit(self, server_round: int, *args: Any) -> Any:
            out = super().aggregate_fit(server_round, *args)
            grid.trace.wall[server_round] = time.perf_counter() - started[server_round]
            if out[0] is None:  # no aggregate: the model stays (a large error)
                models.append(models[-1])
            else:
                arrays = parameters_to_ndarrays(out[0])
                models.append(np.asarray(arrays[0], dtype=np.float32))
            return out

    n = case.clients
    strategy = Recording(
        fraction_fit=1.0,
        fraction_evaluate=0.0,
        min_fit_clients=n,
        min_available_clients=n,
        on_fit_config_fn=lambda rnd: {"server-round": rnd, SEED_KEY: case.seed},
        initial_parameters=ndarrays_to_parameters([zeros]),
    )
    shares, threshold = _flower_shares(case)
    legacy = LegacyContext(
        context=context, config=ServerConfig(num_rounds=case.rounds), strategy=strategy
    )
    workflow = DefaultWorkflow(
        fit_workflow=SecAggPlusWorkflow(
            num_shares=shares,
            reconstruction_threshold=threshold,
            max_weight=WEIGHTS[1],
            timeout=TIMEOUT,
        )
    )
    workflow(grid, legacy)
    return models


def _row(case: Case, impl: str, trace: _Trace, models: list[Vector]) -> dict[str, Any]:
    """One JSON row from a finished trace and the global model after each round.

    A value that does not apply (``server_protocol_seconds`` outside fedsec)
    is ``None`` (JSON ``null``).
    """
    nodes = sorted({node for _, node in trace.up})
    total_weight = sum(client_weight(case.seed, node) for node in nodes)
    errors = [
        float(
            np.abs(
                models[rnd].astype(np.float64)
                - models[rnd - 1]
                - reference_average(case.seed, nodes, rnd, case.dim)
            ).max()
        )
        for rnd in range(1, len(models))
    ]
    steady = [r for r in sorted(trace.wall) if r > 1] or sorted(trace.wall)
    client = [s for (r, _), s in trace.client.items() if r in steady]
    upload = [b for (r, _), b in trace.up.items() if r in steady]
    return {
        "impl": impl,
        "clients": case.clients,
        "dim": case.dim,
        "dropout": case.dropout,
        "dropped_clients": 0 if impl == "plain" else len(case.dropped),
        "graph": _fedsec_settings(case)
        .secagg.protocol_config()
        .graph_for(case.clients)
        .value,
        "seconds_per_round": statistics.median(trace.wall[r] for r in steady),
        "client_seconds": statistics.median(client) if client else None,
        "server_seconds": statistics.median(
            trace.wall[r] - trace.in_grid[r] for r in steady
        ),
        "server_protocol_seconds": (
            statistics.median(trace.protocol[r] for r in steady)
            if trace.protocol
            else None
        ),
        "upload_bytes_per_client": statistics.median(upload) if upload else 0,
        "plaintext_float32_bytes": 4 * case.dim,
        # the model moves by the average; the sum's error is the same times
        # the (exact) total weight: both, named as such (experiments/bench_fields)
        **(
            error_fields(max(errors) * total_weight, total_weight)
            if errors
            else {"max_abs_error_sum": None, "max_abs_error_average": None}
        ),
        **(_ring(case) if impl == "fedsec" else {}),
        "rounds": case.rounds,
        "steady_rounds": len(steady),
        "first_round_seconds": trace.wall.get(1),
        **_stage_breakdown(trace, steady, case.clients),
        "cores": os.cpu_count(),
        # the machine may be shared: its 1-minute load when the case ended
        "load_average": round(os.getloadavg()[0], 2),
    }


def _ring(case: Case) -> dict[str, float | int | str]:
    """The ring fedsec used in this case, and the rule that picked it."""
    secagg = _fedsec_settings(case).secagg
    return ring_fields(secagg.bits, secagg.clip, secagg.max_weight, case.clients)


def _stage_breakdown(
    trace: _Trace, steady: list[int], clients: int
) -> dict[str, dict[str, float]]:
    """Per stage, per steady round: seconds in the grid, client seconds per client."""
    grid: dict[str, float] = defaultdict(float)
    client: dict[str, float] = defaultdict(float)
    for (rnd, stage), seconds in trace.stage_grid.items():
        if rnd in steady:
            grid[stage] += seconds / len(steady)
    for (rnd, stage), seconds in trace.stage_client.items():
        if rnd in steady:
            client[stage] += seconds / (len(steady) * clients)
    return {"grid_seconds_by_stage": grid, "client_seconds_by_stage": client}


def _server_app(
    cases: list[Case], impls: tuple[str, ...], rows: list[dict[str, Any]]
) -> ServerApp:
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        timed = TimedGrid(grid)
        for case in cases:
            for impl in impls:
                if impl == "flower-secaggplus":
                    models = _run_flower(timed, context, case)
                else:
                    models = _run_message_api(timed, case, impl)
                row = _row(case, impl, timed.fresh(), models)
                print(json.dumps(row, allow_nan=False), flush=True)
                rows.append(row)

    return app


def simulate_cases(
    cases: list[Case], impls: tuple[str, ...] = IMPLS
) -> list[dict[str, Any]]:
    """Run ``cases`` (all with the same ``clients``) in one Flower simulation.

    With ``fedsec`` among ``impls`` one simulation serves one case: a site
    keeps its secure-aggregation state for the whole simulation, and the
    next case's key set, numbered from 1 again, would be refused as a replay.
    """
    if len({c.clients for c in cases}) != 1:
        raise ValueError("one simulation serves one number of clients")
    if "fedsec" in impls and len(cases) > 1:
        raise ValueError("one simulation serves one fedsec case")
    from experiments.simulate import quiet_flower_env

    quiet_flower_env()
    from flwr.simulation import run_simulation

    logging.getLogger("flwr").setLevel(logging.WARNING)
    rows: list[dict[str, Any]] = []
    drops = frozenset().union(*(c.dropped for c in cases))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        run_simulation(
            server_app=_server_app(cases, impls, rows),
            client_app=make_client_app(drops),
            num_supernodes=cases[0].clients,
            backend_config={
                "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                "init_args": {
                    "num_cpus": 2,
                    "num_gpus": 0,
                    "logging_level": logging.ERROR,
                    "log_to_driver": True,
                    "include_dashboard": False,
                },
            },
        )
    if len(rows) != len(cases) * len(impls):
        raise RuntimeError("the simulation ended early (see the log above)")
    return rows


def run_simulation_cases(
    clients: list[int], dims: list[int], dropout: float, graph: str, rounds: int
) -> list[dict[str, Any]]:
    """Every ``(n, d)`` with the three impls; one simulation per ``(n, d)``."""
    rows: list[dict[str, Any]] = []
    for n in clients:
        for d in dims:
            rows += simulate_cases([Case(n, d, dropout, graph, rounds)])
    return rows


def main(argv: list[str] | None = None) -> None:
    """Entry point: print one JSON object per case and impl."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, nargs="+", default=[10])
    p.add_argument("--dim", type=int, nargs="+", default=[100_000])
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--graph", choices=["auto", "complete", "sparse"], default="auto")
    p.add_argument("--rounds", type=int, default=4)
    args = p.parse_args(argv)
    run_simulation_cases(args.clients, args.dim, args.dropout, args.graph, args.rounds)


if __name__ == "__main__":
    main()
