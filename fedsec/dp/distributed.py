"""Distributed differential privacy inside a secure sum.

Follows Kairouz, Liu and Steinke, "The Distributed Discrete Gaussian Mechanism
for Federated Learning with Secure Aggregation" (ICML 2021, *DDGauss*) and
Agarwal, Kairouz and Liu, "The Skellam Mechanism for Differentially Private
Federated Learning" (NeurIPS 2021). Each client turns its float update into a
vector over the ring ``Z_{2^k}`` that already carries its share of the noise,
so the server, which only learns the secure sum, never sees a noise-free value.

Client, :func:`encode` (one flat ``float32``/``float64`` update of length ``dim``):

1. clip to L2 norm ``C``;
2. rotate with the public randomised Walsh–Hadamard transform (zero-padded to
   ``d' = padded_dim(dim)``), which flattens the vector;
3. scale by ``1 / gamma``;
4. *conditional* randomised rounding: round each coordinate up with
   probability equal to its fractional part, and retry until the rounded
   vector's L2 norm is at most :meth:`DistributedDPParams.rounded_norm_bound`
   (DDGauss, Theorem 1), which bounds the sensitivity of the integer sum;
5. add integer noise, discrete Gaussian or Skellam, of per-client variance
   ``sigma_central^2 / t`` (in the scaled units), where
   ``sigma_central = z C / gamma`` is the target central noise and ``t`` the
   fewest clients whose noise can be in a released sum;
6. reduce modulo ``2^k``.

Server, :func:`decode` (the ring sum of the survivors' vectors): centre into
``[-2^{k-1}, 2^{k-1})``, multiply by ``gamma``, invert the rotation, drop the
padding, divide by the given denominator.

Contract with the secure sum (``fedsec.secagg``): :func:`encode` returns a
``numpy.uint64`` vector of length ``d'`` with every entry in ``[0, 2^k)``. The
secure sum must return the coordinate-wise sum **modulo 2^k** of the encoded
vectors of the surviving clients, as integers (any unsigned dtype of at least
``k`` bits); summing ``uint64`` arrays with natural wrap-around and masking
with ``2^k - 1`` is correct for every ``k <= 64``. The secure sum must not
re-quantise these vectors: they are already integers.

Dropouts: the sum of ``s`` survivors' noise has variance
``s sigma_central^2 / t``: at least the target when ``s >= t``, less when
fewer survive. ``t`` is the number of survivors the noise is calibrated for
(not the worst case the secure-aggregation threshold allows, which would add
``sqrt(n / t)`` times too much noise when all survive);
:meth:`DistributedDPParams.effective_noise_multiplier` of the actual survivors
is what the server accounts, and each site refuses to unmask a sum whose
noise is below its own policy.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from fedsec.dp.clipping import clip_l2
from fedsec.dp.rotation import padded_dim, rotate, unrotate
from fedsec.dp.samplers import discrete_gaussian, skellam
from fedsec.dp.source import CryptoRandom
from fedsec.errors import ConfigError, DataError

__all__ = [
    "DistributedDPParams",
    "NoiseMechanism",
    "decode",
    "encode",
    "ring_bits_needed",
    "ring_sum",
]

_MAX_ROUNDING_TRIES = 1_000
_MAX_SCALED_CLIP_BITS = 24  # C / gamma <= 2^24: see DistributedDPParams.gamma


class NoiseMechanism(enum.Enum):
    """The integer noise added by each client."""

    DISCRETE_GAUSSIAN = "discrete_gaussian"
    SKELLAM = "skellam"

    @classmethod
    def parse(cls, name: str | NoiseMechanism) -> NoiseMechanism:
        """Return the mechanism called ``name`` (``"dgauss"`` is accepted too)."""
        if isinstance(name, NoiseMechanism):
            return name
        if name == "dgauss":  # the short name used in fedsec.config
            return cls.DISCRETE_GAUSSIAN
        try:
            return cls(name)
        except ValueError:
            known = ", ".join(m.value for m in cls)
            raise ConfigError(
                f"unknown noise mechanism {name!r}; known: {known}"
            ) from None


def _signal_and_noise_sq(
    dim_padded: int,
    clip_norm: float,
    noise_multiplier: float,
    num_clients: int,
    min_survivors: int,
) -> float:
    """Variance of one coordinate of the rotated sum (original units), less rounding.

    Worst case for the signal: all ``n`` updates aligned, so the rotated sum has
    coordinates of variance ``n^2 C^2 / d'`` (DDGauss, Eq. 61); noise adds
    ``n (z C)^2 / t``.
    """
    n = num_clients
    return (clip_norm * n) ** 2 / dim_padded + n * (
        noise_multiplier * clip_norm
    ) ** 2 / min_survivors


@dataclass(frozen=True)
class DistributedDPParams:
    """Public parameters of one distributed-DP aggregation, identical at every party.

    Parameters
    ----------
    dim
        Length of the flat update vector.
    clip_norm
        L2 clipping bound ``C`` of one client's update.
    noise_multiplier
        ``z``: the target central noise on the sum has standard deviation
        ``z * C`` per coordinate (before rounding effects; the privacy
        accountant must use :meth:`effective_noise_multiplier`).
    num_clients
        ``n``: the most clients whose vectors enter one sum.
    min_survivors
        ``t``: the number of surviving clients whose noise together reaches
        the target; each client adds ``1/t`` of the target variance. Calibrate
        to the survivors expected (the server's ``dp-survivor-fraction`` of
        the sampled sites); a sum of fewer carries less noise, which the
        accountant reports and each site's policy bounds.
    ring_bits
        ``k``: the sum lives in ``Z_{2^k}``, ``2 <= k <= 64``.
    mechanism
        Discrete Gaussian or Skellam noise.
    k_stds
        Head-room, in standard deviations, of the ring range over the sum.
    beta
        Conditional-rounding parameter in ``(0, 1)``; each rounding attempt is
        rejected with probability at most ``beta`` (DDGauss uses ``e^{-1/2}``).
    granularity
        ``gamma``; ``None`` derives it from ``ring_bits`` (see :meth:`gamma`).
    """

    dim: int
    clip_norm: float
    noise_multiplier: float
    num_clients: int
    min_survivors: int
    ring_bits: int = 32
    mechanism: NoiseMechanism = NoiseMechanism.DISCRETE_GAUSSIAN
    k_stds: float = 4.0
    beta: float = math.exp(-0.5)
    granularity: float | None = None

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise ConfigError(f"dim must be positive, got {self.dim}")
        if not math.isfinite(self.clip_norm) or self.clip_norm <= 0:
            raise ConfigError("clip_norm must be positive and finite")
        if not math.isfinite(self.noise_multiplier) or self.noise_multiplier <= 0:
            raise ConfigError("noise_multiplier must be positive and finite")
        if not 1 <= self.min_survivors <= self.num_clients:
            raise ConfigError("need 1 <= min_survivors <= num_clients")
        if not 2 <= self.ring_bits <= 64:
            raise ConfigError("ring_bits must be between 2 and 64")
        if not self.k_stds > 0 or not 0 < self.beta < 1:
            raise ConfigError("k_stds must be positive and beta in (0, 1)")
        if self.granularity is not None and not (
            math.isfinite(self.granularity) and self.granularity > 0
        ):
            raise ConfigError("granularity must be positive and finite")
        object.__setattr__(self, "mechanism", NoiseMechanism.parse(self.mechanism))
        if (self.k_stds / 2.0) ** 2 * self.num_clients >= 4.0 ** (self.ring_bits - 1):
            raise ConfigError("ring_bits is too small for this many clients")

    def to_config(self) -> dict[str, int | float | str]:
        """Flat scalars, e.g. for a Flower ``ConfigRecord``; see :meth:`from_config`."""
        return {
            "dim": self.dim,
            "clip_norm": self.clip_norm,
            "noise_multiplier": self.noise_multiplier,
            "num_clients": self.num_clients,
            "min_survivors": self.min_survivors,
            "ring_bits": self.ring_bits,
            "mechanism": self.mechanism.value,
            "k_stds": self.k_stds,
            "beta": self.beta,
            "granularity": self.gamma,  # pinned: every party uses the same grid
        }

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> DistributedDPParams:
        """Parse :meth:`to_config`'s output; raise ``ConfigError`` if malformed."""
        ints = ("dim", "num_clients", "min_survivors", "ring_bits")
        floats = ("clip_norm", "noise_multiplier", "k_stds", "beta", "granularity")
        try:
            values: dict[str, Any] = {k: config[k] for k in (*ints, *floats)}
            mechanism = config["mechanism"]
        except KeyError as exc:
            raise ConfigError(f"distributed-DP config lacks {exc.args[0]!r}") from None
        for k in ints:
            if isinstance(values[k], bool) or not isinstance(values[k], int):
                raise ConfigError(f"distributed-DP config: {k} must be an integer")
        for k in floats:
            if isinstance(values[k], bool) or not isinstance(values[k], int | float):
                raise ConfigError(f"distributed-DP config: {k} must be a number")
            values[k] = float(values[k])
        if not isinstance(mechanism, str):
            raise ConfigError("distributed-DP config: mechanism must be a string")
        return cls(mechanism=NoiseMechanism.parse(mechanism), **values)

    @property
    def padded_dim(self) -> int:
        """``d'``: the encoded length, the next power of two ``>= dim``."""
        return padded_dim(self.dim)

    @property
    def modulus(self) -> int:
        """``2^k``."""
        return 1 << self.ring_bits

    @property
    def gamma(self) -> float:
        """The quantisation step ``gamma`` (original units per integer step).

        Unless given, the smallest ``gamma`` such that ``k_stds`` standard
        deviations of one coordinate of the sum (signal, rounding ``gamma^2/4``
        per client, noise) fit in ``[-2^{k-1}, 2^{k-1})`` (DDGauss, Eq. 61):
        ``(2^{k-1} gamma / k_stds)^2 = n^2 C^2 / d' + n gamma^2 / 4 + n z^2 C^2 / t``,
        but never below ``C / 2^24``. A finer grid buys nothing (its rounding
        variance, ``gamma^2 / 4`` per coordinate, is already ``2^-50`` of
        ``C^2``), would outrun float64 in the rotation and the norm check, and
        would push Skellam means past the sampler's range; the remaining ring
        bits are left as head-room.
        """
        if self.granularity is not None:
            return self.granularity
        floor = self.clip_norm * 2.0**-_MAX_SCALED_CLIP_BITS
        num = _signal_and_noise_sq(
            self.padded_dim,
            self.clip_norm,
            self.noise_multiplier,
            self.num_clients,
            self.min_survivors,
        )
        den = 4.0 ** (self.ring_bits - 1) / self.k_stds**2 - self.num_clients / 4.0
        return max(math.sqrt(num / den), floor)

    @property
    def scaled_clip(self) -> float:
        """``C / gamma``: the clipping bound in integer units."""
        return self.clip_norm / self.gamma

    @property
    def rounded_norm_bound(self) -> float:
        """Bound on the L2 norm of a rounded vector (DDGauss, Theorem 1).

        ``min(c^2 + d'/4 + sqrt(2 log(1/beta)) (c + sqrt(d')/2), (c + sqrt(d'))^2)``
        under the square root, with ``c = C / gamma``; conditional rounding
        enforces it, so it is the L2 sensitivity of the integer sum.
        """
        c = self.scaled_clip
        d = float(self.padded_dim)
        conditional = (
            c * c
            + d / 4.0
            + math.sqrt(2.0 * math.log(1.0 / self.beta)) * (c + math.sqrt(d) / 2.0)
        )
        return math.sqrt(min(conditional, (c + math.sqrt(d)) ** 2))

    @property
    def client_variance(self) -> float:
        """Per-client noise variance in integer units: ``(z C / gamma)^2 / t``."""
        return (self.noise_multiplier * self.scaled_clip) ** 2 / self.min_survivors

    @property
    def client_noise_std(self) -> float:
        """Per-client noise standard deviation in original units: ``z C / sqrt(t)``."""
        return self.noise_multiplier * self.clip_norm / math.sqrt(self.min_survivors)

    def effective_noise_multiplier(self, survivors: int | None = None) -> float:
        """The Gaussian noise multiplier whose RDP curve dominates this mechanism.

        ``survivors`` is the number ``s`` of clients whose vectors are in the
        released sum (default ``t = min_survivors``): every client adds the
        variance calibrated for ``t``, so ``s`` clients carry ``s / t`` of the
        target variance, and ``z_eff`` grows or shrinks with ``sqrt(s / t)``.
        A site refuses to unmask a sum whose ``z_eff`` is below its policy.

        For every order ``alpha >= 1`` the released sum of ``s`` clients
        satisfies ``(alpha, alpha / (2 z_eff^2))``-RDP with respect to adding
        or removing one client, with sensitivity ``Delta_2 =
        rounded_norm_bound`` and ``Delta_1 <= min(Delta_2^2, sqrt(d') Delta_2)``:

        * discrete Gaussian (DDGauss, Theorem 1 / Proposition 14):
          ``alpha Delta_2^2 / (2 t sigma^2) + tau d'``, with
          ``tau = 10 sum_{k=1}^{n-1} exp(-2 pi^2 sigma^2 k / (k+1))``, so
          ``1 / z_eff^2 = Delta_2^2 / (t sigma^2) + 2 tau d'``;
        * Skellam (Agarwal et al., Theorem 3.5) with total variance
          ``V = t sigma^2``: ``alpha Delta_2^2 / (2V) + min(((2 alpha - 1)
          Delta_2^2 + 6 Delta_1) / (4 V^2), 3 Delta_1 / (2V))``, which is at
          most ``alpha (Delta_2^2 / (2V) + (2 Delta_2^2 + 6 Delta_1) / (4 V^2))``,
          so ``1 / z_eff^2 = Delta_2^2 / V + (Delta_2^2 + 3 Delta_1) / V^2``.

        Both bounds are rigorous for full participation (``sample_rate = 1``);
        with client sampling, feeding ``z_eff`` to the subsampled-Gaussian
        accountant is an approximation (see ``docs/dp.md``).
        """
        count = self.min_survivors if survivors is None else survivors
        if count < 1:
            raise ConfigError("a released sum has at least one client")
        sens = self.rounded_norm_bound
        total = count * self.client_variance
        if self.mechanism is NoiseMechanism.DISCRETE_GAUSSIAN:
            k = np.arange(1, self.num_clients, dtype=np.float64)
            tau = 10.0 * float(
                np.sum(np.exp(-2.0 * math.pi**2 * self.client_variance * k / (k + 1.0)))
            )
            inv_sq = sens**2 / total + 2.0 * tau * self.padded_dim
        else:
            l1 = min(sens**2, math.sqrt(self.padded_dim) * sens)
            inv_sq = sens**2 / total + (sens**2 + 3.0 * l1) / total**2
        return 1.0 / math.sqrt(inv_sq)

    def calibrated(self, target_noise_multiplier: float) -> DistributedDPParams:
        """Return a copy whose effective noise multiplier is at least the target.

        Use it after :func:`fedsec.dp.accounting.noise_multiplier_for` to absorb
        the rounding and discreteness loss into a slightly larger ``z``.
        """
        if not target_noise_multiplier > 0:
            raise ConfigError("the target noise multiplier must be positive")
        params = replace(self, noise_multiplier=target_noise_multiplier)
        for _ in range(100):
            z_eff = params.effective_noise_multiplier()
            if z_eff >= target_noise_multiplier:
                return params
            bump = params.noise_multiplier * (target_noise_multiplier / z_eff)
            params = replace(params, noise_multiplier=bump * (1.0 + 1e-9))
        raise ConfigError("cannot reach the target noise multiplier: raise ring_bits")


