"""Progress of a long run: a bar with elapsed time and ETA.

With tqdm installed, a tqdm bar weighted by each step's expected seconds;
without it, one line per step::

    compare [ 4/17] ########............  38%  3m05s elapsed, ETA ~5m02s  ...

The ETA scales the expected seconds still to come by how fast the finished
steps went against their expectation (a loaded machine stretches both).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

BAR = 20


def clock(seconds: float) -> str:
    """``75`` -> ``1m15s``; ``3700`` -> ``1h01m40s``."""
    s = round(max(seconds, 0.0))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h{m:02d}m{s:02d}s"
    return f"{m}m{s:02d}s" if m else f"{s}s"


class Progress:
    """Steps with expected durations; ``done(k)`` after each one.

    ``out`` is where the lines go (a terminal that Flower's output does not
    reach: see :func:`experiments.compare.console.quiet`).
    """

    def __init__(
        self,
        names: Sequence[str],
        expected: Sequence[float],
        out: TextIO | None = None,
        label: str = "compare",
        now: Callable[[], float] = time.perf_counter,
        use_tqdm: bool | None = None,
    ) -> None:
        self.names = list(names)
        self.expected = [max(float(e), 1e-3) for e in expected]
        self.out = out or sys.stdout
        self.label = label
        self.now = now
        self.start = now()
        self.finished = 0
        self.bar: Any = _tqdm(self, use_tqdm)

    @property
    def total(self) -> float:
        """Expected seconds of every step."""
        return sum(self.expected)

    def eta(self) -> float | None:
        """Seconds still to go, scaled by the pace of the finished steps."""
        done = sum(self.expected[: self.finished])
        if not done:
            return None
        pace = (self.now() - self.start) / done
        return pace * sum(self.expected[self.finished :])

    def line(self) -> str:
        """The progress line after the last finished step."""
        k, n = self.finished, len(self.names)
        frac = sum(self.expected[:k]) / self.total
        filled = round(BAR * frac)
        eta = self.eta()
        step = self.names[k - 1] if k else ""
        return (
            f"{self.label} [{k:>{len(str(n))}}/{n}] "
            f"{'#' * filled}{'.' * (BAR - filled)} "
            f"{frac:4.0%}  {clock(self.now() - self.start)} elapsed, "
            f"ETA ~{clock(eta) if eta is not None else '?'}  {step}"
        )

    def begin(self, k: int) -> None:
        """Step ``k`` (0-based) starts."""
        if self.bar is not None:
            self.bar.set_description_str(f"{self.label}: {self.names[k]}")

    def done(self, k: int, note: str = "") -> None:
        """Step ``k`` (0-based) finished; print its line."""
        self.finished = k + 1
        if self.bar is not None:
            self.bar.update(self.expected[k])
            if note:
                self.bar.write(f"  {self.names[k]}: {note}", file=self.out)
            return
        suffix = f": {note}" if note else ""
        print(self.line() + suffix, file=self.out, flush=True)

    def close(self) -> None:
        """End the bar (tqdm) or print nothing more."""
        if self.bar is not None:
            self.bar.close()


def _tqdm(progress: Progress, use: bool | None) -> Any:
    if use is False:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        if use:
            raise
        return None
    return tqdm(
        total=progress.total,
        file=progress.out,
        unit="s~",
        bar_format="{desc} {percentage:3.0f}%|{bar}| {elapsed}, ETA {remaining}",
    )
