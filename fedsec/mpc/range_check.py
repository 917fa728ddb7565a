"""Per-coordinate range check: no client can make its squared norm wrap around.

Norms are computed in Z_2^64. Without a bound on the coordinates a client
could craft values whose squares wrap (one coordinate of 2^16 at ``f = 16``
contributes 2^64 = 0) and escape clipping. Before the norms, the parties
check that every coordinate of every client satisfies ``|x| < 3 * 2^l``
(encoded), with ``l`` public (:func:`coordinate_bits`) and small enough that
``d`` such coordinates cannot wrap the squared norm or the clipping ratio.

The check (two rounds, one message of the inputs' size):

1. ``v = x + 2^l``. Party 0 holds the components ``v_0, v_1`` and computes
   ``A = v_0 + v_1``; parties 1 and 2 both hold ``B = v_2``. Each shifts its
   part right by ``m = l + 1`` bits (signed), so ``y = (A >> m) + (B >> m)``
   is ``q - 1`` or ``q`` with ``q = floor((A + B) / 2^m)`` over the integers
   (SecureML's local truncation). Party 0 masks ``A >> m`` with words ``rho``
   it shares with party 1 and sends the difference to party 2:
   ``(A >> m - rho, rho, B >> m)`` is a replicated sharing of ``y``. In the
   same round party 0 sends both parties a fresh 256-bit seed, first; the
   difference follows in blocks of rows, each folded into party 2's test sums
   as it arrives (the round is streamed, so the parties' arithmetic and the
   transfer overlap).
2. Every ``y`` is in {-1, 0} if and only if ``sum_k r_k y_k (y_k + 1) = 0``
   for random ``r`` (expanded from the seed, drawn after the inputs were
   fixed), tested with ``T`` independent vectors ``r``. Each party forms an
   additive share of ``y (y + 1)`` from the components it holds
   (:func:`_test_sums`); only the ``n x T`` sums are re-randomised and
   revealed. One round.

*Completeness.* An honest client's ``0 <= v < 2^m`` gives ``q = 0`` unless
``A + B`` wraps, which for its uniform seed-expanded ``A`` has probability
about ``2^(m - 64)`` per coordinate (the ABY3 truncation failure).

*Soundness, whatever shares a client sends.* ``|A >> m| + |B >> m| <=
2^(64 - m)``, so ``y`` in {-1, 0} in the ring means ``q`` in {-1, 0, 1}: ``A +
B`` lies in ``[-2^m, 2^(m+1))`` without a wrap and ``|x| < 3 * 2^l``. A
coordinate with ``y`` outside {-1, 0} has ``y (y + 1) != 0`` of 2-adic
valuation at most ``64 - m``; a uniform ``r_k`` cancels it with probability
at most ``2^-m`` per test, so ``T = ceil(40 / m)`` tests miss it with
probability at most ``2^-40``.

*Privacy.* Party 2 receives ``A >> m - rho``, uniform to it; the revealed
sums are zero for every honest client.
"""

from __future__ import annotations

import math
import secrets

import numpy as np
import numpy.typing as npt

from fedsec.crypto.prg import KEY_BYTES, keystream_words
from fedsec.errors import ConfigError, ProtocolError
from fedsec.mpc.ring import Ring, to_signed
from fedsec.mpc.runtime import Runtime
from fedsec.mpc.scratch import Scratch
from fedsec.mpc.shares import Shared

STATISTICAL_SECURITY = 40
"""A cheating client's coordinate slips through with probability <= 2^-40."""

RATIO_BITS = 10
"""``1 / C^2`` is applied as an integer ``k >= 2^10`` (relative error < 2^-11)."""

_HEADROOM_BITS = 62  # sq * k stays below 2^62: positive, one bit to spare
_SEED_WORDS = KEY_BYTES // 8


def ratio(clip_norm: float, frac_bits: int) -> tuple[int, int]:
    """``(k, g)`` with ``k = round(2^g / C^2) >= 2^RATIO_BITS``.

    The clipping ratio ``u = ||x||^2 / C^2`` at ``f`` fractional bits is
    ``(sq * k) >> (f + g)`` for the squared norm ``sq`` at ``2f`` bits: one
    truncation, whose rare failure only makes ``u`` negative (the client is
    dropped) or larger (its update is scaled down further), never smaller.

    Raises
    ------
    ConfigError
        If ``C`` is so small that ``f + g < 1``.
    """
    g = math.ceil(RATIO_BITS + 2 * math.log2(clip_norm))
    if frac_bits + g < 1:
        raise ConfigError("clip_norm is too small for frac_bits")
    k = round(2.0**g / clip_norm**2)
    return max(k, 1), g


