"""Registering the sites' SuperNode keys at the SuperLink, recording node ids.

``flwr supernode register <key> <connection> --name <site> --format json``
for every site whose key is not registered yet (run concurrently: each call
is a Python start-up of a few seconds); the node id the SuperLink answers
goes into ``coordinator/nodes.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fedsec.deploy import record
from fedsec.deploy.nodes import load_nodes, save_nodes
from fedsec.deploy.rotation import Change
from fedsec.errors import ConfigError
from fedsec_cli.flwr_cli import Connection


def register_sites(out: Path, sites: Sequence[str] = ()) -> dict[str, int]:
    """Register ``sites`` (default: every active site not recorded yet)."""
    conn = Connection.of(out)
    rec = record.load(conn.layout)
    for site in sites:
        rec.require_site(site)
    nodes = load_nodes(conn.layout.coordinator)
    todo = list(sites) or [s for s in rec.active_sites if s not in nodes]
    if not todo:
        return {}

    def one(site: str) -> tuple[str, int | str]:
        key = conn.layout.coordinator.site_key(site)
        try:
            value = conn.json(
                "supernode", "register", str(key), conn.name, "--name", site
            )
            return site, int(str(value["node-id"]))
        except (ConfigError, KeyError, ValueError) as exc:
            return site, str(exc)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = dict(pool.map(one, todo))
    done = {s: v for s, v in results.items() if isinstance(v, int)}
    nodes.update(done)
    save_nodes(conn.layout.coordinator, nodes)
    failed = {s: v for s, v in results.items() if isinstance(v, str)}
    if failed:
        first = next(iter(failed))
        raise ConfigError(
            f"registration failed for {', '.join(sorted(failed))} "
            f"({first}: {failed[first]})"
        )
    return done


def unregister(out: Path, node_id: int) -> None:
    """``flwr supernode unregister <node_id>``."""
    conn = Connection.of(out)
    conn.json("supernode", "unregister", str(node_id), conn.name)


def apply_change(out: Path, change: Change) -> list[str]:
    """Run a rotation's or revocation's flwr lines; return what was done."""
    done = []
    if change.old_node is not None:
        unregister(out, change.old_node)
        done.append(f"unregistered node {change.old_node} ({change.site})")
    elif change.unregister:
        done.append(
            f"node id of {change.site} unknown (not registered with fedsec register): "
            "unregister it by hand after `flwr supernode list`"
        )
    if change.reregister:
        for site, node in register_sites(out, [change.site]).items():
            done.append(f"registered {site}: node {node}")
    return done
