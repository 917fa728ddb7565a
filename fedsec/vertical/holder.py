"""A data holder's side of vertical training: PSI, then its rows to the parties.

``VerticalHolder(index, table, psi_terms)`` wraps the holder's
:class:`~fedsec.psi.protocol.PsiHolder` over its checked table
(:mod:`fedsec.vertical.table`). :meth:`VerticalHolder.blocks` secret-shares
its feature columns (and, at the label holder, the labels) to the three
parties: in ``shares`` mode in its secret upload order (the parties align the
rows from the PSI tags), in ``intersection`` mode in the common order it
learned (:meth:`~fedsec.psi.protocol.PsiHolder.finish`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from fedsec.errors import ProtocolError
from fedsec.mpc.ring import FixedPoint
from fedsec.psi.protocol import OutputMode, PsiHolder, PsiTerms
from fedsec.vertical.shares import FEATURES, LABELS, TAGS, share_block, share_words
from fedsec.vertical.table import HolderTable


class VerticalHolder:
    """Holder ``index`` of a vertical session (module docstring)."""

    def __init__(
        self,
        index: int,
        table: HolderTable,
        terms: PsiTerms,
        *,
        workers: int = 1,
        state: tuple[bytes, bytes] | None = None,
        rows: npt.NDArray[np.int64] | None = None,
    ) -> None:
        self.index = index
        self.table = table
        self.terms = terms
        self.psi = PsiHolder(index, table.ids, terms, workers=workers, state=state)
        self._rows = rows

    @property
    def rows(self) -> npt.NDArray[np.int64] | None:
        """``intersection`` mode, after :meth:`finish`: its rows in common order."""
        return self._rows

    def relay(
        self, origin: int, hop: int, points: bytes, party_keys: Sequence[bytes]
    ) -> tuple[bytes | None, list[bytes] | None]:
        """Relay ``origin``'s list: ``(points, None)``, or ``(None, tag packages)``.

        In ``shares`` mode the last relay's output, the final tags, leaves this
        holder only secret-shared and sealed to the three parties (kind
        ``TAGS``, bound to ``origin``'s list), so that the parties can shuffle
        it obliviously with ``origin``'s rows before anyone sees a tag.
        """
        out = self.psi.relay(origin, hop, points)
        if self.terms.mode is not OutputMode.SHARES or hop < self.terms.hops:
            return out, None
        words = np.frombuffer(out, dtype="<u8").reshape(-1, 4).astype(np.uint64)
        tags = share_words(
            words,
            party_keys,
            session=self.terms.session,
            holder=origin,
            kind=TAGS,
            frac_bits=0,
        )
        return None, tags

    def finish(self, finals: Mapping[int, bytes]) -> int:
        """``intersection`` mode: learn the common order; returns its size."""
        result = self.psi.finish(finals)
        self._rows = result.rows
        return result.size

    def blocks(
        self,
        party_keys: Sequence[bytes],
        encoder: FixedPoint,
        *,
        row_bound: float | None = None,
    ) -> tuple[list[bytes], list[bytes] | None]:
        """Packages for parties 0, 1, 2: features, and labels at the label holder.

        ``row_bound``: with DP, this holder's part of every row is first scaled
        to L2 norm at most that (:func:`part_bound`).
        """
        if self.terms.mode is OutputMode.SHARES:
            rows = self.psi.upload_order
        elif self._rows is not None:
            rows = self._rows
        else:
            raise ProtocolError(
                "rows go to the parties after the PSI (shares or intersection mode)",
                stage="share",
                node_id=self.index,
            )
        table = self.table.aligned(rows)
        x = table.x if row_bound is None else clip_rows(table.x, row_bound)
        common = {"session": self.terms.session, "holder": self.index}
        features = share_block(x, party_keys, kind=FEATURES, encoder=encoder, **common)
        labels = (
            None
            if table.y is None
            else share_block(
                table.y[:, None], party_keys, kind=LABELS, encoder=encoder, **common
            )
        )
        return features, labels


def part_bound(row_norm: float, columns: int, total_columns: int) -> float:
    """A holder's share of the row-norm bound C: ``sqrt((C^2 - 1) d_h / d)``.

    The parts' squares sum to ``C^2 - 1`` and the intercept adds 1, so every
    row (with its intercept) has norm at most C, the sensitivity of a batch
    gradient sum in DP training (:mod:`fedsec.vertical.train`).
    """
    if not row_norm > 1 or not 0 < columns <= total_columns:
        raise ProtocolError("the row norm bound must exceed 1", stage="share")
    return float(np.sqrt((row_norm**2 - 1) * columns / total_columns))


def clip_rows(x: npt.NDArray[np.float64], bound: float) -> npt.NDArray[np.float64]:
    """Every row scaled to L2 norm at most ``bound``."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.asarray(x * np.minimum(1.0, bound / np.maximum(norms, 1e-300)))
