"""Vertical parties end to end in threads: PSI tags, sealed blocks, the model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fedsec.errors import AbortError, DataError, PolicyError
from fedsec.mpc.inproc import InProcessNetwork
from fedsec.mpc.keys import generate_party_keys
from fedsec.mpc.local import run_threads
from fedsec.mpc.runtime import Runtime
from fedsec.mpc.sessions import MemorySessionLog
from fedsec.policy import SitePolicy
from fedsec.psi.local import final_lists
from fedsec.psi.protocol import OutputMode, PsiTerms, match_tags
from fedsec.vertical.holder import VerticalHolder
from fedsec.vertical.local import holder_inputs
from fedsec.vertical.party import HolderInputs, VerticalParty
from fedsec.vertical.table import check_table
from fedsec.vertical.train import TrainTerms, plaintext_train

POLICY = SitePolicy(modes=frozenset({"vertical"}))
TERMS = TrainTerms(epochs=2, batch_size=16)
SEED = b"seed"


def _frames() -> list[pd.DataFrame]:
    from fedsec.data.vertical import vertical_tables

    return [f.iloc[:120] for f in vertical_tables("breast_cancer", 2)]


def _run(inputs: list[HolderInputs], session: int = 3) -> list[np.ndarray]:
    keys = _KEYS
    net = InProcessNetwork(timeout=20)
    parties = [
        VerticalParty(
            keys[i], net.channel(i), TERMS, sessions=MemorySessionLog(), policy=POLICY
        )
        for i in range(3)
    ]
    rts = [
        Runtime(i, net.channel(i), keys[i].randomness(0), TERMS.encoder)
        for i in range(3)
    ]

    def prog(rt: Runtime, p: VerticalParty) -> np.ndarray:
        return p.run(session, inputs[rt.index], SEED).weights

    return run_threads(rts, prog, parties).outputs


_KEYS = generate_party_keys()


def _setup(
    mode: OutputMode = OutputMode.SHARES,
) -> tuple[list[VerticalHolder], dict[int, bytes], list[HolderInputs]]:
    from fedsec.data.vertical import column_groups

    groups = column_groups(30, 2)
    tables = [
        check_table(f, groups[h], labels=h == 0, holder=h)
        for h, f in enumerate(_frames())
    ]
    terms = PsiTerms(3, 2, mode)
    hs = [VerticalHolder(h, tables[h], terms) for h in range(2)]
    inputs = holder_inputs(hs, _KEYS[0].public_keys, TERMS.encoder)
    # the same exponents again: the final tags the parties open after shuffling
    finals = final_lists([h.psi for h in hs], terms)
    return hs, finals, inputs


@pytest.mark.parametrize("mode", [OutputMode.SHARES, OutputMode.INTERSECTION])
def test_parties_train_on_the_intersection_like_float64(mode: OutputMode) -> None:
    hs, finals, inputs = _setup(mode)
    assert (inputs[0].tags is None) is (mode is OutputMode.INTERSECTION)
    outs = _run(inputs)
    assert all(np.array_equal(outs[0], o) for o in outs)
    match = match_tags(finals, 2)
    joined = [
        hs[h].table.aligned(hs[h].psi.upload_order[match.positions[h]])
        for h in range(2)
    ]
    x = np.hstack([j.x for j in joined])
    y = joined[0].y
    enc = TERMS.encoder
    want = plaintext_train(
        enc.decode(enc.encode(x)), enc.decode(enc.encode(y)), TERMS, SEED
    )
    assert np.max(np.abs(outs[0] - want)) <= 2 * TERMS.steps(len(y)) * 2.0**-14


def test_a_dropped_holder_stops_every_party_before_training() -> None:
    _, _, inputs = _setup()
    assert inputs[0].tags is not None
    cut = [
        HolderInputs(i.features, i.labels, 0, {0: i.tags[0]})  # type: ignore[index]
        for i in inputs
    ]
    with pytest.raises(AbortError):
        _run(cut)


def test_policy_without_vertical_refuses() -> None:
    with pytest.raises(PolicyError, match="modes"):
        VerticalParty(
            _KEYS[0],
            InProcessNetwork().channel(0),
            TERMS,
            sessions=MemorySessionLog(),
            policy=SitePolicy(modes=frozenset({"mpc"})),
        )


def test_schema_checks_name_the_problem() -> None:
    frame = _frames()[1]
    cols = [c for c in frame.columns if c != "id"]
    with pytest.raises(DataError, match="columns differ"):
        check_table(frame, cols[:-1], labels=False, holder=1)
    bad = frame.copy()
    bad.iloc[3, 2] = np.nan
    with pytest.raises(DataError, match="missing"):
        check_table(bad, cols, labels=False, holder=1)
    dup = pd.concat([frame, frame.iloc[:2]])
    with pytest.raises(DataError, match="duplicate"):
        check_table(dup, cols, labels=False, holder=1)


def test_holders_clip_their_parts_so_rows_fit_the_dp_bound() -> None:
    from fedsec.vertical.holder import clip_rows, part_bound

    rng = np.random.default_rng(0)
    parts = [rng.normal(size=(50, d)) * 5 for d in (10, 12, 8)]
    bounds = [part_bound(3.0, p.shape[1], 30) for p in parts]
    rows = np.hstack([clip_rows(p, b) for p, b in zip(parts, bounds, strict=True)])
    norms = np.sqrt((rows**2).sum(axis=1) + 1.0)  # with the intercept
    assert norms.max() <= 3.0 + 1e-9
