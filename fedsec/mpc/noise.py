"""Gaussian noise shares for central differential privacy, drawn inside the MPC.

Every party adds to its additive output share an independent Gaussian vector
from its own CSPRNG: :func:`fedsec.dp.samplers.gaussian` (Box-Muller) on a
fresh :class:`~fedsec.dp.source.CryptoRandom` keyed from ``os.urandom``, the
sampler every DP mode uses. The released sum carries the sum of the three
vectors. If up to ``t`` parties may collude with whoever sees the output,
they can subtract their own noise, so each party draws variance
``sigma^2 / (3 - t)``: the noise no coalition of ``t`` parties knows has
variance at least ``sigma^2``, while the total has ``3 sigma^2 / (3 - t)``
(1.5 sigma^2 for ``t = 1``).

The samples are rounded to the output's fixed-point grid (``2f`` fractional
bits). Floating-point Gaussian samplers leak through their low-order bits
(Mironov, CCS 2012); at ``2^-32`` resolution this is the usual caveat, and a
discrete Gaussian sampler is the fix if it matters.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fedsec.dp import samplers
from fedsec.dp.source import CryptoRandom
from fedsec.errors import ConfigError
from fedsec.mpc.shares import PARTIES


def party_noise_std(total_std: float, colluders: int) -> float:
    """Per-party standard deviation so that honest noise has ``total_std``."""
    if not 0 <= colluders < PARTIES:
        raise ConfigError(f"colluders must be in [0, {PARTIES - 1}], got {colluders}")
    if total_std < 0:
        raise ConfigError("noise standard deviation must be non-negative")
    return float(total_std / np.sqrt(PARTIES - colluders))


def gaussian(std: float, size: int) -> npt.NDArray[np.float64]:
    """``size`` independent N(0, std^2) samples from a fresh CSPRNG key."""
    return samplers.gaussian(std, size, CryptoRandom())
