"""``fedsec status``: is the SuperLink up, who is connected, how did the last run go.

Three questions, each answered even when another fails:

1. **reachable**: a TLS handshake with the SuperLink's address, trusting only
   the federation's CA and checking the name (what a SuperNode does first);
2. **nodes**: ``flwr supernode list --format json``, named by the node ids
   ``fedsec register`` recorded;
3. **last run**: ``flwr ls --format json`` for the newest run and its status,
   ``flwr log <run> --show`` for its round lines.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedsec.deploy.nodes import load_nodes
from fedsec.errors import ConfigError
from fedsec_cli.flwr_cli import Connection
from fedsec_cli.rounds import RoundLine, parse_rounds


@dataclass
class Status:
    """What ``fedsec status`` found."""

    reachable: bool = False
    reach_detail: str = ""
    nodes: list[dict[str, str]] = field(default_factory=list)
    nodes_error: str = ""
    run: dict[str, Any] = field(default_factory=dict)
    runs_error: str = ""
    rounds: list[RoundLine] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The report, one fact per line."""
        out = [
            "superlink: "
            + ("reachable, certificate verified" if self.reachable else "NOT reachable")
            + (f" ({self.reach_detail})" if self.reach_detail else "")
        ]
        if self.nodes_error:
            out.append(f"nodes: unknown ({self.nodes_error})")
        else:
            online = sum(n["status"] == "online" for n in self.nodes)
            out.append(f"nodes: {online} online of {len(self.nodes)} registered")
            out += [
                f"  {n['site'] or '?':<20} node {n['node-id']:<22} {n['status']}"
                for n in self.nodes
            ]
        if self.runs_error:
            out.append(f"last run: unknown ({self.runs_error})")
        elif not self.run:
            out.append("last run: none yet")
        else:
            out.append(
                f"last run: {self.run.get('run-id')} {self.run.get('status')} "
                f"(elapsed {self.run.get('elapsed', '?')})"
            )
            out += [f"  {r.summary()}" for r in self.rounds]
        return out


def tls_reachable(
    address: str, ca_file: Path, timeout: float = 5.0
) -> tuple[bool, str]:
    """Handshake with ``address`` trusting only ``ca_file``; (ok, why not)."""
    host, _, port = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    try:
        context = ssl.create_default_context(cafile=str(ca_file))
        with (
            socket.create_connection((host, int(port)), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host),
        ):
            return True, ""
    except ssl.SSLCertVerificationError as exc:
        return False, f"certificate not trusted: {exc.verify_message}"
    except (OSError, ValueError) as exc:
        return False, str(exc) or type(exc).__name__


def collect(out: Path, *, log_timeout: float = 30.0) -> Status:
    """Ask the SuperLink of the federation provisioned in ``out``."""
    conn = Connection.of(out)
    status = Status()
    status.reachable, status.reach_detail = tls_reachable(
        conn.address, conn.layout.coordinator.ca_cert
    )
    if not status.reachable:
        status.nodes_error = status.runs_error = "SuperLink not reachable"
        return status
    names = {node: site for site, node in load_nodes(conn.layout.coordinator).items()}
    try:
        listed = _records(conn.json("supernode", "list", conn.name), "nodes")
        status.nodes = [
            {
                "node-id": str(n.get("node-id")),
                "status": str(n.get("status")),
                "site": names.get(_int(n.get("node-id")), ""),
            }
            for n in listed
        ]
    except ConfigError as exc:
        status.nodes_error = exc.reason
    try:
        runs = _records(conn.json("ls", conn.name), "runs")
        if runs:
            status.run = max(runs, key=lambda r: str(r.get("pending-at", "")))
            proc = conn.run(
                "log",
                str(status.run["run-id"]),
                conn.name,
                "--show",
                timeout=log_timeout,
            )
            status.rounds = parse_rounds(proc.stdout)
    except ConfigError as exc:
        status.runs_error = exc.reason
    return status


def _records(answer: dict[str, object], key: str) -> list[dict[str, Any]]:
    """The list of objects under ``key`` of a flwr JSON answer."""
    items = answer.get(key, [])
    if not isinstance(items, list):
        raise ConfigError(f"flwr answered without a list of {key}")
    return [item for item in items if isinstance(item, dict)]


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return -1
