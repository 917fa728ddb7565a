"""The ``compare`` section of ``conf/compare.yaml``, parsed and checked once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from experiments.compare.approaches import by_key
from fedsec.errors import ConfigError

PARTS = (
    "approaches",
    "n_sweep",
    "d_sweep",
    "protocol",
    "dropouts",
    "expansion",
    "external",
)


def _ints(values: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


@dataclass(frozen=True)
class CompareSettings:
    """What to measure and where to write it."""

    out_dir: Path
    parts: tuple[str, ...]
    approaches: tuple[str, ...]
    drop: int
    target_accuracy: float
    n_sizes: tuple[int, ...]
    n_task: str
    n_rounds: int
    d_clients: int
    d_dims: tuple[int, ...]
    d_rounds: int
    d_dropout: float
    protocol_dim: int
    complete_sizes: tuple[int, ...]
    sparse_sizes: tuple[int, ...]
    active_sizes: tuple[int, ...]
    mpc_sizes: tuple[int, ...]
    protocol_dims: tuple[int, ...]
    dropout_clients: int
    dropout_rates: tuple[float, ...]
    dropout_rounds: int
    dropout_dim: int
    replot: bool

    @classmethod
    def from_mapping(cls, c: Any) -> CompareSettings:
        """Parse the ``compare`` section (a DictConfig or a plain mapping).

        Raises
        ------
        ConfigError
            For an unknown part or approach, or a size out of range.
        """
        parts = tuple(str(p) for p in c["parts"])
        unknown = sorted(set(parts) - set(PARTS))
        if unknown:
            raise ConfigError(f"compare.parts: unknown {unknown}; known: {PARTS}")
        approaches = tuple(str(a) for a in c["approaches"])
        try:
            by_key(approaches)
        except ValueError as exc:
            raise ConfigError(f"compare.approaches: {exc}") from None
        n, d, p, x = c["n_sweep"], c["d_sweep"], c["protocol"], c["dropouts"]
        settings = cls(
            out_dir=Path(str(c["out_dir"])),
            parts=parts,
            approaches=approaches,
            drop=int(c["drop"]),
            target_accuracy=float(c["target_accuracy"]),
            n_sizes=_ints(n["sizes"]),
            n_task=str(n["task"]),
            n_rounds=int(n["rounds"]),
            d_clients=int(d["clients"]),
            d_dims=_ints(d["dims"]),
            d_rounds=int(d["rounds"]),
            d_dropout=float(d["dropout"]),
            protocol_dim=int(p["dim"]),
            complete_sizes=_ints(p["complete"]),
            sparse_sizes=_ints(p["sparse"]),
            active_sizes=_ints(p["active"]),
            mpc_sizes=_ints(p["mpc"]),
            protocol_dims=_ints(p["dims"]),
            dropout_clients=int(x["clients"]),
            dropout_rates=tuple(float(r) for r in x["rates"]),
            dropout_rounds=int(x["rounds"]),
            dropout_dim=int(x["dim"]),
            replot=bool(c["replot"]),
        )
        sizes = (
            settings.n_sizes
            + settings.complete_sizes
            + settings.sparse_sizes
            + settings.active_sizes
            + settings.mpc_sizes
        )
        if any(s < 3 for s in sizes) or settings.dropout_clients < 5:
            raise ConfigError("compare: every federation needs at least 3 sites")
        if settings.n_rounds < 2 or settings.d_rounds < 2:
            raise ConfigError("compare: sweeps need 2 rounds (set-up and steady)")
        if any(not 0 <= r < 1 for r in settings.dropout_rates):
            raise ConfigError("compare.dropouts.rates must lie in [0, 1)")
        return settings
