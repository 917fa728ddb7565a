"""The communicator interface between the three compute parties.

One call to :meth:`Channel.exchange` is one protocol round: a party hands over
everything it sends in that round (one batched message per peer) and receives
one message from each peer it expects to hear from. A large one-way message
may be streamed as more calls with ``counts_round=False``, so that the
receiver works on its first blocks while the rest travel. Implementations
count bytes and rounds per party. Messages are uint64 arrays; their shape
travels with them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from fedsec.mpc.ring import Ring


@dataclass
class ChannelStats:
    """Traffic counters of one party.

    Attributes
    ----------
    bytes_sent, bytes_received
        Payload bytes (array data, excluding framing and TLS overhead).
    messages_sent
        Number of messages sent.
    rounds
        Number of :meth:`Channel.exchange` calls that moved any message,
        except the further blocks of a streamed message.
    """

    bytes_sent: int = 0
    bytes_received: int = 0
    messages_sent: int = 0
    rounds: int = 0

    def record(
        self,
        sent: Mapping[int, Ring],
        received: Mapping[int, Ring],
        counts_round: bool = True,
    ) -> None:
        """Add one exchange's traffic (a round unless ``counts_round`` is false)."""
        self.bytes_sent += sum(int(m.nbytes) for m in sent.values())
        self.bytes_received += sum(int(m.nbytes) for m in received.values())
        self.messages_sent += len(sent)
        if (sent or received) and counts_round:
            self.rounds += 1


class Channel(Protocol):
    """A party's endpoint to the two other compute parties."""

    @property
    def index(self) -> int:
        """This party's index."""
        ...

    @property
    def stats(self) -> ChannelStats:
        """Traffic counters of this party."""
        ...

    def exchange(
        self,
        outgoing: Mapping[int, Ring],
        expect: Sequence[int],
        *,
        counts_round: bool = True,
    ) -> dict[int, Ring]:
        """Run one round: send ``outgoing[peer]`` to each peer, receive from ``expect``.

        ``counts_round=False``: a further block of a message streamed in
        this round (not counted as a round in :attr:`stats`).

        Raises
        ------
        ProtocolError
            If a peer is unknown, a message is malformed or a peer is silent
            past the timeout.
        """
        ...
