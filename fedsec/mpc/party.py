"""A compute party, driven by messages: the object a Flower handler wraps.

``Party(keys, channel, config, sessions=..., policy=...)`` holds its
long-term key, its channel to the other two parties, its session log and its
own policy. For each session the driver hands it the encrypted client
packages addressed to it; the party decrypts them, runs
:func:`~fedsec.mpc.clip_and_sum.clip_and_sum` with the other two over the
channel, and returns its :class:`~fedsec.mpc.clip_and_sum.OutputShare`, which
the driver forwards to the server. Only that output share leaves the party.

The party decides, whatever the driver or the server asks
(``docs/mpc.md``, "The parties' policy"): it refuses terms weaker than its
policy (:func:`~fedsec.mpc.params.require_terms`: mode ``mpc``, clipping
norm, weight bound, noise) when it is built, a session id it has logged
before (:mod:`fedsec.mpc.sessions`; logged and synced before it computes
anything), and a session of fewer clients than its ``min-sites`` (checked
inside the program on the clients actually included). Every refusal is one
typed error, raised before any output share exists.

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
    ClipSumResult,
    OutputShare,
    clip_and_sum,
    combine_outputs,
)
from fedsec.mpc.inproc import InProcessNetwork
from fedsec.mpc.keys import PartyKeys
from fedsec.mpc.local import run_threads
from fedsec.mpc.params import MODE, ClipSumConfig, require_terms
from fedsec.mpc.runtime import Runtime
from fedsec.mpc.sessions import MemorySessionLog, SessionLog, check_session_id
from fedsec.mpc.shares import PARTIES
from fedsec.policy import SitePolicy

#: The policy of a party that was given none: the default floors, mode ``mpc``.
DEFAULT_POLICY = SitePolicy(modes=frozenset({MODE}))


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
        The public clip-and-sum parameters (the server's request).
    sessions
        The party's session log: a :class:`~fedsec.mpc.sessions.FileSessionLog`
        for a party that must remember its sessions across restarts.
    policy
        The party's own policy (default: :data:`DEFAULT_POLICY`).

    Raises
    ------
    PolicyError
        If ``config`` is weaker than ``policy``.
    """

    def __init__(
        self,
        keys: PartyKeys,
        channel: Channel,
        config: ClipSumConfig,
        *,
        sessions: SessionLog,
        policy: SitePolicy = DEFAULT_POLICY,
    ) -> None:
        require_terms(policy, config, node_id=keys.index)
        self.keys = keys
        self.channel = channel
        self.config = config
        self.sessions = sessions
        self.policy = policy
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
        cfg = self.config
        if self._batch is not None and self._batch.fits(len(packages), dim, cfg):
            batch = self._batch
            batch.reset()  # the previous session's output share is already out
        else:
            batch = self._batch = ShareBatch(self.keys, len(packages), dim, cfg)
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

        Raises
        ------
        MaliciousServerError
            If ``session`` is in the party's session log (checked and logged
            first, before any package is opened).
        PolicyError
            If fewer clients than the policy's ``min-sites`` are usable.
        """
        start = time.perf_counter()
        check_session_id(session, self.index)
        self.sessions.claim(session)
        shares, rejected = self.open_packages(session, packages, dim)
        rt = Runtime(
            self.index, self.channel, self.keys.randomness(session), self.config.encoder
        )
        out = clip_and_sum(rt, shares, self.config, min_clients=self.policy.min_sites)
        self.last_report = PartyReport(
            self.index, tuple(rejected), time.perf_counter() - start, self.channel.stats
        )
        return out


class SimulatedParties:
    """The three parties in this process, kept across sessions (the shortcut).

    Holds an in-process network and three :class:`Party` objects, so their
    decryption buffers are reused from one round to the next. See the module
    docstring for the trust caveat: this process holds every party's secret.
    The parties' checks hold here too.

    Parameters
    ----------
    keys
        The three parties' keys.
    config
        Public parameters.
    policy
        The three parties' policy (default: :data:`DEFAULT_POLICY`).
    sessions
        The three parties' session logs (default: in memory, for the
        lifetime of this object).
    """

    def __init__(
        self,
        keys: Sequence[PartyKeys],
        config: ClipSumConfig,
        *,
        policy: SitePolicy = DEFAULT_POLICY,
        sessions: Sequence[SessionLog] | None = None,
    ) -> None:
        self.config = config
        self.network = InProcessNetwork()
        logs = sessions or [MemorySessionLog(node_id=i) for i in range(PARTIES)]
        self.parties = [
            Party(
                keys[i],
                self.network.channel(i),
                config,
                sessions=logs[i],
                policy=policy,
            )
            for i in range(PARTIES)
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
    *,
    policy: SitePolicy = DEFAULT_POLICY,
) -> tuple[ClipSumResult, list[Party]]:
    """Run the three parties in this process once (the simulation shortcut).

    Parameters
    ----------
    keys
        The three parties' keys (this process holds all secrets: see module).
    session
        Session id (fresh per round; each computed at most once).
    packages
        ``packages[i]`` maps client id to the package for party ``i``.
    dim
        Update dimension.
    config
        Public parameters.
    policy
        The three parties' policy (default: :data:`DEFAULT_POLICY`).

    Returns
    -------
    tuple
        The combined result and the three parties (for their reports).
        Use :class:`SimulatedParties` to keep the parties across rounds.
    """
    sim = SimulatedParties(keys, config, policy=policy)
    return sim.run(session, packages, dim), sim.parties
