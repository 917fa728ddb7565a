"""Shared helpers for the MPC tests: plaintext sharing and a recording channel."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from fedsec.mpc.channel import Channel, ChannelStats
from fedsec.mpc.local import LocalRun, local_runtimes, run_threads
from fedsec.mpc.ring import FixedPoint, Ring
from fedsec.mpc.runtime import Runtime
from fedsec.mpc.shares import Shared, split, views
from fedsec.policy import SitePolicy

# a party policy that lets the tests use large clipping norms (default floors
# otherwise: at least three clients per session)
LAX_POLICY = SitePolicy(modes=frozenset({"mpc"}), max_clip_norm=100.0)


class RecordingChannel:
    """Wraps a channel and keeps every message the party receives (its view)."""

    def __init__(self, inner: Channel) -> None:
        self.inner = inner
        self.received: list[Ring] = []

    @property
    def index(self) -> int:
        return self.inner.index

    @property
    def stats(self) -> ChannelStats:
        return self.inner.stats

    def exchange(
        self,
        outgoing: Mapping[int, Ring],
        expect: Sequence[int],
        *,
        counts_round: bool = True,
    ) -> dict[int, Ring]:
        got = self.inner.exchange(outgoing, expect, counts_round=counts_round)
        self.received.extend(got[p] for p in sorted(got))
        return got


def share(x: Ring) -> list[Shared]:
    """The three parties' views of a fresh sharing of ring elements ``x``."""
    return views(split(np.asarray(x, dtype=np.uint64)))


def run(
    program: Callable[[Runtime, Any], Any],
    inputs: Sequence[Any],
    encoder: FixedPoint | None = None,
    record: bool = False,
) -> tuple[LocalRun[Any], list[RecordingChannel]]:
    """Run ``program`` at three in-process parties; optionally record their views."""
    rts = local_runtimes(encoder or FixedPoint(16), timeout=20.0)
    recs = []
    if record:
        recs = [RecordingChannel(rt.channel) for rt in rts]
        for rt, rec in zip(rts, recs, strict=True):
            rt.channel = rec
    return run_threads(rts, program, inputs), recs


@pytest.fixture
def enc() -> FixedPoint:
    return FixedPoint(16)
