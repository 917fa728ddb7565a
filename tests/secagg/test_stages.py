"""The whole stage-transition matrix, written out independently of the code."""

from __future__ import annotations

import itertools

import pytest

from fedsec.secagg.errors import StageError
from fedsec.secagg.stages import Stage, check_transition

Z, A, R, S, M, C, U = (
    Stage.IDLE,
    Stage.ADVERTISE_KEYS,
    Stage.SEED_REVEAL,
    Stage.SHARE_KEYS,
    Stage.MASKED_INPUT,
    Stage.CONSISTENCY_CHECK,
    Stage.UNMASK,
)
VALID = {
    False: {
        (Z, A),
        (A, A),
        (A, R),
        (A, S),
        (R, A),
        (R, S),
        (S, A),
        (S, M),
        (M, A),
        (M, M),
        (M, U),
        (C, A),
        (C, M),
        (C, U),
        (U, A),
        (U, M),
    },
    True: {
        (Z, A),
        (A, A),
        (A, R),
        (A, S),
        (R, A),
        (R, S),
        (S, A),
        (S, M),
        (M, A),
        (M, M),
        (M, C),
        (C, A),
        (C, M),
        (C, U),
        (U, A),
        (U, M),
    },
}


@pytest.mark.parametrize("active", [False, True])
@pytest.mark.parametrize(("current", "nxt"), list(itertools.product(Stage, Stage)))
def test_transition_matrix(current: Stage, nxt: Stage, active: bool) -> None:
    if (current, nxt) in VALID[active]:
        check_transition(current, nxt, active=active)
    else:
        with pytest.raises(StageError):
            check_transition(current, nxt, active=active)
