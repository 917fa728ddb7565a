"""The ServerApp's round lines, parsed (``strategies/loop.py`` writes them).

INFO fedsec: round 2/3 [secagg-active+ddp]: accuracy=0.9381 loss=0.21
    seconds=41.2 bytes_down=... survivors=3 dropped=1 round_trips=3 ...
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

LINE = re.compile(r"round (\d+)/(\d+) \[([^\]]+)\]: (.*)$")
_PAIR = re.compile(r"([A-Za-z_][\w.+-]*)=(\S+)")


@dataclass(frozen=True)
class RoundLine:
    """One round as the server logged it."""

    round: int
    rounds: int
    backend: str
    values: dict[str, float] = field(default_factory=dict)

    def get(self, key: str, default: float = math.nan) -> float:
        """A logged value (``accuracy``, ``seconds``, ``round_trips``, ...)."""
        return self.values.get(key, default)

    def summary(self) -> str:
        """One short line for a person."""
        keys = ("accuracy", "loss", "seconds", "round_trips", "survivors", "dropped")
        shown = " ".join(f"{k}={self.values[k]:g}" for k in keys if k in self.values)
        return f"round {self.round}/{self.rounds} [{self.backend}] {shown}".rstrip()


def parse_round(line: str) -> RoundLine | None:
    """The round in ``line``, or ``None`` if it is not a round line."""
    match = LINE.search(line)
    if match is None:
        return None
    values: dict[str, float] = {}
    for key, text in _PAIR.findall(match.group(4)):
        try:
            values[key] = float(text)
        except ValueError:
            continue
    return RoundLine(int(match.group(1)), int(match.group(2)), match.group(3), values)


def parse_rounds(text: str) -> list[RoundLine]:
    """Every round line in ``text``, in order."""
    return [r for r in map(parse_round, text.splitlines()) if r is not None]
