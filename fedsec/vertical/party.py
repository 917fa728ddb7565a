"""A compute party of vertical training: open the holders' blocks, align, train.

``VerticalParty(keys, channel, terms, sessions=, policy=)`` checks the terms
against its own policy (mode ``vertical``; with the policy's
``require-dp`` / ``min-noise-multiplier``, the DP noise) when it is built.
:meth:`VerticalParty.run` claims the session in its session log (a session
is computed at most once: a rerun would release a second model from the
same data), opens the holders' blocks sealed to it, aligns the rows itself
(it does not take an alignment from the server): in ``shares`` mode each
holder's rows arrive in its secret upload order with the final PSI tags of
its list secret-shared beside them (by the list's last relay); the parties
shuffle every block obliviously (:mod:`fedsec.mpc.shuffle`), open only the
tags, match them (:func:`~fedsec.psi.protocol.match_tags`) and keep the
common rows in the common order, so no party, even together with one holder,
learns which of a holder's rows are common, trains with the other two parties
over the channel (:func:`~fedsec.vertical.train.train`) and reveals only the
model, to the three parties.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fedsec.errors import AbortError, ProtocolError
from fedsec.mpc.arithmetic import reveal
from fedsec.mpc.channel import Channel, ChannelStats
from fedsec.mpc.keys import PartyKeys
from fedsec.mpc.runtime import Runtime
from fedsec.mpc.sessions import SessionLog, check_session_id
from fedsec.mpc.shares import Shared
from fedsec.mpc.shuffle import shuffle
from fedsec.policy import SitePolicy
from fedsec.psi.protocol import match_tags
from fedsec.vertical.shares import FEATURES, LABELS, TAGS, open_block
from fedsec.vertical.train import TrainTerms, train

MODE = "vertical"  # the site-policy mode of vertical training
TAG_WORDS = 4  # a 32-byte PSI tag as four ring elements


def _columns(parts: list[Shared]) -> Shared:
    return Shared(
        np.hstack([p.a for p in parts]).astype(np.uint64),
        np.hstack([p.b for p in parts]).astype(np.uint64),
    )


def require_vertical_terms(
    policy: SitePolicy, terms: TrainTerms, *, node_id: int | None = None
) -> None:
    """Refuse terms weaker than ``policy`` (mode, DP noise): one PolicyError."""
    policy.require_mode(MODE)
    policy.require_dp_noise(terms.noise_multiplier or None)


@dataclass(frozen=True)
class HolderInputs:
    """What one party received for a session.

    Attributes
    ----------
    features
        Per holder, its features block sealed to this party.
    labels
        The label holder's block sealed to this party.
    label_holder
        Which holder has the labels.
    tags
        Per holder, the final PSI tags of its list secret-shared by the list's
        last relay and sealed to this party (``shares`` mode), or ``None``
        when the holders uploaded rows already in the common order.
    """

    features: Mapping[int, bytes]
    labels: bytes
    label_holder: int
    tags: Mapping[int, bytes] | None = None


@dataclass(frozen=True)
class PartyOutcome:
    """The revealed model and public costs."""

    weights: npt.NDArray[np.float64]
    rows: int
    seconds: float
    stats: ChannelStats


class VerticalParty:
    """Compute party ``keys.index`` of vertical training (module docstring)."""

    def __init__(
        self,
        keys: PartyKeys,
        channel: Channel,
        terms: TrainTerms,
        *,
        sessions: SessionLog,
        policy: SitePolicy,
    ) -> None:
        require_vertical_terms(policy, terms, node_id=keys.index)
        self.keys = keys
        self.channel = channel
        self.terms = terms
        self.sessions = sessions

    def _open(self, session: int, inputs: HolderInputs) -> dict[int, Shared]:
        """Every holder's block with, at the label holder, the labels appended."""
        i, enc = self.keys.index, self.terms.encoder
        holders = sorted(inputs.features)
        if holders != list(range(len(holders))) or len(holders) < 2:
            raise ProtocolError("need blocks from holders 0..k-1", node_id=i)
        if inputs.label_holder not in holders:
            raise ProtocolError("the label holder is not a holder", node_id=i)
        if inputs.tags is not None and sorted(inputs.tags) != holders:
            missing = sorted(set(holders) - set(inputs.tags))
            raise AbortError(
                f"no PSI tags of holder(s) {missing}: nothing trained", node_id=i
            )

        def block(package: bytes, holder: int, kind: int, f: int) -> Shared:
            return open_block(
                self.keys.secret,
                i,
                package,
                session=session,
                holder=holder,
                kind=kind,
                frac_bits=f,
            )

        f = enc.frac_bits
        blocks = {h: block(inputs.features[h], h, FEATURES, f) for h in holders}
        label = inputs.label_holder
        y = block(inputs.labels, label, LABELS, f)
        if y.shape != (blocks[label].shape[0], 1):
            raise ProtocolError("labels and features of a holder differ", node_id=i)
        blocks[label] = _columns([blocks[label], y])
        if inputs.tags is not None:
            for h in holders:
                tags = block(inputs.tags[h], h, TAGS, 0)
                if tags.shape != (blocks[h].shape[0], TAG_WORDS):
                    raise ProtocolError("tags and rows of a holder differ", node_id=i)
                blocks[h] = _columns([blocks[h], tags])
        return blocks

    def _aligned(
        self, rt: Runtime, blocks: dict[int, Shared], inputs: HolderInputs
    ) -> tuple[Shared, Shared]:
        """Shuffle each block obliviously, open its tags, keep the common rows."""
        holders = sorted(blocks)
        if inputs.tags is None:
            rows = {h: np.arange(blocks[h].shape[0]) for h in holders}
        else:
            finals = {}
            for h in holders:
                blocks[h] = shuffle(rt, blocks[h])
                tags = reveal(rt, blocks[h][:, -TAG_WORDS:])
                if tags is None:
                    raise ProtocolError("tags not revealed", node_id=rt.index)
                finals[h] = np.ascontiguousarray(tags, dtype="<u8").tobytes()
                blocks[h] = blocks[h][:, :-TAG_WORDS]
            rows = match_tags(finals, len(holders), node_id=rt.index).positions
        sizes = {len(r) for r in rows.values()}
        if len(sizes) != 1 or sizes.pop() < 2:
            raise AbortError("fewer than 2 common rows: nothing trained")
        label = inputs.label_holder
        features = [blocks[h][:, :-1] if h == label else blocks[h] for h in holders]
        x = _columns(
            [
                Shared(b.a[rows[h]], b.b[rows[h]])
                for h, b in zip(holders, features, strict=True)
            ]
        )
        lab = blocks[label]
        y = Shared(lab.a[rows[label], -1], lab.b[rows[label], -1])
        return x, y

    def run(self, session: int, inputs: HolderInputs, seed: bytes) -> PartyOutcome:
        """Claim the session, align, train with the others, reveal the model.

        All three parties call this for the same session at the same time.
        """
        start = time.perf_counter()
        check_session_id(session, self.keys.index)
        self.sessions.claim(session)
        blocks = self._open(session, inputs)
        rt = Runtime(
            self.keys.index,
            self.channel,
            self.keys.randomness(session),
            self.terms.encoder,
        )
        x, y = self._aligned(rt, blocks, inputs)
        w = reveal(rt, train(rt, x, y, self.terms, seed))
        if w is None:
            raise ProtocolError("the model was not revealed", node_id=rt.index)
        return PartyOutcome(
            self.terms.encoder.decode(w),
            x.shape[0],
            time.perf_counter() - start,
            self.channel.stats,
        )
