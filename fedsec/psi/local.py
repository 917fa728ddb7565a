"""Run the PSI of k holders in one process (tests, the simulation shortcut).

The driver plays the relaying server: it passes every list around the ring
and delivers the final lists to the holders (``intersection``, ``size``) or
matches them as the compute parties would (``shares``). Whoever runs it holds
every holder's ids; it checks the protocol, it protects nobody.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fedsec.psi.protocol import OutputMode, PsiHolder, PsiResult, PsiTerms, match_tags


@dataclass(frozen=True)
class LocalPsi:
    """Outputs of :func:`run_psi`.

    Attributes
    ----------
    results
        Each holder's :class:`PsiResult` (``intersection`` and ``size`` modes).
    rows
        ``shares`` mode: per holder, the indices of its ids in the common
        order (what the compute parties' alignment amounts to).
    """

    results: list[PsiResult]
    rows: list[npt.NDArray[np.int64]]


def final_lists(holders: Sequence[PsiHolder], terms: PsiTerms) -> dict[int, bytes]:
    """Every list passed around the ring: the final tags, by origin."""
    lists = {h.index: h.start() for h in holders}
    for hop in range(1, terms.hops + 1):
        lists = {
            origin: holders[terms.relay_of(origin, hop)].relay(origin, hop, pts)
            for origin, pts in lists.items()
        }
    return lists


def run_psi(
    ids: Sequence[Sequence[str]],
    mode: OutputMode,
    *,
    session: int = 1,
    workers: int = 1,
) -> LocalPsi:
    """The PSI of ``len(ids)`` holders with the given output mode."""
    terms = PsiTerms(session, len(ids), mode)
    holders = [PsiHolder(i, ids[i], terms, workers=workers) for i in range(len(ids))]
    try:
        finals = final_lists(holders, terms)
        if mode is OutputMode.SHARES:
            match = match_tags(finals, terms.holders)
            rows = [h.upload_order[match.positions[h.index]] for h in holders]
            return LocalPsi([PsiResult(match.size, None)] * len(holders), rows)
        results = [h.finish(finals) for h in holders]
        return LocalPsi(results, [r.rows for r in results if r.rows is not None])
    finally:
        for h in holders:
            h.close()
