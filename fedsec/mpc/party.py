"""A compute party, driven by messages: the object a Flower handler wraps.

``Party(keys, channel, config, sessions=..., policy=..., registry=...)``
holds its long-term key, its channel to the other two parties, its session
log, its own policy and (from its own node config) the site registry. For
each session the driver hands it the encrypted client packages addressed to
it and who signed them; the party authenticates and decrypts them, runs
:func:`~fedsec.mpc.clip_and_sum.clip_and_sum` with the other two over the
channel, and returns its :class:`~fedsec.mpc.clip_and_sum.OutputShare`, which
the driver forwards to the server. Only that output share leaves the party.

The party decides, whatever the driver or the server asks
(``docs/mpc.md``, "The parties' policy"): it refuses terms weaker than its
policy (:func:`~fedsec.mpc.params.require_terms`: mode ``mpc``, clipping
norm, weight bound, noise) when it is built, a session id it has logged
before (:mod:`fedsec.mpc.sessions`; logged and synced before it computes
anything), and a session of fewer clients than its ``min-sites`` (checked
inside the program on the clients actually included). With a site registry
only packages signed by a registered site count, each site once
(:mod:`fedsec.mpc.origin`), so ``min-sites`` counts sites, not packages a
server could make up; without one it counts packages, and a party whose
policy sets ``require-signed-sites`` refuses to run. Every refusal is one
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
from fedsec.mpc.origin import Origin, authenticate, require_registry
from fedsec.mpc.params import MODE, ClipSumConfig, require_terms
from fedsec.mpc.runtime import Runtime
from fedsec.mpc.scratch import Scratch
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
    #: the registered sites whose packages this party accepted (``None``:
    #: the party has no registry and counted packages)
    sites: tuple[str, ...] | None = None
    #: of :attr:`seconds`, the time spent authenticating and decrypting the
    #: packages (the protocol proper starts once every party has its shares)
    open_seconds: float = 0.0


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
    registry
        Site name → Ed25519 verification key (:func:`fedsec.identity.load_registry`
        of the party's own ``secagg-keys-dir``). With it, only packages signed
        by a registered site count, each site at most once per session;
        ``None`` counts packages (not Sybil-proof: ``docs/mpc.md``).

    Raises
    ------
    PolicyError
        If ``config`` is weaker than ``policy``, or the policy sets
        ``require-signed-sites`` and there is no registry.
    """

    def __init__(
        self,
        keys: PartyKeys,
        channel: Channel,
        config: ClipSumConfig,
        *,
        sessions: SessionLog,
        policy: SitePolicy = DEFAULT_POLICY,
        registry: Mapping[str, bytes] | None = None,
    ) -> None:
        require_terms(policy, config, node_id=keys.index)
        require_registry(policy, registry, node_id=keys.index)
        self.keys = keys
        self.channel = channel
        self.config = config
        self.sessions = sessions
        self.policy = policy
        self.registry = None if registry is None else dict(registry)
        self.last_report: PartyReport | None = None
        self._batch: ShareBatch | None = None
        self._scratch = Scratch()

    @property
    def index(self) -> int:
        """This party's index."""
        return self.keys.index

    def open_packages(
        self,
        session: int,
        packages: Mapping[int, bytes],
        dim: int,
        origins: Mapping[int, Origin] | None = None,
    ) -> tuple[ClientInputs, list[int]]:
        """Authenticate and decrypt the packages; the inputs and the ids that failed.

        With a registry a package is first checked against its origin
        (:func:`~fedsec.mpc.origin.authenticate`); one that fails is left
        out, like one that does not decrypt. The decryption buffers are kept
        and reused by the next session, so a long-running party does not pay
        for fresh memory every round; the returned inputs are only valid until
        the next call.
        """
        rejected: list[int] = []
        if self.registry is not None:
            packages, rejected = authenticate(
                packages,
                origins or {},
                self.registry,
                party=self.index,
                session=session,
            )
        cfg = self.config
        if self._batch is not None and self._batch.fits(len(packages), dim, cfg):
            batch = self._batch
            batch.reset()  # the previous session's output share is already out
        else:
            batch = self._batch = ShareBatch(self.keys, len(packages), dim, cfg)
        for cid in sorted(packages):
            try:
                batch.add(packages[cid], session=session, client_id=cid)
            except CryptoError:
                rejected.append(cid)  # left out, like a client that sent nothing
        return batch.inputs(), sorted(rejected)

    def run_clip_and_sum(
        self,
        session: int,
        packages: Mapping[int, bytes],
        dim: int,
        origins: Mapping[int, Origin] | None = None,
    ) -> OutputShare:
        """Decrypt this party's packages and run the program with the others.

        All three parties must call this for the same ``session`` at the same
        time (they talk over the channel). Fresh PRF keys per session.
        ``origins`` maps client id to the site name and signature the server
        relayed with its package (used when the party has a registry).

        Raises
        ------
        MaliciousServerError
            If ``session`` is in the party's session log (checked and logged
            first, before any package is opened).
        PolicyError
            If fewer clients than the policy's ``min-sites`` are usable (with
            a registry: distinct registered sites with a valid signature).
        """
        start = time.perf_counter()
        check_session_id(session, self.index)
        self.sessions.claim(session)
        shares, rejected = self.open_packages(session, packages, dim, origins)
        opened = time.perf_counter()
        rt = Runtime(
            self.index, self.channel, self.keys.randomness(session), self.config.encoder
        )
        out = clip_and_sum(
            rt,
            shares,
            self.config,
            min_clients=self.policy.least_sites(),
            scratch=self._scratch,
        )
        sites = None
        if self.registry is not None:
            by_id = origins or {}
            sites = tuple(sorted(by_id[c].site for c in out.clients))
        self.last_report = PartyReport(
            self.index,
            tuple(rejected),
            time.perf_counter() - start,
            self.channel.stats,
            sites,
            opened - start,
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
    registry
        The site registry the three parties check packages against
        (default: none, packages are counted).
    """

    def __init__(
        self,
        keys: Sequence[PartyKeys],
        config: ClipSumConfig,
        *,
        policy: SitePolicy = DEFAULT_POLICY,
        sessions: Sequence[SessionLog] | None = None,
        registry: Mapping[str, bytes] | None = None,
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
                registry=registry,
            )
            for i in range(PARTIES)
        ]

    def run(
        self,
        session: int,
        packages: Sequence[Mapping[int, bytes]],
        dim: int,
        origins: Sequence[Mapping[int, Origin]] | None = None,
    ) -> ClipSumResult:
        """Run one session; ``packages[i]`` maps client id to party ``i``'s package.

        ``origins[i]`` maps client id to the origin relayed with it to party ``i``.
        """
        runtimes = [
            Runtime(i, p.channel, p.keys.randomness(session), self.config.encoder)
            for i, p in enumerate(self.parties)
        ]

        def program(rt: Runtime, party: Party) -> OutputShare:
            relayed = origins[rt.index] if origins is not None else None
            return party.run_clip_and_sum(session, packages[rt.index], dim, relayed)

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
    registry: Mapping[str, bytes] | None = None,
    origins: Sequence[Mapping[int, Origin]] | None = None,
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
    registry, origins
        The site registry of the three parties, and per party the origins the
        server relayed (see :class:`Party`).

    Returns
    -------
    tuple
        The combined result and the three parties (for their reports).
        Use :class:`SimulatedParties` to keep the parties across rounds.
    """
    sim = SimulatedParties(keys, config, policy=policy, registry=registry)
    return sim.run(session, packages, dim, origins), sim.parties