def ring_bits_needed(
    *,
    dim: int,
    clip_norm: float,
    noise_multiplier: float,
    num_clients: int,
    min_survivors: int,
    granularity: float,
    k_stds: float = 4.0,
) -> int:
    """Return the fewest ring bits ``k`` holding the sum at step ``granularity``.

    The inverse of :attr:`DistributedDPParams.gamma`: the smallest ``k`` with
    ``2^{k-1} >= k_stds sqrt(n^2 C^2 / d' + n gamma^2 / 4 + n z^2 C^2 / t) / gamma``.
    """
    if not granularity > 0:
        raise ConfigError("granularity must be positive")
    var = _signal_and_noise_sq(
        padded_dim(dim), clip_norm, noise_multiplier, num_clients, min_survivors
    )
    var += num_clients * granularity**2 / 4.0
    half_range = k_stds * math.sqrt(var) / granularity
    # the tolerance absorbs float error when ``granularity`` came from ``gamma``
    bits = 1 + max(1, math.ceil(math.log2(max(half_range, 1.0)) - 1e-9))
    if bits > 64:
        raise ConfigError("the sum needs more than 64 bits at this granularity")
    return bits


def _conditional_round(
    x: npt.NDArray[np.float64], bound: float, rng: CryptoRandom
) -> npt.NDArray[np.int64]:
    """Randomised rounding of ``x``, retried until the L2 norm is at most ``bound``.

    The squared norm is computed as ``||x||^2 + sum((r - x)(r + x))``, whose
    second term involves only the small rounding offsets, and compared with a
    bound shrunk by ``2^-40``: with ``||x|| <= 2^24`` the float64 error is far
    below that margin, so an accepted vector's exact norm is within the bound.
    """
    floor = np.floor(x)
    frac = x - floor
    x_sq = float(np.dot(x, x))
    limit = bound * bound * (1.0 - 2.0**-40)
    for _ in range(_MAX_ROUNDING_TRIES):
        rounded = floor + (rng.uniform(x.size) < frac)
        if x_sq + float(np.dot(rounded - x, rounded + x)) <= limit:
            return rounded.astype(np.int64)
    raise ConfigError("conditional rounding keeps failing: beta is too small")


