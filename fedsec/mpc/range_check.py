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
   same round party 0 sends both parties a fresh 256-bit seed.
2. Every ``y`` is in {-1, 0} if and only if ``sum_k r_k y_k (y_k + 1) = 0``
   for random ``r`` (expanded from the seed, drawn after the inputs were
   fixed), tested with ``T`` independent vectors ``r``. The squares are
   local cross terms of the replicated shares; only the ``n x T`` sums are
   re-randomised and revealed. One round.

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


def check_ranges(rt: Runtime, x: Shared, bits: int) -> npt.NDArray[np.bool_]:
    """Which rows of ``x`` (clients by coordinates) have every ``|x| < 3 * 2^bits``.

    Two rounds; every party gets the same public verdicts. Rows that pass are
    also guaranteed ``sum_k x_k^2 < 9 d 4^bits`` exactly (no wrap-around).
    """
    if x.a.ndim != 2:
        raise ProtocolError("range check expects clients by coordinates", stage="range")
    n, d = x.shape
    m = bits + 1
    tests = num_tests(bits)
    # Round 1: a replicated sharing of y and a common seed. v = x + 2^l only
    # changes component 0, which party 0 adds into A; B = x_2 is unchanged.
    if rt.index == 0:
        out = np.empty(_SEED_WORDS + n * d, dtype=np.uint64)  # seed, then y0
        seed_words = out[:_SEED_WORDS]
        seed_words[:] = np.frombuffer(secrets.token_bytes(KEY_BYTES), np.uint64)
        rho = rt.randomness.pair_random(1, (n, d))
        y0 = out[_SEED_WORDS:].reshape(n, d)
        np.add(x.a, x.b, out=y0)
        y0 += np.uint64(1 << bits)
        _shift(y0, m)
        y0 -= rho
        rt.channel.exchange({1: seed_words, 2: out}, [])
        y = Shared(y0, rho)
    elif rt.index == 1:
        rho = rt.randomness.pair_random(0, (n, d))
        got = rt.channel.exchange({}, [0])[0]
        seed_words = _expect(got, _SEED_WORDS, rt.index)
        y = Shared(rho, _shift(x.b.copy(), m))
    else:
        got = rt.channel.exchange({}, [0])[0]
        _expect(got, _SEED_WORDS + n * d, rt.index)
        seed_words, y0 = got[:_SEED_WORDS], got[_SEED_WORDS:].reshape(n, d)
        y = Shared(_shift(x.a.copy(), m), y0)
    seed = np.ascontiguousarray(seed_words).tobytes()
    # Round 2: reveal sum_k r_k y_k (y_k + 1) for each client and test.
    # Local share of y^2 + y from (a, b) = (y_i, y_{i+1}): a (a + 2b + 1).
    with np.errstate(over="ignore"):
        z = np.add(y.b, y.b)
        z += y.a
        z += np.uint64(1)
        z *= y.a
        r = np.stack([keystream_words(seed, t, d) for t in range(tests)])
        mine = (_matmul_t(z, r) + rt.randomness.zero_share((n, tests))).ravel()
    sums = rt.channel.exchange({rt.prev: mine, rt.next: mine}, [rt.prev, rt.next])
    with np.errstate(over="ignore"):
        total = mine.copy()
        for p in (rt.prev, rt.next):
            total += _expect(sums[p], n * tests, rt.index)
    return np.asarray(~np.any(total.reshape(n, tests), axis=1), dtype=np.bool_)


def _shift(words: Ring, bits: int) -> Ring:
    """Arithmetic right shift of ring elements as signed words, in place."""
    signed = to_signed(words)
    np.right_shift(signed, bits, out=signed)
    return words


def _matmul_t(z: Ring, r: Ring) -> Ring:
    """``z @ r.T`` modulo 2^64, one test vector at a time."""
    out = np.empty((z.shape[0], r.shape[0]), dtype=np.uint64)
    for t in range(r.shape[0]):
        np.einsum("ij,j->i", z, r[t], out=out[:, t], dtype=np.uint64)
    return out


def _expect(words: Ring, size: int, index: int) -> Ring:
    if words.dtype != np.uint64 or words.ndim != 1 or words.size != size:
        raise ProtocolError(
            "malformed range-check message", stage="range", node_id=index
        )
    return words
