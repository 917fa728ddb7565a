"""Choose the aggregation backend a run config asks for."""

from __future__ import annotations

from fedsec.config import RunConfig
from strategies.backends import AggregationBackend, PlainBackend
from strategies.central_dp import CentralDPBackend
from strategies.mpc_backend import MPCBackend
from strategies.secagg_backend import SecAggBackend


def build_backend(cfg: RunConfig) -> AggregationBackend:
    """Plain FL, central DP, secure aggregation (with or without DP) or MPC."""
    if cfg.mpc.enabled:
        return MPCBackend(cfg.mpc, cfg.dp)
    if cfg.secagg.enabled:
        return SecAggBackend(cfg.secagg, cfg.dp)
    if cfg.dp.mode == "central":
        return CentralDPBackend(cfg.dp)
    return PlainBackend()
