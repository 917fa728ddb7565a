"""The demo: 10 simulated hospitals, secure aggregation with distributed DP.

    make demo            # or: python -m experiments.demo [--run-config "k=v ..."]

The headline in one minute: ``flwr run .`` on 10 simulated hospitals, each
update hidden in a secure sum (semi-honest secure aggregation) that also
carries distributed DP noise, while hospital 3 drops out of every round after
training, before its masked update arrives. Then a short table: accuracy, ε,
bytes each site sent per round, rounds, dropouts survived, beside the
accuracy plain FedAvg reaches on the same sites with the same training.

1. Writes Flower's configuration into ``$FLWR_HOME`` (``.flwr/`` in the
   project, ignored by git) so that ``flwr run .`` simulates 10 SuperNodes,
   one CPU each.
2. Runs ``flwr run . --stream`` with the headline run config (``--run-config``
   overrides any key). The terminal shows one line per round; everything
   Flower printed is kept in ``$FLWR_HOME/demo.log`` (and shown if the run
   fails).
3. Computes plain FedAvg in this process on the same simulated sites, with
   the same local training and the same site dropping (no privacy, no
   Flower: a reference for the accuracy), and prints the table.
4. Stops the local SuperLink that ``flwr run`` started.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from experiments.simulate import ROOT, quiet_flower_env

NUM_SUPERNODES = 10
DROPPING_SITE = 3
HEADLINE = {
    "num-server-rounds": "5",
    # the engine registers its nodes while the ServerApp starts: wait for all
    "min-available-nodes": str(NUM_SUPERNODES),
    "secagg-mode": "'semi_honest'",
    "dp-mode": "'distributed'",
    "dp-noise-multiplier": "1.0",
    # one dropout of ten is expected: the 9 survivors carry the target noise
    "dp-survivor-fraction": "0.9",
    "faults-drop": f"'{DROPPING_SITE}:masked_input'",
}

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

ROUND = re.compile(r"INFO fedsec: (round \d+/\d+ .*)$")
METRIC = re.compile(r"(\w+)=([-0-9.e+naif]+)")


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


def run_config(overrides: str) -> dict[str, str]:
    """The headline run config with ``k=v`` overrides (space separated)."""
    config = dict(HEADLINE)
    for item in overrides.split():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"fedsec demo: --run-config item {item!r} is not k=v")
        config[key] = value
    return config


@dataclass
class RoundLine:
    """One round as the ServerApp logged it."""

    text: str
    metrics: dict[str, float]


def parse_round(line: str) -> RoundLine | None:
    """The round line in a line of Flower's output, if there is one."""
    match = ROUND.search(line)
    if match is None:
        return None
    metrics = {}
    for key, value in METRIC.findall(match.group(1)):
        try:
            metrics[key] = float(value)
        except ValueError:
            continue
    return RoundLine(match.group(1), metrics)


def compact(line: RoundLine) -> str:
    """A round in one short line: the numbers the demo is about."""
    m = line.metrics
    head = line.text.split(":", 1)[0]  # "round 2/5 [secagg-semi_honest+ddp]"
    parts = [f"accuracy={m.get('accuracy', float('nan')):.4f}"]
    if "epsilon" in m:
        parts.append(f"epsilon={m['epsilon']:.2f}")
    if "survivors" in m:
        parts.append(f"survivors={m['survivors']:g}")
    parts.append(f"dropped={m.get('dropped', 0):g}")
    if m.get("aborted"):
        parts.append("aborted=1")
    parts.append(f"seconds={m.get('seconds', 0):.2f}")
    return f"{head}: {' '.join(parts)}"


