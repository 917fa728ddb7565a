"""One party's MPC runtime: its index and the three objects it depends on.

CrypTen's layering (encoder, shared tensor, communicator, correlated-randomness
provider) with each dependency passed in explicitly instead of being looked
up from a global.
"""

from __future__ import annotations

from dataclasses import dataclass

from fedsec.errors import ConfigError
from fedsec.mpc.channel import Channel
from fedsec.mpc.correlated import CorrelatedRandomness
from fedsec.mpc.ring import FixedPoint
from fedsec.mpc.shares import PARTIES, nxt, prv


@dataclass
class Runtime:
    """Everything a protocol needs to run at party ``index``.

    Attributes
    ----------
    index
        This party's index in {0, 1, 2}.
    channel
        Its endpoint to the other parties.
    randomness
        Its correlated-randomness provider.
    encoder
        The fixed-point encoding all parties agreed on.
    """

    index: int
    channel: Channel
    randomness: CorrelatedRandomness
    encoder: FixedPoint

    def __post_init__(self) -> None:
        if not 0 <= self.index < PARTIES or self.channel.index != self.index:
            raise ConfigError(
                "party index and channel index disagree", node_id=self.index
            )

    @property
    def next(self) -> int:
        """Index of the next party."""
        return nxt(self.index)

    @property
    def prev(self) -> int:
        """Index of the previous party."""
        return prv(self.index)
