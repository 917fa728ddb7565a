"""The demo: ``flwr run .`` on 10 simulated hospitals, then clean up.

    make demo            # or: python -m experiments.demo

1. Writes Flower's configuration into ``$FLWR_HOME`` (``.flwr/`` in the
   project, ignored by git) so that a plain ``flwr run .`` simulates 10
   SuperNodes, one CPU each: two hospitals train at once on two cores.
2. Runs ``flwr run . --stream``: the default run config of ``pyproject.toml``
   (breast cancer, 5 rounds of FedAvg, server-side evaluation).
3. Stops the local SuperLink that ``flwr run`` started, so no server is left
   running afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from experiments.simulate import ROOT, quiet_flower_env

NUM_SUPERNODES = 10

FLOWER_CONFIG = f"""\
# Written by experiments/demo.py: `flwr run .` simulates {NUM_SUPERNODES} hospitals
# locally, each ClientApp on one CPU (two at once on two cores).
[superlink]
default = "local"

[superlink.local]
address = ":local:"
options.num-supernodes = {NUM_SUPERNODES}
options.backend.client-resources.num-cpus = 1
options.backend.client-resources.num-gpus = 0.0
options.backend.init-args.logging-level = "ERROR"
"""


def write_flower_config(home: Path) -> Path:
    """Write ``config.toml`` for the local simulation federation."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.toml"
    path.write_text(FLOWER_CONFIG)
    return path


def local_superlink_pids(home: Path) -> list[int]:
    """PIDs of the SuperLinks that ``flwr run`` started for this FLWR_HOME."""
    marker = str(home / "local-superlink")
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "flower-superlink" in cmdline and marker in cmdline:
            pids.append(int(proc.name))
    return pids


def stop_local_superlink(home: Path, grace: float = 10.0) -> None:
    """Terminate the local SuperLink (and its process group), then wait."""
    for pid in local_superlink_pids(home):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + grace
    while local_superlink_pids(home) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in local_superlink_pids(home):
        os.kill(pid, signal.SIGKILL)


def main(extra_args: list[str]) -> int:
    """Run the demo; return ``flwr run``'s exit code."""
    quiet_flower_env()
    home = Path(os.environ["FLWR_HOME"])
    write_flower_config(home)
    bindir = Path(sys.executable).parent
    # `flwr run` starts `flower-superlink` by name: it must be on PATH.
    os.environ["PATH"] = f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"
    flwr = bindir / "flwr"
    started = time.perf_counter()
    try:
        code = subprocess.call(
            [str(flwr), "run", ".", "--stream", *extra_args], cwd=ROOT
        )
    finally:
        stop_local_superlink(home)
    print(f"fedsec demo: flwr run finished in {time.perf_counter() - started:.1f} s")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