def coordinate_bits(dim: int, clip_norm: float, frac_bits: int) -> int:
    """The public ``l`` of the check: accepted coordinates satisfy ``|x| < 3 * 2^l``.

    The largest ``l`` with ``9 d 4^l k < 2^62``: ``d`` coordinates at the
    bound give a squared norm ``sq < 9 d 4^l`` and a ratio numerator
    ``sq * k`` (:func:`ratio`) that cannot wrap.

    Raises
    ------
    ConfigError
        If even ``l = 1`` does not fit (lower ``frac_bits``).
    """
    if dim < 1:
        raise ConfigError("dim must be positive")
    k, _ = ratio(clip_norm, frac_bits)
    bits = 0
    while 9 * dim * k * 4 ** (bits + 1) < 2**_HEADROOM_BITS:
        bits += 1
    if bits < 1:
        raise ConfigError(
            f"dim {dim} leaves no room for the norm at frac_bits {frac_bits}"
        )
    return bits


def coordinate_bound(dim: int, clip_norm: float, frac_bits: int) -> float:
    """Largest ``|x|`` (reals) an honest client sends: ``(2^l - 1) / 2^f``.

    Every coordinate within it passes :func:`check_ranges` (except with the
    truncation failure probability); clients clamp to it before sharing.
    """
    return float(2 ** coordinate_bits(dim, clip_norm, frac_bits) - 1) / 2.0**frac_bits


