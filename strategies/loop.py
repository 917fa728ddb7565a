"""The federated round loop: configure, aggregate through a backend, evaluate, log.

Flower's ``Strategy.start`` is a plain loop with one ``send_and_receive`` per
round; this one is the same loop with two additions fedsec needs: the
training round goes through an :class:`~strategies.backends.AggregationBackend`
(plain, secure aggregation or MPC), and every round is measured and logged
in one line: round, accuracy, loss, seconds, bytes sent and received.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from flwr.app import ArrayRecord, ConfigRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from fedsec.models import EvalResult
from strategies.backends import AggregationBackend

if TYPE_CHECKING:
    from fedsec.analytics.result import GlobalStatistics

log = logging.getLogger("fedsec")

EvaluateFn = Callable[[ArrayRecord], EvalResult]


@dataclass
class RoundRecord:
    """One round as written to ``metrics.json``."""

    round: int
    accuracy: float
    loss: float
    seconds: float
    bytes_up: int
    bytes_down: int
    extra: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """Flat dict: the fixed fields plus any backend metrics."""
        row = asdict(self)
        extra = row.pop("extra")
        return {**row, **extra}


@dataclass
class History:
    """All rounds of a run, the initial evaluation and the final model.

    ``statistics``: the federation's statistics the sites were scaled with
    (``standardise='global'``), else ``None``.
    """

    initial: EvalResult
    rounds: list[RoundRecord]
    arrays: ArrayRecord
    statistics: GlobalStatistics | None = None

    @property
    def final(self) -> EvalResult:
        """Evaluation of the final global model."""
        if not self.rounds:
            return self.initial
        last = self.rounds[-1]
        return EvalResult(loss=last.loss, accuracy=last.accuracy, num_examples=0)


def run_rounds(
    grid: Grid,
    strategy: Strategy,
    backend: AggregationBackend,
    initial_arrays: ArrayRecord,
    *,
    num_rounds: int,
    train_config: ConfigRecord,
    evaluate: EvaluateFn,
    timeout: float,
    on_round: Callable[[RoundRecord], None] | None = None,
    on_model: Callable[[int, ArrayRecord], None] | None = None,
) -> History:
    """Run ``num_rounds`` rounds and return their history.

    A round whose backend yields no aggregate (too few replies, an aborted
    secure round) leaves the global model unchanged and is still logged.
    ``on_model`` receives the global model after each round (round 0: the
    initial one), ``on_round`` each round's record.
    """
    arrays = initial_arrays
    if on_model is not None:
        on_model(0, arrays)
    initial = evaluate(arrays)
    log.info("round 0: accuracy=%.4f loss=%.4f", initial.accuracy, initial.loss)
    rounds: list[RoundRecord] = []
    for server_round in range(1, num_rounds + 1):
        started = time.perf_counter()
        messages = list(
            strategy.configure_train(
                server_round, arrays, ConfigRecord(dict(train_config)), grid
            )
        )
        outcome = backend.train_round(grid, server_round, messages, timeout)
        new_arrays, _ = (
            strategy.aggregate_train(server_round, outcome.replies)
            if outcome.replies
            else (None, None)
        )
        if new_arrays is not None:
            arrays = new_arrays
        else:
            log.warning(
                "round %d: no aggregate, the global model is unchanged", server_round
            )
        result = evaluate(arrays)
        record = RoundRecord(
            round=server_round,
            accuracy=result.accuracy,
            loss=result.loss,
            seconds=time.perf_counter() - started,
            bytes_up=outcome.bytes_up,
            bytes_down=outcome.bytes_down,
            extra=outcome.metrics,
        )
        rounds.append(record)
        log.info(
            "round %d/%d [%s]: accuracy=%.4f loss=%.4f seconds=%.2f "
            "bytes_down=%d bytes_up=%d%s",
            server_round,
            num_rounds,
            backend.name,
            record.accuracy,
            record.loss,
            record.seconds,
            record.bytes_down,
            record.bytes_up,
            "".join(f" {k}={v:g}" for k, v in sorted(outcome.metrics.items())),
        )
        if on_model is not None:
            on_model(server_round, arrays)
        if on_round is not None:
            on_round(record)
    return History(initial=initial, rounds=rounds, arrays=arrays)
