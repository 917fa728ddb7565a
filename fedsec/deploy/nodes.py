"""``coordinator/nodes.json``: which node id the SuperLink gave each site's key.

``flwr supernode register`` answers with a node id; ``fedsec register``
records it here so that ``fedsec status`` can name the sites and ``fedsec
rotate-keys`` / ``fedsec revoke`` can print the ``flwr supernode unregister``
line with the right id. Public facts only.
"""

from __future__ import annotations

from fedsec.deploy.files import read_json, write_json
from fedsec.deploy.layout import CoordinatorKit
from fedsec.errors import ConfigError


def load_nodes(kit: CoordinatorKit) -> dict[str, int]:
    """Site name → node id (empty if nothing was recorded)."""
    if not kit.nodes.is_file():
        return {}
    raw = read_json(kit.nodes)
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, int) for k, v in raw.items()
    ):
        raise ConfigError(f"{kit.nodes}: not a map of site names to node ids")
    return dict(raw)


def save_nodes(kit: CoordinatorKit, nodes: dict[str, int]) -> None:
    """Write the map."""
    write_json(kit.nodes, nodes, force=True)


def forget(kit: CoordinatorKit, site: str) -> int | None:
    """Drop ``site`` from the map; return the node id it had."""
    nodes = load_nodes(kit)
    node = nodes.pop(site, None)
    if node is not None:
        save_nodes(kit, nodes)
    return node
