"""Run the fedsec ServerApp and ClientApp in Flower's simulation engine in-process.

Used by the Hydra entry points, the benchmarks and the simulation tests: the
same apps as ``flwr run .``, driven through ``flwr.simulation.run_simulation``
so that the caller gets the :class:`~strategies.loop.History` back.

The harness also plays the operators of the simulated sites. Flower gives a
simulated SuperNode no node config of its own, so :func:`simulate` writes one
node-config file per site (``site<partition-id>.toml``: its site name, its key
folders and its policy, :mod:`clients.site_config`) into a fresh folder named
by ``FEDSEC_SIM_SITES``: a simulated site reads its policy and trust anchors
from there, as a deployed one reads its ``--node-config``, and never from the
run config the ServerApp sends.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fedsec.config import RunConfig
from fedsec.errors import FedsecError
from fedsec.policy import SitePolicy
from strategies.analytics import AnalyticsOutcome
from strategies.loop import History

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class SimulationResources:
    """How many Ray CPUs in all and per ClientApp (2 and 1: two clients at once)."""

    cpus: int = 2
    client_cpus: int = 1


def quiet_flower_env() -> None:
    """No telemetry, no update check, Flower's home inside the project."""
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
    os.environ.setdefault("FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION", "1")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    os.environ.setdefault("FLWR_HOME", str(ROOT / ".flwr"))


def _with_federation_size(cfg: RunConfig, num_clients: int) -> RunConfig:
    """Wait for every simulated site unless the config names a number itself.

    Flower's engine registers its nodes one by one while the ServerApp runs;
    a first round that sampled too early would train on a part of them.
    """
    if cfg.strategy.min_available_nodes:
        return cfg
    return replace(cfg, strategy=replace(cfg.strategy, min_available_nodes=num_clients))


def _with_site_keys(cfg: RunConfig, num_clients: int) -> RunConfig:
    """Active secure aggregation and MPC: make sure the simulated sites have keys.

    The keys are provisioned here, out of band, as a consortium would; the
    ServerApp only ever reads the public registry (active variant). In MPC
    the sites sign their packages and the compute parties check them against
    the registry, so a server cannot pad a session with made-up clients.
    """
    if cfg.secagg.mode != "active" and not cfg.mpc.enabled:
        return cfg
    from experiments.site_keys import ensure_site_keys

    folder = Path(cfg.secagg.keys_dir or ".flwr/secagg-keys")
    folder = folder if folder.is_absolute() else ROOT / folder
    ensure_site_keys(folder, num_clients)
    return replace(cfg, secagg=replace(cfg.secagg, keys_dir=str(folder)))


def run_mode(cfg: RunConfig) -> str:
    """The site-policy mode a run asks the sites to take part in."""
    if cfg.vertical.enabled:
        return "vertical"
    if cfg.mpc.enabled:
        return "mpc"
    if cfg.secagg.enabled:
        return cfg.secagg.mode
    return "plain"


def site_modes(cfg: RunConfig) -> str:
    """``policy-modes`` of the simulated sites: the run's mode, and ``semi_honest``
    too when the statistics before training are summed securely."""
    mode = run_mode(cfg)
    if cfg.data.standardise == "global" and mode in ("plain", "mpc"):
        return f"{mode},semi_honest"
    return mode


