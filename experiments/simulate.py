"""Run the fedsec ServerApp and ClientApp in Flower's simulation engine in-process.

Used by the Hydra entry points, the benchmarks and the simulation tests: the
same apps as ``flwr run .``, driven through ``flwr.simulation.run_simulation``
so that the caller gets the :class:`~strategies.loop.History` back.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

from fedsec.config import RunConfig
from fedsec.errors import FedsecError
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


def _with_site_keys(cfg: RunConfig, num_clients: int) -> RunConfig:
    """Active secure aggregation: make sure the simulated sites have keys.

    The keys are provisioned here, out of band, as a consortium would; the
    ServerApp only ever reads the public registry.
    """
    if cfg.secagg.mode != "active":
        return cfg
    from experiments.site_keys import ensure_site_keys

    folder = Path(cfg.secagg.keys_dir or ".flwr/secagg-keys")
    folder = folder if folder.is_absolute() else ROOT / folder
    ensure_site_keys(folder, num_clients)
    return replace(cfg, secagg=replace(cfg.secagg, keys_dir=str(folder)))


def _with_party_pki(cfg: RunConfig) -> RunConfig:
    """MPC: make sure the three parties have TLS identities (out of band)."""
    if not cfg.mpc.enabled:
        return cfg
    from fedsec.mpc.tls import make_throwaway_pki

    folder = Path(cfg.mpc.tls_dir or ".flwr/mpc-tls")
    folder = folder if folder.is_absolute() else ROOT / folder
    if not (folder / "ca.pem").is_file():
        make_throwaway_pki(folder)
    return replace(cfg, mpc=replace(cfg.mpc, tls_dir=str(folder)))


def simulate(
    cfg: RunConfig,
    num_clients: int,
    resources: SimulationResources | None = None,
) -> History:
    """Run one federation of ``num_clients`` simulated sites; return its history."""
    quiet_flower_env()
    from flwr.simulation import run_simulation

    from clients.client_app import app as client_app
    from strategies.server_app import make_server_app

    resources = resources or SimulationResources()
    cfg = _with_site_keys(cfg, num_clients)
    cfg = _with_party_pki(cfg)
    if cfg.mpc.enabled:
        # the three compute parties must run at the same time: at least three
        # concurrent ClientApps (Ray CPUs are logical; two cores suffice)
        resources = replace(
            resources, cpus=max(resources.cpus, 3 * resources.client_cpus)
        )
    histories: list[History] = []
    errors: list[BaseException] = []

    def finish(history: History) -> None:
        histories.append(history)

    server_app = make_server_app(cfg, on_finish=finish, on_error=errors.append)
    with warnings.catch_warnings():
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
    if errors:
        raise errors[0]
    if not histories:
        raise FedsecError("the simulation ended without a result (see the log above)")
    return histories[0]
