"""ECDH-PSI between k >= 2 data holders, sans I/O, with three output modes.

Meadows (1986); Huberman, Franklin and Hogg (1999); the k-party ring as in
SecretFlow's ECDH-PSI. Holder ``i`` draws a secret exponent ``k_i`` and
shuffles its own ids with a secret permutation. The *list* of holder ``i``
starts as ``[H(x)^{k_i}]`` over its ids (:meth:`PsiHolder.start`) and visits
holders ``i + 1, ..., i + k - 1`` (mod ``k``), each raising every point to its
own exponent (:meth:`PsiHolder.relay`). After ``k - 1`` relays it holds the
*tags* ``H(x)^{k_0 ... k_{k-1}}``: equal ids give equal tags, and without
every exponent no tag can be linked to an id (DDH). Cost: ``k`` exponentiations
per id of one's own list plus one per id of each other list; for two holders,
two per id per side, the ECDH floor.

Output modes (:class:`OutputMode`):

``intersection``
    The final lists go to every holder; each maps the common tags back to its
    own rows (:meth:`PsiHolder.finish`). Every holder learns the intersection
    and every list's size. Relays keep the order (the owner's order is a secret
    shuffle, so positions say nothing to the others).
``size``
    Every relay also shuffles the list it passes on, so nobody (no coalition
    missing one holder) can follow a row to its tag: holders learn only the
    sizes of the lists and of the intersection.
``shares``
    The last relay of each list sends the tags to the three compute parties,
    not to the holders; each holder sends the parties secret shares of its rows
    in its own shuffled order (:attr:`PsiHolder.upload_order`). The parties
    match the tags (:func:`match_tags`) and keep the rows of the intersection
    in the common order (tags sorted): no holder learns anything but the list
    sizes; a compute party learns the sizes and, for each holder, which
    positions of its secretly shuffled upload are in the intersection.

Bad inputs give one typed error and release nothing: duplicate or empty ids
at a holder (:func:`check_ids`), a missing list (a holder that dropped out),
a list of the wrong length or with repeated tags, an empty intersection.

What a malicious holder can do (docs/vertical.md): choose its input set (it
learns, in ``intersection`` mode, whether each id it probes is held by all the
others: the inherent PSI leakage, bounded by its list size, which everyone
sees); use different exponents for different lists or drop, duplicate or
replace points it relays, which spoils the output (a wrong or empty
intersection, caught only as far as lengths and repeated tags go) but teaches
it nothing more, since every point it sees is a pseudorandom group element.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from fedsec.crypto.prg import secret_permutation
from fedsec.errors import AbortError, ConfigError, DataError, ProtocolError
from fedsec.psi.group import POINT_BYTES, Exponentiator, count_points, new_key

MAX_HOLDERS = 16
MAX_ID_BYTES = 256
MAX_SESSION = 2**63


class OutputMode(StrEnum):
    """Who learns what (module docstring)."""

    INTERSECTION = "intersection"
    SIZE = "size"
    SHARES = "shares"


@dataclass(frozen=True)
class PsiTerms:
    """The public terms of one PSI session.

    Attributes
    ----------
    session
        Session id in ``[0, 2^63)``, bound into the hash.
    holders
        Number of data holders ``k`` (2..16).
    mode
        The output mode.
    """

    session: int
    holders: int
    mode: OutputMode

    def __post_init__(self) -> None:
        if not 0 <= self.session < MAX_SESSION:
            raise ConfigError("a PSI session id is in [0, 2^63)", stage="psi")
        if not 2 <= self.holders <= MAX_HOLDERS:
            raise ConfigError(
                f"PSI needs 2..{MAX_HOLDERS} holders, got {self.holders}", stage="psi"
            )

    def relay_of(self, origin: int, hop: int) -> int:
        """The holder that applies its exponent to ``origin``'s list at ``hop``."""
        return (origin + hop) % self.holders

    @property
    def hops(self) -> int:
        """Relays per list: ``k - 1``."""
        return self.holders - 1


def check_ids(ids: Sequence[str], *, node_id: int | None = None) -> list[bytes]:
    """Refuse an empty list, an empty or overlong id, or duplicate ids.

    The message counts the offending ids and never names one.
    """
    if not ids:
        raise DataError("no record ids", stage="psi", node_id=node_id)
    raw = [str(i).encode() for i in ids]
    bad = sum(1 for r in raw if not 0 < len(r) <= MAX_ID_BYTES)
    if bad:
        raise DataError(
            f"{bad} record id(s) empty or longer than {MAX_ID_BYTES} bytes",
            stage="psi",
            node_id=node_id,
        )
    dupes = len(raw) - len(set(raw))
    if dupes:
        raise DataError(
            f"{dupes} duplicate record id(s); ids must be unique",
            stage="psi",
            node_id=node_id,
        )
    return raw


def shuffle_points(points: bytes) -> bytes:
    """The points of a list in a fresh secret order."""
    n = count_points(points)
    rows = np.frombuffer(points, dtype=np.uint8).reshape(n, POINT_BYTES)
    return rows[secret_permutation(n)].tobytes()


@dataclass(frozen=True)
class PsiResult:
    """What a holder learns: the size, and in ``intersection`` mode its rows.

    Attributes
    ----------
    size
        Number of ids held by every holder.
    rows
        Indices into this holder's id list, in the common order (``None``
        in ``size`` mode).
    """

    size: int
    rows: npt.NDArray[np.int64] | None