def site_node_configs(
    cfg: RunConfig,
    num_clients: int,
    site_policy: Mapping[str, Any] | None = None,
    data_paths: Mapping[int, Path] | None = None,
) -> dict[int, dict[str, Any]]:
    """The node config of each simulated site, as its operator would set it.

    Every site is named ``site<i>``, takes part in the run's mode
    (``policy-modes``), admits the run's clipping norm and weight bound if
    they exceed the defaults, and otherwise keeps the default policy, unless
    ``site_policy`` (``policy-*`` keys, for every site) says otherwise. In the
    active variant every site gets its key folder; in MPC the compute parties
    (partitions 0-2) their TLS folder and every other site the parties' CA,
    and, when the run has a key folder (:func:`simulate` makes one), every
    site (parties included) the key folder: its signing key and the registry.
    ``data_paths`` gives sites their own data file (node config ``data-path``)
    instead of a partition of the schema's embedded data set.
    """
    configs: dict[int, dict[str, Any]] = {}
    # the operators agreed to this run: their bounds admit its clip and weight
    clip = max(
        cfg.dp.clip_norm if cfg.dp.mode == "distributed" else 0.0,
        cfg.mpc.clip_norm if cfg.mpc.enabled else 0.0,
    )
    bounds = {
        "policy-max-clip-norm": max(SitePolicy().max_clip_norm, clip),
        "policy-max-weight": max(SitePolicy().max_weight, cfg.mpc.max_weight),
    }
    for pid in range(num_clients):
        node: dict[str, Any] = {
            "secagg-site": f"site{pid}",
            "policy-modes": site_modes(cfg),
            **bounds,
        }
        if data_paths and pid in data_paths:
            node["data-path"] = str(Path(data_paths[pid]).resolve())
        if cfg.secagg.mode == "active":
            node["secagg-keys-dir"] = cfg.secagg.keys_dir
        if cfg.mpc.enabled or cfg.vertical.enabled:
            if cfg.mpc.enabled and cfg.secagg.keys_dir:
                node["secagg-keys-dir"] = cfg.secagg.keys_dir
            if pid < 3:
                node["mpc-tls-dir"] = cfg.mpc.tls_dir
            else:
                node["mpc-ca-file"] = str(Path(cfg.mpc.tls_dir) / "ca.pem")
        node.update(site_policy or {})
        configs[pid] = node
    return configs


@contextmanager
def simulated_sites(configs: Mapping[int, Mapping[str, Any]]) -> Iterator[Path]:
    """Write the sites' node-config files to a fresh folder for one simulation."""
    from clients.site_config import SIM_SITES_ENV, write_site_file

    base = ROOT / ".flwr"
    base.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="sim-sites-", dir=base))
    for pid, values in configs.items():
        write_site_file(folder, pid, values)
    before = os.environ.get(SIM_SITES_ENV)
    os.environ[SIM_SITES_ENV] = str(folder)
    try:
        yield folder
    finally:
        if before is None:
            os.environ.pop(SIM_SITES_ENV, None)
        else:
            os.environ[SIM_SITES_ENV] = before
        shutil.rmtree(folder, ignore_errors=True)


def _with_party_pki(cfg: RunConfig) -> RunConfig:
    """MPC: make sure the three parties have TLS identities (out of band)."""
    if not (cfg.mpc.enabled or cfg.vertical.enabled):
        return cfg
    from fedsec.mpc.tls import make_throwaway_pki

    folder = Path(cfg.mpc.tls_dir or ".flwr/mpc-tls")
    folder = folder if folder.is_absolute() else ROOT / folder
    if not (folder / "ca.pem").is_file():
        make_throwaway_pki(folder)
    return replace(cfg, mpc=replace(cfg.mpc, tls_dir=str(folder)))


def merged_node_configs(
    cfgs: Sequence[RunConfig],
    num_clients: int,
    site_policy: Mapping[str, Any] | None = None,
    data_paths: Mapping[int, Path] | None = None,
) -> dict[int, dict[str, Any]]:
    """The node config of each site taking part in every run of ``cfgs``.

    One operator's agreement to all of them: the union of the runs' modes
    (``policy-modes``), the largest of their clip and weight bounds, and every
    key folder and CA any of them needs (:func:`site_node_configs`), then
    ``site_policy`` on top.
    """
    merged: dict[int, dict[str, Any]] = {}
    for cfg in cfgs:
        for pid, node in site_node_configs(cfg, num_clients, None, data_paths).items():
            into = merged.setdefault(pid, {})
            modes = {m for m in str(into.get("policy-modes", "")).split(",") if m}
            modes |= set(str(node["policy-modes"]).split(","))
            bounds = {
                k: max(into.get(k, v), v)
                for k, v in node.items()
                if k.startswith("policy-max-")
            }
            into.update(node)
            into.update(bounds)
            into["policy-modes"] = ",".join(sorted(modes))
    for node in merged.values():
        node.update(site_policy or {})
    return merged


