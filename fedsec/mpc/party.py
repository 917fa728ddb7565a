"""A compute party, driven by messages: the object a Flower handler wraps.

``Party(keys, channel, config)`` holds its long-term key and its channel to
the other two parties. For each session (training round) the driver hands it
the encrypted client packages addressed to it; the party decrypts them, runs
:func:`~fedsec.mpc.clip_and_sum.clip_and_sum` with the other two over the
channel, and returns its :class:`~fedsec.mpc.clip_and_sum.OutputShare`, which
the driver forwards to the server. Only that output share leaves the party.

:func:`simulate_clip_and_sum` is the *simulation shortcut*: one process holds
all three parties' secret keys and runs them in threads over the in-process
channel. It computes exactly what the deployment computes, but whoever runs it
could decrypt every client's shares; use it for simulation and tests only.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fedsec.errors import CryptoError
from fedsec.mpc.channel import Channel, ChannelStats
from fedsec.mpc.client import ClientInputs, ShareBatch
from fedsec.mpc.clip_and_sum import (
    ClipSumConfig,
    ClipSumResult,
    OutputShare,
    clip_and_sum,
    combine_outputs,
)
from fedsec.mpc.inproc import InProcessNetwork
from fedsec.mpc.keys import PartyKeys
from fedsec.mpc.local import run_threads
from fedsec.mpc.runtime import Runtime
from fedsec.mpc.shares import PARTIES


@dataclass(frozen=True)
class PartyReport:
    """Cost of one session at one party (public numbers only)."""

    party: int
    rejected_clients: tuple[int, ...]
    seconds: float
    stats: ChannelStats


class Party:
    """Compute party ``keys.index``.

    Parameters
    ----------
    keys
        Its secret key and the three public keys.
    channel
        Its endpoint to the other two parties (in-process or TCP+mTLS).
    config
        The public clip-and-sum parameters.
    """

    def __init__(
        self, keys: PartyKeys, channel: Channel, config: ClipSumConfig
    ) -> None:
        self.keys = keys
        self.channel = channel
        self.config = config
        self.last_report: PartyReport | None = None
        self._batch: ShareBatch | None = None

    @property
    def index(self) -> int:
        """This party's index."""
        return self.keys.index

    def open_packages(
        self, session: int, packages: Mapping[int, bytes], dim: int
    ) -> tuple[ClientInputs, list[int]]:
        """Decrypt the packages; returns the inputs and the ids that failed.

        The decryption buffers are kept and reused by the next session, so a
        long-running party does not pay for fresh memory every round; the
        returned inputs are only valid until the next call.
        """
        f = self.config.frac_bits
        if self._batch is not None and self._batch.fits(len(packages), dim, f):
            batch = self._batch
            batch.reset()  # the previous session's output share is already out
        else:
            batch = self._batch = ShareBatch(self.keys, len(packages), dim, f)
        rejected: list[int] = []
        for cid in sorted(packages):
            try:
                batch.add(packages[cid], session=session, client_id=cid)
            except CryptoError:
                rejected.append(cid)  # left out, like a client that sent nothing
        return batch.inputs(), rejected

    def run_clip_and_sum(
        self, session: int, packages: Mapping[int, bytes], dim: int
    ) -> OutputShare:
        """Decrypt this party's packages and run the program with the others.

        All three parties must call this for the same ``session`` at the same
        time (they talk over the channel). Fresh PRF keys per session.
        """
        start = time.perf_counter()
        shares, rejected = self.open_packages(session, packages, dim)
        rt = Runtime(
            self.index, self.channel, self.keys.randomness(session), self.config.encoder
        )
        out = clip_and_sum(rt, shares, self.config)
        self.last_report = PartyReport(
            self.index, tuple(rejected), time.perf_counter() - start, self.channel.stats
        )
        return out


class SimulatedParties:
    """The three parties in this process, kept across sessions (the shortcut).

    Holds an in-process network and three :class:`Party` objects, so their
    decryption buffers are reused from one round to the next. See the module
    docstring for the trust caveat: this process holds every party's secret.

    Parameters
    ----------
    keys
        The three parties' keys.
    config
        Public parameters.
    """

    def __init__(self, keys: Sequence[PartyKeys], config: ClipSumConfig) -> None:
        self.config = config
        self.network = InProcessNetwork()
        self.parties = [
            Party(keys[i], self.network.channel(i), config) for i in range(PARTIES)
        ]

    def run(
        self, session: int, packages: Sequence[Mapping[int, bytes]], dim: int
    ) -> ClipSumResult:
        """Run one session; ``packages[i]`` maps client id to party ``i``'s package."""
        runtimes = [
            Runtime(i, p.channel, p.keys.randomness(session), self.config.encoder)
            for i, p in enumerate(self.parties)
        ]

        def program(rt: Runtime, party: Party) -> OutputShare:
            return party.run_clip_and_sum(session, packages[rt.index], dim)

        run = run_threads(runtimes, program, self.parties)
        return combine_outputs(run.outputs, self.config.encoder)


def simulate_clip_and_sum(
    keys: Sequence[PartyKeys],
    session: int,
    packages: Sequence[Mapping[int, bytes]],
    dim: int,
    config: ClipSumConfig,
) -> tuple[ClipSumResult, list[Party]]:
    """Run the three parties in this process once (the simulation shortcut).

    Parameters
    ----------
    keys
        The three parties' keys (this process holds all secrets: see module).
    session
        Session (round) number.
    packages
        ``packages[i]`` maps client id to the package for party ``i``.
    dim
        Update dimension.
    config
        Public parameters.

    Returns
    -------
    tuple
        The combined result and the three parties (for their reports).
        Use :class:`SimulatedParties` to keep the parties across rounds.
    """
    sim = SimulatedParties(keys, config)
    return sim.run(session, packages, dim), sim.parties
