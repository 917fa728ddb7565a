"""Oblivious shuffle of the rows of a replicated sharing (three resharing steps).

The permutation is ``pi = pi_2 . pi_1 . pi_0``, where ``pi_j`` is drawn from
the PRF key that parties ``j`` and ``j + 1`` share (:mod:`fedsec.mpc.correlated`)
and is unknown to party ``j + 2``: every single party misses one of the three,
so to it the composed permutation is uniform (the resharing shuffle of Araki
et al., "Secure graph analysis at scale", CCS 2021, and of Mohassel, Rindal
and Rosulek's secret-shared joins, ePrint 2019/518).

Step ``j`` (one round, two messages of the input's size). Write ``X = X_0 +
X_1 + X_2`` with party ``i`` holding ``(X_i, X_{i+1})``. Parties ``j`` and
``j + 1`` hold a 2-out-of-2 sharing without talking: ``A = X_j + X_{j+1}``
at party ``j``, ``B = X_{j+2}`` at party ``j + 1``. Both permute their part by
``pi_j`` and re-randomise with words ``R`` from their common key. The new
components are ``Y_j = r`` (words parties ``j`` and ``j + 2`` draw from their
common key), ``Y_{j+1} = pi_j(A) + R - r`` (party ``j`` sends it to ``j + 1``)
and ``Y_{j+2} = pi_j(B) - R`` (party ``j + 1`` sends it to ``j + 2``): they sum
to ``pi_j(X)``. Party ``j + 1`` receives a value masked by ``r``, party
``j + 2`` one masked by ``R``: both uniform to their receiver.
"""

from __future__ import annotations

import numpy as np

from fedsec.crypto.prg import permutation_of
from fedsec.errors import ProtocolError
from fedsec.mpc.ring import Ring
from fedsec.mpc.runtime import Runtime
from fedsec.mpc.shares import PARTIES, Shared


def _step(rt: Runtime, x: Shared, j: int) -> Shared:
    n, shape = x.shape[0], x.shape
    first, second, third = j, (j + 1) % PARTIES, (j + 2) % PARTIES
    rand = rt.randomness
    with np.errstate(over="ignore"):
        if rt.index == first:
            perm = permutation_of(rand.pair_random(second, (n,)))
            mask = rand.pair_random(second, shape)
            r = rand.pair_random(third, shape)
            y_next = np.asarray((x.a + x.b)[perm] + mask - r, dtype=np.uint64)
            rt.channel.exchange({second: y_next}, [])
            return Shared(r, y_next)
        if rt.index == second:
            perm = permutation_of(rand.pair_random(first, (n,)))
            mask = rand.pair_random(first, shape)
            y_last = np.asarray(x.b[perm] - mask, dtype=np.uint64)
            got = rt.channel.exchange({third: y_last}, [first])
            return Shared(_expect(got[first], shape, rt.index), y_last)
        r = rand.pair_random(first, shape)
        got = rt.channel.exchange({}, [second])
        return Shared(_expect(got[second], shape, rt.index), r)


def _expect(words: Ring, shape: tuple[int, ...], index: int) -> Ring:
    if words.dtype != np.uint64 or words.shape != shape:
        raise ProtocolError("malformed shuffle message", stage="shuffle", node_id=index)
    return words


def shuffle(rt: Runtime, x: Shared) -> Shared:
    """The rows of ``x`` in an order no single party knows. Three rounds."""
    if not x.shape or x.shape[0] == 0:
        raise ProtocolError("nothing to shuffle", stage="shuffle", node_id=rt.index)
    for j in range(PARTIES):
        x = _step(rt, x, j)
    return x
