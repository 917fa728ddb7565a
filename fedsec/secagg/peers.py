"""Per-peer state kept by a client for one key set.

Following Google's production SecAgg client (one state per peer), each peer
records which of its secrets this client revealed, per round slot. Revealing
the self-seed share and the mask-key share of the same peer in the same slot
(which would unmask its input) is impossible: :meth:`PeerState.reveal`
refuses the second kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fedsec.errors import MaliciousServerError
from fedsec.secagg.keyschedule import KEY_KIND, SEED_KIND
from fedsec.secagg.stages import Stage

_KIND_NAMES = {KEY_KIND: "mask-key", SEED_KIND: "self-seed"}


@dataclass
class PeerState:
    """What a client knows about one peer (or itself) in the current key set."""

    cipher_pk: bytes
    mask_pks: bytes
    share: bytes | None = None
    revealed: dict[int, int] = field(default_factory=dict)

    def reveal(self, slot: int, kind: int, node: int) -> None:
        """Record that this peer's ``kind`` share of ``slot`` is revealed.

        Raises
        ------
        MaliciousServerError
            If the other kind of share of this peer was revealed for ``slot``.
        """
        self.check_reveal(slot, kind, node)
        self.revealed[slot] = kind

    def check_reveal(self, slot: int, kind: int, node: int) -> None:
        """Raise ``MaliciousServerError`` if revealing ``kind`` would be unsafe."""
        done = self.revealed.get(slot)
        if done is not None and done != kind:
            raise MaliciousServerError(
                f"asked for the {_KIND_NAMES[kind]} share of a peer whose "
                f"{_KIND_NAMES[done]} share was revealed",
                stage=Stage.UNMASK.value,
                node_id=node,
            )
