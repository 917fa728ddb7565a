"""A SuperNode killed mid-round: dropout recovery in the Deployment Engine, from kits.

Four sites provisioned with ``fedsec provision`` and started by their kits'
own scripts (TLS, SuperNode authentication), active secure aggregation with
distributed DP, two rounds per key set:

* round 1: all four sites (key set-up + a secure round);
* round 2: ``site3``'s SuperNode and its ClientApp are killed with SIGKILL
  while it computes its masked input (it has pulled the request, so only the
  SuperLink's heartbeat timeout tells the server it is gone); the round
  completes by dropout recovery from the other three, and the global model
  equals the mean of the three survivors' clipped updates;
* once the server has counted it as dropped, ``site3`` is started again with
  its kit; round 3 starts a new key set (``min-nodes=4`` waits for it) and
  all four take part.

**Which result is compared.** With distributed DP the sum carries noise, so
the run uses ``dp-noise-multiplier=0.001``: the noise on the mean (standard
deviation about ``0.001 · C / sqrt(3)`` per coordinate, ``C = 1``) and the
quantisation are far below the tolerance, and the check is against the
*noise-free* DP-FedAvg of the survivors. The reference is computed honestly
here: each survivor's update is retrained in this process from the round-1
global model the coordinator saved (``FEDSEC_RUNS_DIR``), with the same data
file, settings and seed the site used (plain local training is reproducible
from public values), clipped to ``dp-clip-norm`` and averaged with weight 1
each, as distributed DP does. The same computation with the killed site
included must not match: its update is not in the sum.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from clients.site_data import load_site
from clients.training import train_locally
from experiments.deployment import Deployment, local_deployment
from fedsec.config import ClientSettings, RunConfig
from fedsec.flower.records import Weights, flatten
from fedsec_cli.rounds import parse_rounds
from strategies.run_output import load_model

pytestmark = [pytest.mark.slow, pytest.mark.deployment]

VICTIM = "site3"
RUN = {
    "num-server-rounds": 3,
    "secagg-mode": "active",
    "dp-mode": "distributed",
    "dp-noise-multiplier": 0.001,  # negligible noise: see the module docstring
    # Opacus's PRV accountant fails (or runs for minutes) at so little noise
    "dp-accountant": "rdp",
    "secagg-rounds-per-key-set": 2,  # round 3 starts a new key set
    "min-nodes": 4,  # round 3 waits for the restarted site
}
MASKED_INPUT = "Receiving: query.secagg_masked_input"
MASKED_REPLY = "Sending: query.secagg_masked_input"
TOLERANCE = 2e-3


class Killer:
    """Kills the victim during round 2's masked-input stage, restarts it later."""

    def __init__(self, deployment: Deployment, victim: str, node_id: int) -> None:
        self.deployment = deployment
        self.victim = victim
        self.node_id = node_id
        self.round = 0
        self.armed = False
        self.killed_during_round: int | None = None
        self.killed_while_computing = False
        self.restarted = threading.Event()
        self.errors: list[BaseException] = []
        self.threads: list[threading.Thread] = []

    def on_line(self, line: str) -> None:
        """Called with every server log line as it arrives."""
        for record in parse_rounds(line):
            self.round = record.round
        if self.round == 1 and "secagg masked_input: asking" in line and not self.armed:
            self.armed = True
            self._start(self._kill_when_computing)
        if re.search(rf"masked_input: node {self.node_id} dropped", line):
            self._start(self._restart)

    def _start(self, target: object) -> None:
        thread = threading.Thread(target=self._guard, args=(target,), daemon=True)
        self.threads.append(thread)
        thread.start()

    def _guard(self, target: object) -> None:
        try:
            target()  # type: ignore[operator]
        except BaseException as exc:
            self.errors.append(exc)

    def _kill_when_computing(self) -> None:
        # round 2's request is the victim's second masked-input message; once
        # it pulled it, its ClientApp is training (a fresh process, seconds)
        log = self.deployment.site_log(self.victim)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            if text.count(MASKED_INPUT) >= 2:
                self.deployment.kill_site(self.victim)
                text = log.read_text(errors="replace")
                # killed before it could send its round-2 masked input
                self.killed_while_computing = text.count(MASKED_REPLY) < 2
                self.killed_during_round = self.round + 1
                return
            time.sleep(0.1)
        raise TimeoutError("the victim never received round 2's masked-input request")

    def _restart(self) -> None:
        self.deployment.start_site(self.victim)
        self.restarted.set()


