"""Run one program at all three parties inside one process (threads).

The simulation shortcut and the test harness: the three runtimes, their PRF
keys and an :class:`~fedsec.mpc.inproc.InProcessNetwork` live in this
process, so whoever runs it holds every party's secrets. It proves that the
protocol computes the right thing and measures its cost; it is no protection
against the operator of that process.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from fedsec.crypto.prg import KEY_BYTES
from fedsec.errors import ProtocolError
from fedsec.mpc.channel import ChannelStats
from fedsec.mpc.correlated import PrfRandomness
from fedsec.mpc.inproc import InProcessNetwork
from fedsec.mpc.ring import FixedPoint
from fedsec.mpc.runtime import Runtime
from fedsec.mpc.shares import PARTIES, nxt

T = TypeVar("T")
R = TypeVar("R")


class LocalRun(Generic[R]):
    """Outputs and traffic counters of a :func:`run_local` call."""

    def __init__(self, outputs: list[R], stats: list[ChannelStats]) -> None:
        self.outputs = outputs
        self.stats = stats


def local_runtimes(encoder: FixedPoint, timeout: float = 60.0) -> list[Runtime]:
    """Three runtimes on a fresh in-process network with fresh pairwise keys."""
    keys = [secrets.token_bytes(KEY_BYTES) for _ in range(PARTIES)]
    net = InProcessNetwork(timeout=timeout)
    return [
        Runtime(i, net.channel(i), PrfRandomness(i, keys[i], keys[nxt(i)]), encoder)
        for i in range(PARTIES)
    ]


def run_threads(
    runtimes: Sequence[Runtime], program: Callable[[Runtime, T], R], inputs: Sequence[T]
) -> LocalRun[R]:
    """Run ``program(runtime_i, inputs[i])`` for the three parties concurrently."""
    outputs: dict[int, R] = {}
    errors: list[BaseException] = []

    def target(i: int) -> None:
        try:
            outputs[i] = program(runtimes[i], inputs[i])
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(PARTIES)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    if len(outputs) != PARTIES:
        raise ProtocolError("a party returned no output")
    return LocalRun(
        [outputs[i] for i in range(PARTIES)], [rt.channel.stats for rt in runtimes]
    )


def run_local(
    program: Callable[[Runtime, T], R],
    inputs: Sequence[T],
    encoder: FixedPoint | None = None,
) -> LocalRun[R]:
    """Run ``program`` at three fresh in-process parties (see module caveat)."""
    return run_threads(local_runtimes(encoder or FixedPoint()), program, inputs)