def run_flower(config: Mapping[str, str], log: Path) -> tuple[int, list[RoundLine]]:
    """``flwr run . --stream``: one line per round on the terminal, all in ``log``."""
    flwr = Path(sys.executable).parent / "flwr"
    rc = " ".join(f"{k}={v}" for k, v in config.items())
    rounds: list[RoundLine] = []
    with log.open("w") as keep:
        proc = subprocess.Popen(
            [str(flwr), "run", ".", "--stream", "--run-config", rc],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            keep.write(line)
            parsed = parse_round(line)
            if parsed is not None:
                rounds.append(parsed)
                print(f"fedsec demo: {compact(parsed)}", flush=True)
            elif "Successfully started run" in line:
                print("fedsec demo: started; Ray and the first round take a while")
        code = proc.wait()
    return code, rounds


def plain_fedavg_accuracy(config: Mapping[str, str]) -> float:
    """Plain FedAvg on the same simulated sites and training, in this process."""
    from clients.training import train_locally
    from fedsec.config import ClientSettings, RunConfig
    from fedsec.data import server_test_set, simulated_site
    from fedsec.models import build_model, evaluate, get_weights, set_weights

    values = {k: _toml_scalar(v) for k, v in config.items()}
    cfg = RunConfig.from_mapping(values)
    settings = ClientSettings.from_mapping(cfg.client_mapping())
    data = cfg.data
    test = server_test_set(data.task, data.test_fraction, data.seed)
    model = build_model(
        cfg.train.model, test.num_features, test.num_outputs, cfg.train.hidden_dim,
        seed=data.seed,
    )  # fmt: skip
    weights = get_weights(model)
    dropping = set(cfg.faults.drops())
    sites = [
        simulated_site(
            data.task,
            pid,
            NUM_SUPERNODES,
            partition=data.partition,
            alpha=data.dirichlet_alpha,
            test_fraction=data.test_fraction,
            seed=data.seed,
        )
        for pid in range(NUM_SUPERNODES)
        if pid not in dropping
    ]
    for rnd in range(1, cfg.num_rounds + 1):
        results = [
            train_locally(weights, site, settings, seed=data.seed * 1000 + rnd)
            for site in sites
        ]
        total = sum(r.num_examples for r in results)
        weights = type(weights)(
            (k, sum(r.weights[k] * (r.num_examples / total) for r in results))
            for k in weights
        )
    set_weights(model, weights)
    return float(evaluate(model, test).accuracy)


def _toml_scalar(text: str) -> object:
    import tomllib

    return tomllib.loads(f"v = {text}")["v"]


def table(rounds: list[RoundLine], plain_accuracy: float) -> str:
    """The closing table of the demo."""
    last = rounds[-1].metrics
    up = [r.metrics.get("bytes_up", 0.0) / NUM_SUPERNODES for r in rounds]
    dropped = sum(int(r.metrics.get("dropped", 0)) for r in rounds)
    aborted = sum(int(r.metrics.get("aborted", 0)) for r in rounds)
    eps = last.get("epsilon")
    rows = [
        ("accuracy (secure aggregation + distributed DP)", f"{last['accuracy']:.4f}"),
        ("accuracy of plain FedAvg (same sites, no privacy)", f"{plain_accuracy:.4f}"),
        ("ε after the last round (δ = 1e-5)", "n/a" if eps is None else f"{eps:.2f}"),
        ("bytes each site sent per round (mean)", f"{sum(up) / len(up):,.0f}"),
        ("rounds completed", f"{len(rounds) - aborted} of {len(rounds)}"),
        ("dropouts survived", str(dropped)),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; return ``flwr run``'s exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-config", default="", help="overrides, 'k=v k2=v2'")
    args = parser.parse_args(argv)
    config = run_config(args.run_config)
    quiet_flower_env()
    home = Path(os.environ["FLWR_HOME"])
    write_flower_config(home)
    # `flwr run` starts `flower-superlink` by name: it must be on PATH.
    bindir = Path(sys.executable).parent
    os.environ["PATH"] = f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"
    log = home / "demo.log"
    print(
        f"fedsec demo: {NUM_SUPERNODES} hospitals, secure aggregation with "
        f"distributed DP, hospital {DROPPING_SITE} drops every round; "
        f"Flower's full output goes to {log}",
        flush=True,
    )
    started = time.perf_counter()
    try:
        code, rounds = run_flower(config, log)
    finally:
        stop_local_superlink(home)
    seconds = time.perf_counter() - started
    if code != 0 or not rounds:
        tail = log.read_text().splitlines()[-40:]
        print("\n".join(tail), file=sys.stderr)
        print(f"fedsec demo: flwr run failed (exit {code}); see {log}", file=sys.stderr)
        return code or 1
    print(f"fedsec demo: flwr run finished in {seconds:.1f} s")
    print(table(rounds, plain_fedavg_accuracy(config)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