def encode(
    update: npt.ArrayLike,
    params: DistributedDPParams,
    rotation_seed: bytes,
    rng: CryptoRandom | None = None,
) -> npt.NDArray[np.uint64]:
    """Clip, rotate, scale, round, noise and wrap one client's update.

    Parameters
    ----------
    update
        Flat float vector of length ``params.dim``.
    params
        The public parameters, the same at every client and the server.
    rotation_seed
        The round's public 32-byte rotation seed.
    rng
        Source of the rounding coins and the noise; a fresh unseeded
        :class:`CryptoRandom` by default. Never pass a seeded source in
        production: a known seed lets the server remove the noise.

    Returns
    -------
    numpy.ndarray
        ``uint64`` vector of length ``params.padded_dim``, entries in
        ``[0, 2^k)``, ready for a secure sum modulo ``2^k``.
    """
    x = np.asarray(update)
    if x.ndim != 1 or x.shape[0] != params.dim:
        raise DataError(f"expected a flat update of length {params.dim}")
    source = CryptoRandom() if rng is None else rng
    scaled = rotate(clip_l2(x, params.clip_norm), rotation_seed) / params.gamma
    rounded = _conditional_round(scaled, params.rounded_norm_bound, source)
    if params.mechanism is NoiseMechanism.DISCRETE_GAUSSIAN:
        noise = discrete_gaussian(
            math.sqrt(params.client_variance), rounded.size, source
        )
    else:
        noise = skellam(params.client_variance, rounded.size, source)
    mask = np.uint64(params.modulus - 1)
    return (rounded + noise).astype(np.uint64) & mask