def simulate(
    cfg: RunConfig,
    num_clients: int,
    resources: SimulationResources | None = None,
    site_policy: Mapping[str, Any] | None = None,
    data_paths: Mapping[int, Path] | None = None,
) -> History:
    """Run one federation of ``num_clients`` simulated sites; return its history.

    ``site_policy`` (``policy-*`` node-config keys) is given to every
    simulated site on top of the harness's defaults (:func:`site_node_configs`);
    ``data_paths`` gives sites their own data files.
    """
    (result,) = simulate_many([cfg], num_clients, resources, site_policy, data_paths)
    if isinstance(result, BaseException):
        raise result
    if not isinstance(result, History):
        raise FedsecError("simulate() runs training; use simulate_analytics()")
    return result


def simulate_analytics(
    cfg: RunConfig,
    num_clients: int,
    resources: SimulationResources | None = None,
    site_policy: Mapping[str, Any] | None = None,
    data_paths: Mapping[int, Path] | None = None,
) -> AnalyticsOutcome:
    """Run one statistics round (``mode='analytics'``) over simulated sites."""
    (result,) = simulate_many(
        [replace(cfg, mode="analytics")],
        num_clients,
        resources,
        site_policy,
        data_paths,
    )
    if isinstance(result, BaseException):
        raise result
    if not isinstance(result, AnalyticsOutcome):
        raise FedsecError("the analytics simulation returned no statistics")
    return result


Outcome = History | AnalyticsOutcome | BaseException


def simulate_many(
    cfgs: Sequence[RunConfig],
    num_clients: int,
    resources: SimulationResources | None = None,
    site_policy: Mapping[str, Any] | None = None,
    data_paths: Mapping[int, Path] | None = None,
    on_run: Callable[[int, Outcome], None] | None = None,
) -> list[Outcome]:
    """Run ``cfgs`` one after the other in one simulation (Ray started once).

    The same ``num_clients`` sites serve every run, each agreeing to all of
    them (:func:`merged_node_configs`). Returns, per config, what its run
    returned (a history, or the statistics of an analytics run) or the
    exception it raised (the next run still goes ahead); ``on_run`` gets the
    same as each run ends. At most one secure-aggregation config per call: a
    site keeps its protocol state between runs of one simulation, and a
    second key set numbered from 1 again would be refused as a replay.
    """
    quiet_flower_env()
    from flwr.serverapp import Grid, ServerApp
    from flwr.simulation import run_simulation

    from clients.client_app import app as client_app
    from strategies.server_app import run_mode as run_one

    if sum(1 for c in cfgs if c.secagg.enabled) > 1:
        raise FedsecError("one simulation serves at most one secure-aggregation run")
    resources = resources or SimulationResources()
    cfgs = [
        _with_party_pki(
            _with_site_keys(_with_federation_size(c, num_clients), num_clients)
        )
        for c in cfgs
    ]
    if any(c.mpc.enabled or c.vertical.enabled for c in cfgs):
        # the three compute parties must run at the same time: at least three
        # concurrent ClientApps (Ray CPUs are logical; two cores suffice)
        resources = replace(
            resources, cpus=max(resources.cpus, 3 * resources.client_cpus)
        )
    outcomes: list[Outcome] = []
    server_app = ServerApp()

    @server_app.main()
    def _main(grid: Grid, context: Any) -> None:
        for k, cfg in enumerate(cfgs):
            try:
                outcome: Outcome = run_one(grid, cfg)
            except Exception as exc:  # reported to the caller, next run goes on
                outcome = exc
            outcomes.append(outcome)
            if on_run is not None:
                on_run(k, outcome)

    sites = merged_node_configs(cfgs, num_clients, site_policy, data_paths)
    with simulated_sites(sites), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        run_simulation(
            server_app=server_app,
            client_app=client_app,
            num_supernodes=num_clients,
            backend_config={
                "client_resources": {
                    "num_cpus": resources.client_cpus,
                    "num_gpus": 0.0,
                },
                "init_args": {
                    "num_cpus": resources.cpus,
                    "num_gpus": 0,
                    "logging_level": logging.ERROR,
                    "log_to_driver": True,
                    "include_dashboard": False,
                },
            },
        )
    if len(outcomes) < len(cfgs):
        outcomes += [
            FedsecError("the simulation ended without a result (see the log above)")
        ] * (len(cfgs) - len(outcomes))
    return outcomes
