"""Distributed DP for the federation's statistics: discrete noise inside the sum.

Adding or removing one row changes at most ``m = layout.touched``
quantities, quantity ``i`` by at most its sensitivity ``s_i`` (1 for a
count, ``2^f`` for a sum, ``2^2f`` for a sum of squares). Dividing each
quantity by its sensitivity gives a vector of L2 sensitivity ``sqrt(m)``;
noise of standard deviation ``z · sqrt(m) · s_i`` on quantity ``i`` is then
the Gaussian mechanism with noise multiplier ``z`` on the whole release.

Each site adds discrete Gaussian noise (Canonne, Kamath, Steinke 2020; drawn
from :class:`~fedsec.dp.source.CryptoRandom`, a secret the site alone holds)
of variance ``(z · sqrt(m) · s_i)² / e`` (standard deviation at least
:data:`MIN_SITE_SIGMA`, which only adds noise), where ``e`` is the number of sites
expected to survive; ``s`` survivors carry ``z_eff = z · sqrt(s / e)``, and
a site counts only the survivors not colluding with the server
(``policy-colluders``) against its ``policy-min-noise-multiplier``. The sum
of discrete Gaussians is accounted as a Gaussian of the same variance: the
gap to the exact bound for sums of discrete Gaussians (Kairouz, Liu, Steinke,
ICML 2021, Theorem 1) adds ``τ d`` to the RDP ε with ``τ <= 10 n
exp(-π² σ²)``, below 1e-60 at the ``σ >= 4`` integer units each site adds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fedsec.dp.samplers import discrete_gaussian
from fedsec.dp.source import CryptoRandom
from fedsec.errors import ConfigError

if TYPE_CHECKING:
    from fedsec.analytics.layout import Layout

# a site's noise never exceeds TAILS standard deviations in the digit layout:
# P(|N(0, σ²)| > 40 σ) < 1e-300
TAILS = 40
MIN_SITE_SIGMA = 4.0


@dataclass(frozen=True)
class StatsNoise:
    """Public noise parameters of one statistics round.

    ``noise_multiplier`` is ``z`` for ``expected`` survivors; 0 means no noise.
    """

    noise_multiplier: float = 0.0
    expected: int = 1

    def __post_init__(self) -> None:
        if not (math.isfinite(self.noise_multiplier) and self.noise_multiplier >= 0):
            raise ConfigError("the statistics' noise multiplier must be finite, >= 0")
        if self.expected < 1:
            raise ConfigError("at least one site is expected to survive")

    @property
    def enabled(self) -> bool:
        """True if the sites add noise."""
        return self.noise_multiplier > 0

    def site_sigmas(self, layout: Layout) -> npt.NDArray[np.float64]:
        """Each quantity's noise scale at one site (integer units)."""
        if not self.enabled:
            return np.zeros(len(layout))
        per_row = self.noise_multiplier * math.sqrt(layout.touched / self.expected)
        sens = np.array([float(q.sensitivity) for q in layout.quantities])
        return np.maximum(per_row * sens, MIN_SITE_SIGMA)

    def margins(self, layout: Layout) -> list[int]:
        """How far one site's noise can move each quantity (for the digit layout)."""
        return [math.ceil(TAILS * s) for s in self.site_sigmas(layout)]

    def sample(
        self, layout: Layout, rng: CryptoRandom | None = None
    ) -> npt.NDArray[np.int64]:
        """One site's noise vector (fresh secret randomness unless ``rng`` is given)."""
        sigmas = self.site_sigmas(layout)
        out = np.zeros(len(layout), dtype=np.int64)
        if not self.enabled:
            return out
        rng = rng or CryptoRandom()
        for sigma in np.unique(sigmas):
            where = np.flatnonzero(sigmas == sigma)
            out[where] = discrete_gaussian(float(sigma), where.size, rng)
        return out

    def effective(self, survivors: int) -> float:
        """``z_eff`` of a sum over ``survivors`` noisy inputs (0 without noise)."""
        if survivors < 1 or not self.enabled:
            return 0.0
        return self.noise_multiplier * math.sqrt(survivors / self.expected)

    def to_config(self) -> dict[str, Any]:
        """For the request's ConfigRecord."""
        return {"noise-multiplier": self.noise_multiplier, "expected": self.expected}

    @classmethod
    def from_config(cls, config: dict[str, object]) -> StatsNoise:
        """Parse what :meth:`to_config` wrote."""
        z, e = config.get("noise-multiplier", 0.0), config.get("expected", 1)
        if isinstance(z, bool) or not isinstance(z, int | float):
            raise ConfigError("noise-multiplier must be a number")
        if isinstance(e, bool) or not isinstance(e, int):
            raise ConfigError("expected must be an integer")
        return cls(float(z), e)


def magnitudes(layout: Layout, noise: StatsNoise) -> list[int]:
    """The largest ``|v|`` a site's (noised) quantity can take."""
    margins = noise.margins(layout)
    return [q.bound + m for q, m in zip(layout.quantities, margins, strict=True)]
