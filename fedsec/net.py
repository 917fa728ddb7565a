"""Small network helpers shared by the MPC parties, benchmarks and deployment."""

from __future__ import annotations

import socket
from contextlib import ExitStack


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct TCP ports on ``host`` that were free a moment ago.

    The sockets are bound together (so the OS hands out distinct ports) and
    closed before returning; another process could take a port in between.
    """
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def free_port(host: str = "127.0.0.1") -> int:
    """One TCP port on ``host`` that was free a moment ago."""
    return free_ports(1, host)[0]
