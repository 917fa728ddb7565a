"""Per-round parameters derived identically by clients and server."""

from __future__ import annotations

from fedsec.crypto.quantize import Quantizer
from fedsec.errors import ConfigError
from fedsec.secagg.config import SecAggConfig

WEIGHT_MODULUS = 1 << 32


def round_quantizer(config: SecAggConfig, num_participants: int) -> Quantizer:
    """Quantiser of a round with ``num_participants`` summands.

    Raises
    ------
    ConfigError
        If the ring cannot hold the sum (raise ``bits``) or the weights' sum
        could exceed 2^32.
    """
    if num_participants * config.max_weight >= WEIGHT_MODULUS:
        raise ConfigError("max_weight * participants must stay below 2^32")
    return Quantizer(config.clip, config.bits, config.max_weight, num_participants)
