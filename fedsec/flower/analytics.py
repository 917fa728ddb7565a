"""How statistics requests travel in Flower messages (both sides agree).

Secure mode reuses the secure-aggregation stages (``query.secagg_*``) for
key set-up and unmasking; only the masked-input stage differs: its request
is a ``query.analytics_masked_input`` message whose content holds the
protocol's masked-input request under ``"secagg"``, the run config and the
schema's canonical JSON (key ``schema``) under ``"config"``, and an
:class:`AnalyticsRequest` under ``"analytics"``; the site masks its
statistics vector instead of a model update. Plain mode is one
``query.analytics_plain`` exchange whose reply carries the site's integers
in the clear under ``"statistics"`` (key ``values``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fedsec.analytics.noise import StatsNoise
from fedsec.errors import ConfigError, ProtocolError

ANALYTICS_RECORD = "analytics"
STATISTICS_RECORD = "statistics"
SCHEMA_KEY = "schema"
MASKED_ACTION = "analytics_masked_input"
PLAIN_ACTION = "analytics_plain"


def message_type(action: str) -> str:
    """``query.<action>``: how the server addresses a ClientApp query handler."""
    return f"query.{action}"


@dataclass(frozen=True)
class AnalyticsRequest:
    """The public parameters of one secure statistics round.

    ``summands`` is the number of sites asked (it sizes the digits of the
    ring, :mod:`fedsec.analytics.digits`), ``bits`` the ring's bits, and
    ``noise`` the distributed-DP noise each site adds.
    """

    summands: int
    bits: int
    noise: StatsNoise

    def to_config(self) -> dict[str, Any]:
        """Values for a ConfigRecord."""
        return {"summands": self.summands, "bits": self.bits, **self.noise.to_config()}

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> AnalyticsRequest:
        """Parse and check a request; a malformed one raises ``ProtocolError``."""
        summands, bits = _integer(config, "summands"), _integer(config, "bits")
        if summands < 1 or not 2 <= bits <= 32:
            raise ProtocolError("analytics request: summands or bits out of range")
        try:
            noise = StatsNoise.from_config(dict(config))
        except ConfigError as exc:
            raise ProtocolError(f"analytics request: {exc.reason}") from None
        return cls(summands, bits, noise)


def _integer(config: Mapping[str, object], key: str) -> int:
    value = config.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError(f"analytics request: {key} must be an integer")
    return value
