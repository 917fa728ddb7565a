"""A secure sigmoid: a linear spline evaluated with exact comparisons on shares.

The logistic function is approximated by the piecewise-linear interpolation
of ``sigma`` at ten knots ``t = -6, -4, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 4, 6``,
held at exactly 0 below ``-6`` and 1 above ``6``. Maximum absolute error
against ``sigma``: 0.0111 (at ``|z|`` about 1; tests check <= 0.0112). This is
the ABY3 approach (Mohassel and Rindal, CCS 2018, section 5.3: a piecewise
polynomial selected by secure comparisons) with more pieces than its
three-piece ``max(0, min(1, z + 1/2))``, whose error is 0.12.

Written as a sum of ramps, ``f(z) = sum_k D_k relu(z - t_k)``, with integer
slope steps ``D_k`` at ``f`` fractional bits whose sum is exactly 0 (flat
above the last knot). On shares (:func:`secure_sigmoid`):

1. one bit decomposition of the ``K`` differences ``z - t_k`` gives the exact
   bits ``[z < t_k]`` (ABY3 A2B; no truncation, no error), injected as
   arithmetic bits (8 + 2 rounds);
2. ``relu_k = [z >= t_k] (z - t_k)``: one multiplication of a bit by a value
   (integer times fixed point: no truncation; 1 round);
3. ``sum_k D_k relu_k`` is local and lands at ``2f`` fractional bits.

Nothing is truncated, so the only error is the spline's. And because the
``D_k`` sum to zero *in the ring*, an input that is garbage (a failed
probabilistic truncation of ``z`` is off by about ``2^(64-2f)``) gives exactly
0 or 1: a bounded error in one residual, never a blow-up.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fedsec.mpc.arithmetic import add_public, mul
from fedsec.mpc.boolean import ltz
from fedsec.mpc.ring import FixedPoint
from fedsec.mpc.runtime import Runtime
from fedsec.mpc.shares import Shared, concat

KNOTS = (-6.0, -4.0, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 4.0, 6.0)
MAX_ERROR = 0.0112  # measured on a 1e-4 grid over [-20, 20]: 0.01106


def _values() -> npt.NDArray[np.float64]:
    t = np.asarray(KNOTS)
    v = 1.0 / (1.0 + np.exp(-t))
    v[0], v[-1] = 0.0, 1.0
    return np.asarray(v, dtype=np.float64)


def slope_steps(frac_bits: int) -> npt.NDArray[np.int64]:
    """Integer slope steps ``D_k`` at ``frac_bits``; they sum to exactly 0."""
    t, v = np.asarray(KNOTS), _values()
    slopes = np.append(np.diff(v) / np.diff(t), 0.0)
    steps = np.diff(np.concatenate([[0.0], slopes]))
    d = np.rint(steps[:-1] * 2.0**frac_bits).astype(np.int64)
    return np.append(d, -d.sum())


def spline(z: npt.ArrayLike, frac_bits: int) -> npt.NDArray[np.float64]:
    """The spline in float64, with the same rounded slopes as the secure one."""
    zz = np.asarray(z, dtype=np.float64)[..., None]
    ramps = np.maximum(zz - np.asarray(KNOTS), 0.0)
    return np.asarray(ramps @ (slope_steps(frac_bits) / 2.0**frac_bits))


def secure_sigmoid(rt: Runtime, z: Shared) -> Shared:
    """The spline of a 1-D shared ``z`` (``f`` bits), at ``2f`` bits. 11 rounds."""
    enc: FixedPoint = rt.encoder
    n = z.shape[0]
    diffs = [add_public(rt, z, enc.encode(-t)) for t in KNOTS]
    below = ltz(rt, concat(diffs))  # [z < t_k], stacked knot by knot
    above = add_public(rt, -below, 1)
    ramps = mul(rt, above, concat(diffs))  # relu(z - t_k), f bits
    d = slope_steps(enc.frac_bits).astype(np.uint64)
    a = ramps.a.reshape(len(KNOTS), n)
    b = ramps.b.reshape(len(KNOTS), n)
    return Shared(np.asarray(d @ a, np.uint64), np.asarray(d @ b, np.uint64))