def _reference(
    start: Weights, sites: list[Path], cfg: RunConfig, server_round: int
) -> np.ndarray:
    """``start`` + the mean of the sites' clipped updates (noise-free DP-FedAvg)."""
    settings = ClientSettings.from_mapping(cfg.client_mapping())
    deltas = []
    for path in sites:
        site = load_site({"data-path": str(path)}, settings.data)
        trained = train_locally(
            start, site, settings, seed=settings.data.seed * 1000 + server_round
        )
        delta = flatten(trained.weights) - flatten(start)
        norm = float(np.linalg.norm(delta))
        deltas.append(delta * min(1.0, cfg.dp.clip_norm / max(norm, 1e-12)))
    return flatten(start) + np.mean(deltas, axis=0)


def _node_ids(deployment: Deployment) -> dict[str, int]:
    import json

    assert deployment.kits is not None
    path = deployment.kits / "coordinator" / "nodes.json"
    return {k: int(v) for k, v in json.loads(path.read_text()).items()}


def test_a_site_killed_while_masking_is_recovered_and_rejoins(tmp_path: Path) -> None:
    run_config = " ".join(
        f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in RUN.items()
    )
    with local_deployment(tmp_path, num_sites=4, mpc_parties=False) as deployment:
        killer = Killer(deployment, VICTIM, _node_ids(deployment)[VICTIM])
        proc = deployment.run(
            run_config, timeout=1500, on_line=killer.on_line, echo=True
        )
        for thread in killer.threads:
            thread.join(120)
        run_dir = deployment.runs_dir / str(deployment.last_run_id)
        data = {name: deployment.data_file(name) for name in deployment.sites}
        marker_pids = deployment.leftovers()
    out = proc.stdout
    assert not killer.errors, killer.errors
    assert proc.returncode == 0, out[-4000:]
    assert killer.killed_during_round == 2
    assert killer.killed_while_computing
    assert killer.restarted.is_set()
    assert marker_pids  # the deployment's processes were found while it ran
    assert deployment.leftovers() == []  # and none is left after it

    rounds = parse_rounds(out)
    assert [r.round for r in rounds] == [1, 2, 3], out[-4000:]
    assert all(r.backend == "secagg-active+ddp" for r in rounds)
    r1, r2, r3 = rounds
    assert (r1.get("survivors"), r1.get("round_trips")) == (4, 5)
    # round 2: the kill is a dropout of the masked-input stage, recovered
    assert (r2.get("survivors"), r2.get("dropped")) == (3, 1)
    assert r2.get("dropouts_masked_input") == 1
    assert "aborted" not in r2.values
    assert r2.get("round_trips") == 3  # no key set-up: the same key set
    # round 3: a new key set with the restarted site in it
    assert (r3.get("survivors"), r3.get("dropped"), r3.get("round_trips")) == (4, 0, 5)

    # round 2's model = mean of the three survivors' clipped updates
    cfg = RunConfig.from_mapping(RUN)
    start = OrderedDict(load_model(run_dir / "model-round-1.npz"))
    got = flatten(load_model(run_dir / "model-round-2.npz"))
    survivors = [data[s] for s in sorted(data) if s != VICTIM]
    expected = _reference(start, survivors, cfg, server_round=2)
    with_victim = _reference(start, sorted(data.values()), cfg, server_round=2)
    off, off_victim = np.max(np.abs(got - expected)), np.max(np.abs(got - with_victim))
    print(  # shown with pytest -rP
        f"round 2: max |model - survivors' mean| = {off:.2e}, "
        f"max |model - mean with {VICTIM}| = {off_victim:.2e}"
    )
    np.testing.assert_allclose(got, expected, atol=TOLERANCE)
    assert np.max(np.abs(got - with_victim)) > 3 * TOLERANCE
