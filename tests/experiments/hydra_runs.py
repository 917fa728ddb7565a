"""Run a Hydra experiment as a user would: ``python -m experiments.<name> ...``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from experiments.simulate import ROOT


def run_experiment(
    module: str, out: Path, *overrides: str, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """Run ``experiments.<module>`` with ``overrides`` into the run folder ``out``."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            f"experiments.{module}",
            *overrides,
            f"hydra.run.dir={out}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
