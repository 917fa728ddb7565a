"""A Hydra callback: one progress line per finished run of a sweep.

Enabled for ``experiments.run`` by ``conf/hydra/callbacks/progress.yaml``
(in the defaults of ``conf/config.yaml``)::

    sweep [2/6] 1m48s elapsed, ETA ~3m36s: num_clients=10,secagg=semi_honest -> 0.9469

The number of runs is counted from the sweep's overrides (``a=1,2 b=x,y``:
4); a sweep Hydra cannot count in advance (a glob) shows ``?``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from hydra.experimental.callback import Callback

from experiments.compare.progress import clock


def count_jobs(
    overrides: Sequence[str], params: dict[str, Any] | None = None
) -> int | None:
    """How many runs a basic sweep of ``overrides`` (and sweeper params) makes."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    items = list(overrides) + [f"{k}={v}" for k, v in (params or {}).items()]
    total = 1
    try:
        for o in OverridesParser.create().parse_overrides(items):
            if o.is_sweep_override():
                total *= len(list(o.sweep_string_iterator()))
    except Exception:  # a sweep Hydra cannot expand here (glob, bad syntax)
        return None
    return total


class SweepProgress(Callback):
    """Print ``sweep [k/N] elapsed, ETA: overrides -> result`` after each run."""

    def __init__(
        self, out: Any = None, now: Callable[[], float] = time.perf_counter
    ) -> None:
        self.out = out
        self.now = now
        self.total: int | None = None
        self.done = 0
        self.start: float | None = None

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        """Count the runs to come and start the clock."""
        hydra = config.hydra
        params = hydra.sweeper.get("params") if "sweeper" in hydra else None
        self.total = count_jobs(
            list(hydra.overrides.task), dict(params) if params else None
        )
        self.start = self.now()

    def on_job_end(self, config: Any, job_return: Any, **kwargs: Any) -> None:
        """One line per finished run of a sweep (nothing for a single run)."""
        if self.start is None:
            return
        self.done += 1
        elapsed = self.now() - self.start
        total = self.total
        eta = (
            f"ETA ~{clock(elapsed / self.done * (total - self.done))}"
            if total
            else "ETA ?"
        )
        overrides = ",".join(job_return.overrides or []) or "(defaults)"
        try:
            value = job_return.return_value  # re-raises a failed run's error
            outcome = f"{value:.4f}" if isinstance(value, float) else "done"
        except Exception as exc:
            outcome = f"failed: {type(exc).__name__}: {exc}"
        print(
            f"sweep [{self.done}/{total or '?'}] {clock(elapsed)} elapsed, {eta}: "
            f"{overrides} -> {outcome}",
            file=self.out or sys.stdout,
            flush=True,
        )
