"""Protocol stages and the transition check of one client.

Stages follow Bonawitz et al. (CCS 2017): advertise keys (round 0), share keys
(round 1), masked input (round 2), consistency check (round 3, active variant
only) and unmasking (round 4). With a sparse graph one stage sits between
advertising and sharing: the sites reveal the randomness they committed to
while advertising, from which the graph follows (``SEED_REVEAL``, see
:mod:`fedsec.secagg.graph`). With key reuse, a key set set up once serves
several rounds: after a round's last stage the next stage is the masked input
of the next round, and a new key set (advertise keys) may start at any time,
which discards the old one.
"""

from __future__ import annotations

from enum import StrEnum

from fedsec.secagg.errors import StageError


class Stage(StrEnum):
    """The stages of one secure-aggregation key set and its rounds."""

    IDLE = "idle"
    ADVERTISE_KEYS = "advertise_keys"
    SEED_REVEAL = "seed_reveal"
    SHARE_KEYS = "share_keys"
    MASKED_INPUT = "masked_input"
    CONSISTENCY_CHECK = "consistency_check"
    UNMASK = "unmask"


_ROUND_END = {Stage.MASKED_INPUT, Stage.CONSISTENCY_CHECK, Stage.UNMASK}


def allowed_next(current: Stage, *, active: bool) -> frozenset[Stage]:
    """Return the stages a party in ``current`` may enter next.

    ``MASKED_INPUT`` after a round stage means the next round of the key set
    (the caller also checks that the round number grows).
    """
    nxt: set[Stage] = {Stage.ADVERTISE_KEYS}
    if current is Stage.ADVERTISE_KEYS:
        nxt |= {Stage.SEED_REVEAL, Stage.SHARE_KEYS}  # the reveal: sparse only
    elif current is Stage.SEED_REVEAL:
        nxt.add(Stage.SHARE_KEYS)
    elif current is Stage.SHARE_KEYS:
        nxt.add(Stage.MASKED_INPUT)
    elif current in _ROUND_END:
        nxt.add(Stage.MASKED_INPUT)
        if current is Stage.MASKED_INPUT:
            nxt.add(Stage.CONSISTENCY_CHECK if active else Stage.UNMASK)
        elif current is Stage.CONSISTENCY_CHECK:
            nxt.add(Stage.UNMASK)
    return frozenset(nxt)


def check_transition(current: Stage, nxt: Stage, *, active: bool) -> None:
    """Raise ``StageError`` unless ``current -> nxt`` is a legal transition."""
    if nxt not in allowed_next(current, active=active):
        raise StageError(
            f"transition {current.value} -> {nxt.value} is not allowed",
            stage=nxt.value,
        )