class PsiHolder:
    """One data holder's side of the protocol.

    Parameters
    ----------
    index
        This holder's index in ``0..k-1``.
    ids
        Its record ids (unique strings).
    terms
        The session's public terms.
    workers
        Processes for the exponentiations.
    """

    def __init__(
        self,
        index: int,
        ids: Sequence[str],
        terms: PsiTerms,
        *,
        workers: int = 1,
        state: tuple[bytes, bytes] | None = None,
    ) -> None:
        if not 0 <= index < terms.holders:
            raise ConfigError(f"holder index {index} out of range", stage="psi")
        self.index = index
        self.terms = terms
        self._ids = check_ids(ids, node_id=index)
        if state is None:
            self._key = new_key()
            self._order = secret_permutation(len(self._ids))
        else:
            self._key, order = state
            self._order = np.frombuffer(order, dtype="<i8").astype(np.int64)
            if sorted(self._order.tolist()) != list(range(len(self._ids))):
                raise ProtocolError(
                    "the saved PSI state does not fit the ids",
                    stage="psi",
                    node_id=index,
                )
        self._exp = Exponentiator(self._key, workers)

    def export_state(self) -> tuple[bytes, bytes]:
        """The secret exponent and order, to resume in another process.

        For a holder whose messages are handled by fresh processes (a Flower
        SuperNode keeps it in its node state, in memory): secret material.
        """
        return self._key, self._order.astype("<i8").tobytes()

    @property
    def size(self) -> int:
        """Number of ids."""
        return len(self._ids)

    @property
    def upload_order(self) -> npt.NDArray[np.int64]:
        """Row ``j`` of this holder's list (and share upload) is id ``order[j]``."""
        return self._order

    def start(self) -> bytes:
        """This holder's own list: ``H(x)^{k_i}`` in its secret order."""
        ordered = [self._ids[int(j)] for j in self._order]
        return self._exp.hash_and_raise(ordered, self.terms.session)

    def relay(self, origin: int, hop: int, points: bytes) -> bytes:
        """Raise ``origin``'s list to this holder's exponent at ``hop``.

        Raises
        ------
        ProtocolError
            If this holder is not the relay of that list at that hop, or the
            list is empty or ragged.
        """
        if not 1 <= hop <= self.terms.hops or (
            self.terms.relay_of(origin, hop) != self.index
        ):
            raise ProtocolError(
                f"not the relay of list {origin} at hop {hop}",
                stage="psi",
                node_id=self.index,
            )
        if count_points(points) == 0:
            raise AbortError(f"list {origin} is empty", stage="psi", node_id=self.index)
        out = self._exp.raise_points(points)
        return shuffle_points(out) if self.terms.mode is OutputMode.SIZE else out

    def finish(self, finals: Mapping[int, bytes]) -> PsiResult:
        """The intersection (or its size) from every holder's final list.

        Raises
        ------
        AbortError
            If a list is missing or the intersection is empty (nothing is
            released).
        ProtocolError
            If this holder's own list came back with another length, or a
            list repeats a tag.
        """
        if self.terms.mode is OutputMode.SHARES:
            raise ProtocolError(
                "in shares mode the tags go to the compute parties",
                stage="psi",
                node_id=self.index,
            )
        mine = finals.get(self.index, b"")
        if self.terms.mode is OutputMode.INTERSECTION and count_points(mine) != (
            self.size
        ):
            raise ProtocolError(
                "this holder's list came back with another length",
                stage="psi",
                node_id=self.index,
            )
        match = match_tags(finals, self.terms.holders, node_id=self.index)
        self._exp.close()
        if self.terms.mode is OutputMode.SIZE:
            return PsiResult(match.size, None)
        return PsiResult(match.size, self._order[match.positions[self.index]])

    def close(self) -> None:
        """Stop the worker processes."""
        self._exp.close()


@dataclass(frozen=True)
class TagMatch:
    """The intersection of the final lists, in the common order.

    Attributes
    ----------
    size
        Number of common tags.
    positions
        ``positions[i][r]`` is the position in holder ``i``'s list of the
        ``r``-th common tag (tags sorted bytewise: an order nobody chooses).
    """

    size: int
    positions: dict[int, npt.NDArray[np.int64]]


def match_tags(
    finals: Mapping[int, bytes], holders: int, *, node_id: int | None = None
) -> TagMatch:
    """Intersect the ``holders`` final lists; positions in the common order.

    Raises
    ------
    AbortError
        If a list is missing (a holder dropped out) or the intersection is
        empty: nothing is released.
    ProtocolError
        If a list is ragged or repeats a tag.
    """
    missing = [i for i in range(holders) if i not in finals]
    if missing:
        raise AbortError(
            f"no final list from holder(s) {missing}: nothing released",
            stage="psi",
            node_id=node_id,
        )
    index: list[dict[bytes, int]] = []
    for i in range(holders):
        blob = finals[i]
        n = count_points(blob)
        tags = [
            blob[o : o + POINT_BYTES] for o in range(0, n * POINT_BYTES, POINT_BYTES)
        ]
        where = dict(zip(tags, range(n), strict=True))
        if len(where) != n:
            raise ProtocolError(
                f"holder {i}'s list repeats a tag", stage="psi", node_id=node_id
            )
        index.append(where)
    smallest = min(range(holders), key=lambda i: len(index[i]))
    common = [t for t in index[smallest] if all(t in d for d in index)]
    if not common:
        raise AbortError(
            "the intersection is empty: nothing released", stage="psi", node_id=node_id
        )
    common.sort()
    return TagMatch(
        len(common),
        {
            i: np.fromiter((index[i][t] for t in common), np.int64, len(common))
            for i in range(holders)
        },
    )
