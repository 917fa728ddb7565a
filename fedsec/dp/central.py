"""Central differential privacy with a trusted server.

The Gaussian mechanism on the clipped sum, as in DP-FedAvg (McMahan, Ramage,
Talwar and Zhang, "Learning Differentially Private Recurrent Language Models",
ICLR 2018): the server clips each client's update to L2 norm ``C``, sums,
adds ``N(0, (z C)^2 I)`` drawn from a :class:`~fedsec.dp.source.CryptoRandom`,
and divides by the denominator. Adding or removing one client moves the sum
by at most ``C``, so one round is a Gaussian mechanism of noise multiplier
``z``; with clients sampled at rate ``q`` it is accounted by
:mod:`fedsec.dp.accounting` with ``sample_rate = q`` — the same accountant as
the distributed mode, which makes the two comparable.

The server sees every individual update: this mode protects the released
model, not the updates in transit. Use it as the reference for the
distributed mode, whose noise is the same in law.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from fedsec.dp.clipping import clip_rows_l2
from fedsec.dp.samplers import gaussian
from fedsec.dp.source import CryptoRandom
from fedsec.errors import ConfigError

__all__ = ["central_aggregate"]


def central_aggregate(
    updates: npt.ArrayLike,
    *,
    clip_norm: float,
    noise_multiplier: float,
    denominator: float | None = None,
    rng: CryptoRandom | None = None,
) -> npt.NDArray[np.float64]:
    """Clip each update, sum, add Gaussian noise ``z C``, divide.

    Parameters
    ----------
    updates
        ``(n, d)`` array, one flat update per row.
    clip_norm
        ``C``.
    noise_multiplier
        ``z``: the noise on the sum has standard deviation ``z C`` per
        coordinate, so on the average it is ``z C / denominator``.
    denominator
        Divide the noisy sum by this; ``None`` means the number of rows. Under
        client sampling pass the *expected* count ``q N``: a data-dependent
        count would change the sensitivity.
    rng
        Noise source; a fresh unseeded :class:`CryptoRandom` by default.

    Returns
    -------
    numpy.ndarray
        The noisy average, ``float64`` of length ``d``.
    """
    if not math.isfinite(noise_multiplier) or noise_multiplier < 0:
        raise ConfigError("noise_multiplier must be non-negative and finite")
    clipped = clip_rows_l2(updates, clip_norm)
    n, d = clipped.shape
    denom = float(n) if denominator is None else float(denominator)
    if not denom > 0:
        raise ConfigError("the denominator must be positive")
    source = CryptoRandom() if rng is None else rng
    total: npt.NDArray[np.float64] = clipped.sum(axis=0)
    total += gaussian(noise_multiplier * clip_norm, d, source)
    return total / denom
