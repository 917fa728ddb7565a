"""The public terms of a clip-and-sum session, and a party's or site's check of them.

:class:`ClipSumConfig` holds what the three parties compute with (clipping
norm, weight bound, noise, encoding). The server proposes it; it binds nothing
by itself. Two things make it binding:

- every client binds the terms it agreed to into the header of each of its
  packages (:func:`terms_bytes`, authenticated by AES-GCM): a party running
  other terms than the site checked cannot open the site's package;
- every party and every site checks the terms against its own
  :class:`~fedsec.policy.SitePolicy` (:func:`require_terms`) before a share
  or an output share leaves it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from fedsec.errors import ConfigError, PolicyError
from fedsec.mpc.noise import party_noise_std
from fedsec.mpc.range_check import coordinate_bound
from fedsec.mpc.ring import FixedPoint
from fedsec.policy import SitePolicy

MODE = "mpc"  # the site-policy mode of the MPC clip-and-sum
_TERMS = struct.Struct("<BddIB")  # frac bits, clip norm, noise std, W_max, t


@dataclass(frozen=True)
class ClipSumConfig:
    """Public parameters all three parties agree on.

    Attributes
    ----------
    clip_norm
        C: every client's update is scaled to L2 norm at most C.
    max_weight
        W_max: weights are clamped to [0, W_max].
    noise_std
        sigma: standard deviation of the Gaussian noise no coalition of
        ``noise_colluders`` parties knows (0 disables noise).
    noise_colluders
        t in {0, 1, 2}; each party adds variance sigma^2 / (3 - t).
    frac_bits
        Fractional bits f of the fixed-point encoding. Limits: every
        coordinate below :meth:`coordinate_bound` (honest clients clamp to
        it; a client beyond three times it is left out) and
        ``n W_max C < 2^(63 - 2f)`` for the output.
    """

    clip_norm: float
    max_weight: int = 1
    noise_std: float = 0.0
    noise_colluders: int = 1
    frac_bits: int = 16

    def __post_init__(self) -> None:
        if not self.clip_norm > 0:
            raise ConfigError("clip_norm must be positive")
        if not 1 <= self.max_weight < 2**31:
            raise ConfigError("max_weight must be in [1, 2^31)")
        FixedPoint(self.frac_bits)  # validates f
        party_noise_std(self.noise_std, self.noise_colluders)

    @property
    def encoder(self) -> FixedPoint:
        """The fixed-point encoder these parameters imply."""
        return FixedPoint(self.frac_bits)

    @property
    def noise_multiplier(self) -> float | None:
        """``sigma / (W_max C)``: the noise over one client's sensitivity.

        ``None`` without noise. One client moves the released sum by at most
        ``W_max C`` (its clamped weight times its clipped norm).
        """
        if self.noise_std == 0:
            return None
        return self.noise_std / (self.max_weight * self.clip_norm)

    def coordinate_bound(self, dim: int) -> float:
        """Largest coordinate magnitude a client may send for a ``dim``-vector.

        Clients clamp their update to it before sharing
        (``client_share(..., clamp=...)``); see :mod:`fedsec.mpc.range_check`.
        """
        return coordinate_bound(dim, self.clip_norm, self.frac_bits)


def terms_bytes(config: ClipSumConfig) -> bytes:
    """The terms a client binds into its packages (AES-GCM associated data)."""
    return _TERMS.pack(
        config.frac_bits,
        config.clip_norm,
        config.noise_std,
        config.max_weight,
        config.noise_colluders,
    )


TERMS_SIZE = _TERMS.size


def require_terms(
    policy: SitePolicy,
    config: ClipSumConfig,
    *,
    local_dp: bool = False,
    node_id: int | None = None,
) -> None:
    """Refuse terms weaker than ``policy``: one :class:`PolicyError` naming the key.

    Checks, in order: ``mpc`` among the policy's modes, ``C <= max-clip-norm``,
    ``W_max <= max-weight``, and the noise (``require-dp``,
    ``min-noise-multiplier`` against :attr:`ClipSumConfig.noise_multiplier`).
    ``local_dp``: a site that trains with its own DP-SGD (whose noise
    multiplier it checks against the same floors) does not also need noise
    inside the MPC.
    """
    try:
        policy.require_mode(MODE)
        policy.require_clip(config.clip_norm)
        policy.require_weight(config.max_weight)
        if not local_dp:
            policy.require_dp_noise(config.noise_multiplier)
    except PolicyError as exc:
        raise PolicyError(
            exc.key, exc.value, exc.asked, stage="terms", node_id=node_id
        ) from None
