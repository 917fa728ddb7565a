"""The oblivious shuffle permutes rows consistently and no party knows how."""

from __future__ import annotations

import numpy as np

from fedsec.mpc.arithmetic import reveal
from fedsec.mpc.local import run_local
from fedsec.mpc.runtime import Runtime
from fedsec.mpc.shares import Shared, split, views
from fedsec.mpc.shuffle import shuffle


def _run(x: np.ndarray) -> tuple[np.ndarray, list]:
    parts = views(split(x))

    def prog(rt: Runtime, s: Shared) -> np.ndarray:
        out = reveal(rt, shuffle(rt, s))
        assert out is not None
        return out

    run = run_local(prog, parts)
    return run.outputs[0], run.stats


def test_rows_are_permuted_together() -> None:
    x = np.arange(200 * 3, dtype=np.uint64).reshape(200, 3)
    got, stats = _run(x)
    assert sorted(map(tuple, got.tolist())) == sorted(map(tuple, x.tolist()))
    assert not np.array_equal(got, x)
    assert stats[0].rounds == 3 + 1  # and the reveal


def test_each_run_draws_a_fresh_permutation() -> None:
    x = np.arange(64, dtype=np.uint64).reshape(64, 1)
    assert not np.array_equal(_run(x)[0], _run(x)[0])
