"""A compute party of vertical training: open the holders' blocks, align, train.

``VerticalParty(keys, channel, terms, sessions=, policy=)`` checks the terms
against its own policy (mode ``vertical``; with the policy's
``require-dp`` / ``min-noise-multiplier``, the DP noise) when it is built.
:meth:`VerticalParty.run` claims the session in its session log (a session
is computed at most once: a rerun would release a second model from the
same data), opens the holders' blocks sealed to it, aligns the rows itself
from the final PSI tag lists (:func:`~fedsec.psi.protocol.match_tags`: it does
not take an alignment from the server), trains with the other two parties
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
from fedsec.policy import SitePolicy
from fedsec.psi.protocol import match_tags
from fedsec.vertical.shares import FEATURES, LABELS, open_block
from fedsec.vertical.train import TrainTerms, train

MODE = "vertical"  # the site-policy mode of vertical training


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
    finals
        Per holder, the final PSI tags of its list (``shares`` mode), or
        ``None`` when the holders uploaded rows already in the common order.
    """

    features: Mapping[int, bytes]
    labels: bytes
    label_holder: int
    finals: Mapping[int, bytes] | None = None


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

    def _aligned(self, session: int, inputs: HolderInputs) -> tuple[Shared, Shared]:
        i, enc = self.keys.index, self.terms.encoder
        holders = sorted(inputs.features)
        if holders != list(range(len(holders))) or len(holders) < 2:
            raise ProtocolError("need blocks from holders 0..k-1", node_id=i)
        if inputs.label_holder not in holders:
            raise ProtocolError("the label holder is not a holder", node_id=i)
        blocks = {
            h: open_block(
                self.keys.secret,
                i,
                inputs.features[h],
                session=session,
                holder=h,
                kind=FEATURES,
                encoder=enc,
            )
            for h in holders
        }
        labels = open_block(
            self.keys.secret,
            i,
            inputs.labels,
            session=session,
            holder=inputs.label_holder,
            kind=LABELS,
            encoder=enc,
        )
        if inputs.finals is None:
            rows = {h: np.arange(blocks[h].shape[0]) for h in holders}
        else:
            rows = match_tags(inputs.finals, len(holders), node_id=i).positions
        label_rows = rows[inputs.label_holder]
        if labels.shape != (blocks[inputs.label_holder].shape[0], 1):
            raise ProtocolError("labels and features of a holder differ", node_id=i)
        sizes = {len(r) for r in rows.values()}
        if len(sizes) != 1 or any(
            len(r) and int(r.max()) >= blocks[h].shape[0] for h, r in rows.items()
        ):
            raise ProtocolError("the blocks do not align", node_id=i)
        if sizes.pop() < 2:
            raise AbortError("fewer than 2 common rows: nothing trained", node_id=i)
        x = Shared(
            np.hstack([blocks[h].a[rows[h]] for h in holders]),
            np.hstack([blocks[h].b[rows[h]] for h in holders]),
        )
        y = Shared(labels.a[label_rows, 0], labels.b[label_rows, 0])
        return x, y

    def run(self, session: int, inputs: HolderInputs, seed: bytes) -> PartyOutcome:
        """Claim the session, align, train with the others, reveal the model.

        All three parties call this for the same session at the same time.
        """
        start = time.perf_counter()
        check_session_id(session, self.keys.index)
        self.sessions.claim(session)
        x, y = self._aligned(session, inputs)
        rt = Runtime(
            self.keys.index,
            self.channel,
            self.keys.randomness(session),
            self.terms.encoder,
        )
        w = reveal(rt, train(rt, x, y, self.terms, seed))
        if w is None:
            raise ProtocolError("the model was not revealed", node_id=rt.index)
        return PartyOutcome(
            self.terms.encoder.decode(w),
            x.shape[0],
            time.perf_counter() - start,
            self.channel.stats,
        )
