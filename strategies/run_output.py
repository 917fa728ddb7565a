"""What the coordinator keeps of a run: per-round metrics and global models.

In deployment the ServerApp runs on the coordinator's machine, in a process
the SuperLink starts. When the coordinator sets ``FEDSEC_RUNS_DIR`` (the
kit's ``start-superlink.sh`` sets it to the kit's ``runs/``), every run writes

    <FEDSEC_RUNS_DIR>/<run id>/metrics.json        the round lines, as JSON
    <FEDSEC_RUNS_DIR>/<run id>/model-round-<r>.npz the global model after round r
                                                   (round 0: the initial model)

The global model is what every site receives anyway; no site's update is
written. The variable is the coordinator's choice, never a run-config key:
a run config comes from whoever submits the run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord

from fedsec.flower.records import record_to_weights
from strategies.loop import RoundRecord

RUNS_DIR_ENV = "FEDSEC_RUNS_DIR"


class RunOutput:
    """Writes one run's metrics and models into its folder (mode 0700)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.rounds: list[dict[str, object]] = []

    @classmethod
    def from_env(cls, run_id: int) -> RunOutput | None:
        """The output of run ``run_id`` if ``FEDSEC_RUNS_DIR`` is set."""
        root = os.environ.get(RUNS_DIR_ENV, "")
        return cls(Path(root) / str(run_id)) if root else None

    def model(self, server_round: int, arrays: ArrayRecord) -> None:
        """Save the global model after ``server_round``."""
        weights = record_to_weights(arrays)
        path = self.folder / f"model-round-{server_round}.npz"
        with path.open("wb") as handle:
            np.savez(handle, **{k: np.asarray(v) for k, v in weights.items()})

    def round(self, record: RoundRecord) -> None:
        """Add one round to ``metrics.json`` (rewritten whole, then renamed)."""
        self.rounds.append(record.as_dict())
        tmp = self.folder / ".metrics.json.tmp"
        tmp.write_text(json.dumps({"rounds": self.rounds}, indent=2) + "\n")
        tmp.replace(self.folder / "metrics.json")


def load_model(path: Path) -> dict[str, np.ndarray]:
    """A saved global model: parameter name → array."""
    with np.load(path) as data:
        return {k: data[k] for k in data.files}
