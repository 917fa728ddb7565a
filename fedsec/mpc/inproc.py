"""In-process channel: three parties in threads of one process.

For tests and the simulation shortcut. Messages are numpy arrays handed over
through queues without copying (the engine never mutates an array after
sending it); traffic is counted exactly as on the wire.
"""

from __future__ import annotations

import queue
from collections.abc import Mapping, Sequence

from fedsec.errors import ProtocolError
from fedsec.mpc.channel import ChannelStats
from fedsec.mpc.ring import Ring
from fedsec.mpc.shares import PARTIES


class InProcessNetwork:
    """The queues between three in-process parties.

    Parameters
    ----------
    timeout
        Seconds a party waits for a peer's message before raising.
    """

    def __init__(self, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self._queues: dict[tuple[int, int], queue.SimpleQueue[Ring]] = {
            (s, d): queue.SimpleQueue()
            for s in range(PARTIES)
            for d in range(PARTIES)
            if s != d
        }
        self.channels = [InProcessChannel(self, i) for i in range(PARTIES)]

    def channel(self, index: int) -> InProcessChannel:
        """The endpoint of party ``index``."""
        return self.channels[index]

    def _send(self, src: int, dst: int, message: Ring) -> None:
        self._queues[(src, dst)].put(message)

    def _recv(self, src: int, dst: int) -> Ring:
        try:
            return self._queues[(src, dst)].get(timeout=self.timeout)
        except queue.Empty:
            raise ProtocolError(
                f"no message from party {src} within {self.timeout} s", node_id=dst
            ) from None


class InProcessChannel:
    """Party ``index``'s endpoint on an :class:`InProcessNetwork`."""

    def __init__(self, network: InProcessNetwork, index: int) -> None:
        self._network = network
        self._index = index
        self._stats = ChannelStats()

    @property
    def index(self) -> int:
        """This party's index."""
        return self._index

    @property
    def stats(self) -> ChannelStats:
        """Traffic counters of this party."""
        return self._stats

    def exchange(
        self,
        outgoing: Mapping[int, Ring],
        expect: Sequence[int],
        *,
        counts_round: bool = True,
    ) -> dict[int, Ring]:
        """Send to and receive from peers in one round."""
        for peer in (*outgoing, *expect):
            if peer == self._index or not 0 <= peer < PARTIES:
                raise ProtocolError(f"invalid peer {peer}", node_id=self._index)
        for peer, message in outgoing.items():
            self._network._send(self._index, peer, message)
        received = {peer: self._network._recv(peer, self._index) for peer in expect}
        self._stats.record(outgoing, received, counts_round)
        return received
