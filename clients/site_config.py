"""A site's own configuration: its node config, its policy, its trust anchors.

In deployment a SuperNode's node config is what its operator passed with
``--node-config``. Flower's simulation engine gives every simulated SuperNode
only ``partition-id`` and ``num-partitions``; the simulation harness
(:mod:`experiments.simulate`) plays the operators of the simulated sites and
writes one node-config file per site, ``site<partition-id>.toml``, into the
folder named by the environment variable ``FEDSEC_SIM_SITES`` (or
``$FLWR_HOME/sim-sites``). :func:`node_config` merges that file into the
node config, so handlers read a simulated site's policy and key folders from
exactly where a deployed site has them. Nothing here ever comes from a
message or the run config.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from flwr.app import Context

from fedsec.errors import ConfigError
from fedsec.files import read_bounded
from fedsec.policy import SitePolicy, TrustAnchors

SIM_SITES_ENV = "FEDSEC_SIM_SITES"
_MAX_FILE = 1 << 16


def sim_sites_dir() -> Path | None:
    """The folder of the simulated sites' node-config files, if any."""
    folder = os.environ.get(SIM_SITES_ENV)
    if folder:
        return Path(folder)
    home = os.environ.get("FLWR_HOME")
    if home and (Path(home) / "sim-sites").is_dir():
        return Path(home) / "sim-sites"
    return None


def sim_site_file(folder: Path, partition_id: int) -> Path:
    """Where the simulated site of ``partition_id`` keeps its node config."""
    return folder / f"site{partition_id}.toml"


def node_config(context: Context) -> dict[str, Any]:
    """This SuperNode's node config (a simulated site's own file merged in)."""
    config = dict(context.node_config)
    if "partition-id" in config:
        folder = sim_sites_dir()
        if folder is not None:
            path = sim_site_file(folder, int(config["partition-id"]))
            config.update(_read_site_file(str(path), _mtime(path)))
    return config


def site_policy(context: Context) -> SitePolicy:
    """The site's policy, from its node config only."""
    return SitePolicy.from_node_config(node_config(context))


def trust_anchors(context: Context) -> TrustAnchors:
    """The site's trust anchors, from its node config only."""
    return TrustAnchors.from_node_config(node_config(context))


def write_site_file(folder: Path, partition_id: int, values: Mapping[str, Any]) -> Path:
    """Write a simulated site's node config (harness side); returns the path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = sim_site_file(folder, partition_id)
    lines = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in sorted(values.items())]
    path.write_text("\n".join(lines) + "\n")
    return path


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return -1.0


@lru_cache(maxsize=64)
def _read_site_file(path: str, mtime: float) -> dict[str, Any]:
    if mtime < 0:
        return {}
    data = read_bounded(path, _MAX_FILE, "a site's node-config file")
    try:
        return tomllib.loads(data.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable node-config file ({exc})") from None


def _toml_key(key: str) -> str:
    if not key or not all(c.isalnum() or c in "-_" for c in key):
        raise ConfigError(f"invalid node-config key {key!r}")
    return key


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    raise ConfigError(f"node-config values are scalars, got {value!r}")
