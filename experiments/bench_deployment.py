"""Round latency of a deployment on loopback, per mode, from the kits.

    python -m experiments.bench_deployment --sites 3 --rounds 4
    python -m experiments.bench_deployment --modes plain,active --rounds 3

One local federation (:func:`experiments.deployment.local_deployment`: TLS,
SuperNode authentication, kits) runs each mode for ``--rounds`` rounds; the
first secure round sets up keys, the later ones are steady
(``secagg-rounds-per-key-set`` covers the whole run). Prints one JSON object
per case (also appended to ``--out``):

* ``seconds_per_round``: median over the steady rounds (all rounds for plain
  FL), and ``seconds_first_round`` (with key set-up / finding the parties);
* ``round_trips`` of a steady and of the first round;
* ``seconds_per_round_trip``: steady seconds / steady round trips;
* ``stage_seconds``: median seconds of each protocol stage (``unmask`` and
  ``consistency_check`` run no training: what they cost is Flower's own
  overhead per round trip, the SuperNode's poll and a fresh ClientApp
  process per message);
* the machine: cores, load average before and after, sites, rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from experiments.deployment import MODE_CONFIGS, local_deployment
from experiments.simulate import ROOT
from fedsec_cli.rounds import RoundLine, parse_rounds

CASES = {
    "plain": "plain",
    "semi_honest": "secure",
    "active": "secure",
    "distributed_dp": "secure",
    "central_dp": "plain",
    "mpc": "mpc",
}


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def summarise(mode: str, rounds: list[RoundLine], seconds: float) -> dict[str, Any]:
    """One JSON case from a run's round lines."""
    steady = rounds[1:] if len(rounds) > 1 and CASES[mode] != "plain" else rounds
    first = rounds[0] if rounds else None
    stages: dict[str, list[float]] = {}
    for r in steady:
        for key, value in r.values.items():
            if key.startswith("seconds_"):
                stages.setdefault(key.removeprefix("seconds_"), []).append(value)
    steady_s = [r.get("seconds") for r in steady]
    trips = [r.get("round_trips") for r in steady]
    per_trip = [s / t for s, t in zip(steady_s, trips, strict=True) if t > 0]
    return {
        "case": f"deployment-{mode}",
        "mode": mode,
        "rounds": len(rounds),
        "seconds_per_round": _median(steady_s),
        "seconds_first_round": first.get("seconds") if first else None,
        "round_trips": _median(trips),
        "round_trips_first_round": first.get("round_trips") if first else None,
        "seconds_per_round_trip": _median(per_trip),
        "stage_seconds": {k: _median(v) for k, v in sorted(stages.items())},
        "accuracy": rounds[-1].get("accuracy") if rounds else None,
        "run_wall_seconds": round(seconds, 1),
    }


def main() -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--modes", default="plain,semi_honest,active,mpc")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".flwr" / "bench-deploy")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    with local_deployment(args.workdir, args.sites) as deployment:
        for mode in modes:
            config = (
                f"num-server-rounds={args.rounds} secagg-rounds-per-key-set="
                f"{args.rounds} {MODE_CONFIGS[mode]}"
            )
            machine = {"cores": os.cpu_count(), "load_before": os.getloadavg()[0]}
            started = time.perf_counter()
            proc = deployment.run(config, timeout=3600, echo=True)
            wall = time.perf_counter() - started
            rounds = parse_rounds(proc.stdout)
            case = summarise(mode, rounds, wall)
            case.update(
                sites=args.sites,
                exit_code=proc.returncode,
                machine={**machine, "load_after": os.getloadavg()[0]},
                transport="loopback, TLS + SuperNode authentication",
            )
            line = json.dumps(case)
            print(line)
            sys.stdout.flush()
            if args.out is not None:
                with args.out.open("a") as handle:
                    handle.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