def ring_sum(vectors: npt.ArrayLike, ring_bits: int) -> npt.NDArray[np.uint64]:
    """Sum encoded vectors (rows) modulo ``2^ring_bits``: the plaintext reference."""
    arr = np.asarray(vectors, dtype=np.uint64)
    if arr.ndim != 2:
        raise DataError("expected a 2-D array with one encoded vector per row")
    total: npt.NDArray[np.uint64] = arr.sum(axis=0, dtype=np.uint64)  # mod 2^64
    return np.bitwise_and(total, np.uint64((1 << ring_bits) - 1))


def decode(
    ring_total: npt.ArrayLike,
    params: DistributedDPParams,
    rotation_seed: bytes,
    denominator: float,
) -> npt.NDArray[np.float64]:
    """Turn the secure sum back into an average update.

    Parameters
    ----------
    ring_total
        The coordinate-wise sum modulo ``2^k`` of the survivors' encoded
        vectors, length ``params.padded_dim`` (any integer dtype; reduced
        modulo ``2^k`` here).
    params
        The public parameters used to encode.
    rotation_seed
        The public rotation seed used to encode.
    denominator
        What the sum is divided by: the number of survivors, their total
        weight, or a fixed expected count under client sampling.

    Returns
    -------
    numpy.ndarray
        ``float64`` vector of length ``params.dim``: ``gamma`` times the centred
        sum, rotated back, divided by ``denominator``.
    """
    if not denominator > 0:
        raise ConfigError("the denominator must be positive")
    arr = np.asarray(ring_total)
    if arr.shape != (params.padded_dim,):
        raise DataError(f"expected a ring sum of length {params.padded_dim}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise DataError("the ring sum must be an integer vector")
    wrapped = arr.astype(np.uint64) & np.uint64(params.modulus - 1)
    if params.ring_bits == 64:
        centred = wrapped.view(np.int64).astype(np.float64)
    else:
        half = np.uint64(1 << (params.ring_bits - 1))
        # x - 2^k for the upper half, in uint64 arithmetic (2^63 is no int64)
        low = (wrapped - np.uint64(params.modulus)).view(np.int64)
        centred = np.where(wrapped >= half, low, wrapped.view(np.int64)).astype(
            np.float64
        )
    return unrotate(centred * params.gamma, rotation_seed, params.dim) / denominator
