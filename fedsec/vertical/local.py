"""All holders of a vertical session in one process (tests, benchmarks).

Plays the holders and the relaying server: the PSI ring, then every
holder's sealed blocks and, in ``shares`` mode, the final tags of every list
secret-shared by its last relay. Whoever runs it holds every holder's data.
"""

from __future__ import annotations

from collections.abc import Sequence

from fedsec.mpc.ring import FixedPoint
from fedsec.psi.protocol import OutputMode
from fedsec.vertical.holder import VerticalHolder
from fedsec.vertical.party import HolderInputs


def holder_inputs(
    holders: Sequence[VerticalHolder],
    party_keys: Sequence[bytes],
    encoder: FixedPoint,
    label_holder: int = 0,
) -> list[HolderInputs]:
    """Run the PSI and the sharing; what each of the three parties receives."""
    terms = holders[0].terms
    lists = {h.index: h.psi.start() for h in holders}
    tags: dict[int, list[bytes]] = {}
    for hop in range(1, terms.hops + 1):
        nxt = {}
        for origin, pts in lists.items():
            out, shared = holders[terms.relay_of(origin, hop)].relay(
                origin, hop, pts, party_keys
            )
            if shared is not None:
                tags[origin] = shared
            elif out is not None:
                nxt[origin] = out
        lists = nxt
    if terms.mode is OutputMode.INTERSECTION:
        for h in holders:
            h.finish(lists)
    blocks = [h.blocks(party_keys, encoder) for h in holders]
    labels = blocks[label_holder][1]
    if labels is None:
        raise ValueError("the label holder has no labels")
    return [
        HolderInputs(
            {h.index: blocks[h.index][0][i] for h in holders},
            labels[i],
            label_holder,
            {o: t[i] for o, t in tags.items()} if tags else None,
        )
        for i in range(3)
    ]