def num_tests(bits: int) -> int:
    """``T = ceil(40 / m)`` random linear tests for ``m = l + 1``."""
    return -(-STATISTICAL_SECURITY // (bits + 1))


def check_ranges(
    rt: Runtime, x: Shared, bits: int, *, scratch: Scratch | None = None
) -> npt.NDArray[np.bool_]:
    """Which rows of ``x`` (clients by coordinates) have every ``|x| < 3 * 2^bits``.

    Two rounds; every party gets the same public verdicts. Rows that pass are
    also guaranteed ``sum_k x_k^2 < 9 d 4^bits`` exactly (no wrap-around).
    ``scratch`` holds the ``(n, d)`` work arrays (a party passes its own, kept
    across sessions); the inputs are not modified.

    Round 1 is streamed: party 0 sends the seed first, then ``y0`` in blocks
    of rows as it computes them, and party 2 folds each block into its test
    sums as it arrives, so party 0's arithmetic, the transfer and party 2's
    arithmetic overlap instead of following one another.
    """
    if x.a.ndim != 2:
        raise ProtocolError("range check expects clients by coordinates", stage="range")
    n, d = x.shape
    m = bits + 1
    tests = num_tests(bits)
    buf = Scratch() if scratch is None else scratch
    blocks = _row_blocks(n, d)
    r = buf.take("range.tests", (tests, d))
    tmp = buf.take("range.slice", (2, min(d, _SLICE)))
    sums = np.zeros((n, tests), dtype=np.uint64)
    # Round 1: a replicated sharing of y and a common seed. v = x + 2^l only
    # changes component 0, which party 0 adds into A; B = x_2 is unchanged.
    if rt.index == 0:
        seed_words = np.frombuffer(secrets.token_bytes(KEY_BYTES), np.uint64)
        rt.channel.exchange({1: seed_words, 2: seed_words}, [])
        _test_vectors(seed_words, r)
        # Party 2 reads y0 only until it sends its sums in round 2, which this
        # party awaits: the buffer is free again before this call returns.
        y0 = buf.take("range.message", (n, d))
        rho = buf.take("range.pair", (n, d))
        for rows in blocks:
            rt.randomness.pair_random(1, rho[rows].shape, out=rho[rows])
            _masked_quotients(x.a[rows], x.b[rows], rho[rows], bits, y0[rows])
            rt.channel.exchange({2: y0[rows].reshape(-1)}, [], counts_round=False)
        # its own sums only once the stream is out: party 2 is the critical path
        _test_sums(0, y0, rho, r, tmp, sums)
    elif rt.index == 1:
        rho = buf.take("range.pair", (n, d))
        for rows in blocks:
            rt.randomness.pair_random(0, rho[rows].shape, out=rho[rows])
        own = _shifted(x.b, m, buf.take("range.own", (n, d)))
        got = rt.channel.exchange({}, [0])[0]
        _test_vectors(_expect(got, _SEED_WORDS, rt.index), r)
        _test_sums(1, rho, own, r, tmp, sums)
    else:
        own = _shifted(x.a, m, buf.take("range.own", (n, d)))
        got = rt.channel.exchange({}, [0])[0]
        _test_vectors(_expect(got, _SEED_WORDS, rt.index), r)
        for rows in blocks:
            got = rt.channel.exchange({}, [0], counts_round=False)[0]
            block = _expect(got, (rows.stop - rows.start) * d, rt.index)
            _test_sums(2, own[rows], block.reshape(-1, d), r, tmp, sums[rows])
    # Round 2: reveal sum_k r_k y_k (y_k + 1) for each client and test.
    with np.errstate(over="ignore"):
        mine = (sums + rt.randomness.zero_share((n, tests))).ravel()
    sums_from = rt.channel.exchange({rt.prev: mine, rt.next: mine}, [rt.prev, rt.next])
    with np.errstate(over="ignore"):
        total = mine.copy()
        for p in (rt.prev, rt.next):
            total += _expect(sums_from[p], n * tests, rt.index)
    return np.asarray(~np.any(total.reshape(n, tests), axis=1), dtype=np.bool_)


_BLOCK_WORDS = 1 << 17
"""Words of ``y0`` per streamed block (at least one row): 1 MiB."""


def _row_blocks(n: int, d: int) -> list[slice]:
    step = max(1, _BLOCK_WORDS // d)
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def _test_vectors(seed_words: Ring, r: Ring) -> None:
    """The ``T`` random test vectors ``r`` expanded from the common seed."""
    seed = np.ascontiguousarray(seed_words).tobytes()
    for t in range(r.shape[0]):
        keystream_words(seed, t, r.shape[1], out=r[t])


_SLICE = 1 << 15
"""Words of a row processed at once: the slices in use stay in the L2 cache."""


def _slices(d: int) -> list[slice]:
    return [slice(s, min(s + _SLICE, d)) for s in range(0, d, _SLICE)]


def _masked_quotients(x0: Ring, x1: Ring, rho: Ring, bits: int, out: Ring) -> None:
    """``out = ((x0 + x1 + 2^bits) >> (bits + 1)) - rho`` (party 0), in place."""
    offset, m = np.uint64(1 << bits), bits + 1
    for i in range(x0.shape[0]):
        for s in _slices(x0.shape[1]):
            o = out[i, s]
            np.add(x0[i, s], x1[i, s], out=o)
            o += offset
            np.right_shift(to_signed(o), m, out=to_signed(o))
            o -= rho[i, s]


def _shifted(words: Ring, bits: int, out: Ring) -> Ring:
    """Arithmetic right shift of ring elements as signed words, into ``out``."""
    np.right_shift(to_signed(words), bits, out=to_signed(out))
    return out


def _test_sums(index: int, ya: Ring, yb: Ring, r: Ring, tmp: Ring, sums: Ring) -> None:
    """Per row and test ``t``: ``sums[row, t] += sum_k r[t, k] z_k``.

    ``z`` is party ``index``'s additive share of ``y (y + 1)`` from its pair
    ``(a, b) = (c_i, c_{i+1})`` of the components ``y = c_0 + c_1 + c_2``
    (rows of ``ya`` and ``yb``); ``tmp`` is two slices of work space. Each
    cross term ``2 c_i c_j`` needs the one party that holds both; the
    squares and the linear terms may go to either holder, and go where the
    work is least on the critical path:

    * party 0 (it also computes and sends ``c_0``): ``c_0 (c_0 + 2 c_1 + 1)``;
    * party 1 (the least loaded): ``(c_1 + c_2) (c_1 + c_2 + 1)``, its cross
      term with both squares and both linear terms;
    * party 2 (it folds in ``c_0`` as the blocks arrive): ``2 c_2 c_0``.

    The three add up to ``y^2 + y``. ``z`` is formed one slice at a time and
    never stored whole.
    """
    n, d = ya.shape
    one = np.uint64(1)
    part = np.zeros((n, r.shape[0]), dtype=np.uint64)
    for i in range(n):
        a, b = ya[i], yb[i]
        for s in _slices(d):
            z, w = tmp[0, : s.stop - s.start], tmp[1, : s.stop - s.start]
            if index == 0:
                np.add(b[s], b[s], out=z)
                z += a[s]
                z += one
                z *= a[s]
            elif index == 1:
                np.add(a[s], b[s], out=z)
                np.add(z, one, out=w)
                z *= w
            else:
                np.multiply(a[s], b[s], out=z)
            part[i] += np.einsum("tj,j->t", r[:, s], z)
    if index == 2:
        part += part
    sums += part


def _expect(words: Ring, size: int, index: int) -> Ring:
    """``words`` if it is a flat ``uint64`` message of ``size`` words."""
    if words.dtype != np.uint64 or words.ndim != 1 or words.size != size:
        raise ProtocolError(
            "malformed range-check message", stage="range", node_id=index
        )
    return words
