"""Play a curious party: its view must look uniform whatever the inputs are.

A party's view is its input shares and every message it receives. For two
very different inputs (all-zero updates with small weights, and huge updates
with weights beyond the cap; clients clamp them to the largest coordinates the
parties accept) we collect party ``p``'s view of the whole
clip-and-sum program and check that (a) the top byte and the low byte of the
view words are uniform (chi-squared goodness of fit) and (b) the two views
have the same byte distribution (chi-squared two-sample test). Public
messages are excluded: the first round (client ids and share digests) and the
range-check verdicts.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from scipy import stats

from fedsec.mpc.client import ClientInputs, client_share, open_client_share
from fedsec.mpc.clip_and_sum import ClipSumConfig, clip_and_sum
from fedsec.mpc.inproc import InProcessNetwork
from fedsec.mpc.keys import generate_party_keys
from fedsec.mpc.local import run_threads
from fedsec.mpc.runtime import Runtime

from .conftest import RecordingChannel

ALPHA = 1e-6  # false-alarm rate per check (36 checks: < 1e-4 per run)
CFG = ClipSumConfig(clip_norm=1.0, max_weight=10)


def _view(x: np.ndarray, w: np.ndarray, party: int) -> tuple[np.ndarray, np.ndarray]:
    keys = generate_party_keys()
    pk = [
        client_share(
            x[j],
            int(w[j]),
            keys[0].public_keys,
            session=1,
            client_id=j,
            config=CFG,
            clamp=CFG.coordinate_bound(x.shape[1]),
        )
        for j in range(len(x))
    ]
    inputs = [
        ClientInputs.from_shares(
            {
                j: open_client_share(
                    keys[i],
                    pk[j][i],
                    session=1,
                    client_id=j,
                    dim=x.shape[1],
                    config=CFG,
                )
                for j in range(len(x))
            }
        )
        for i in range(3)
    ]
    net = InProcessNetwork(timeout=20)
    recs = [RecordingChannel(net.channel(i)) for i in range(3)]
    rts = [Runtime(i, recs[i], keys[i].randomness(1), CFG.encoder) for i in range(3)]
    run_threads(rts, lambda rt, inp: clip_and_sum(rt, inp, CFG, min_clients=3), inputs)
    own = inputs[party]
    # Public messages are left out: the metadata round (two messages) and the
    # range-check verdicts (two messages, zeros for honest clients). In the
    # range check's first round party 0 receives nothing, the others one
    # message (a fresh seed, and for party 2 its masked share of the high bits).
    got = recs[party].received
    verdicts = 2 if party == 0 else 3
    received = got[2:verdicts] + got[verdicts + 2 :]
    shares = np.concatenate([own.x.a.ravel(), own.x.b.ravel(), own.w.a, own.w.b])
    return shares, np.concatenate([m.ravel() for m in received])


def _bytes(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    top = (words >> np.uint64(56)).astype(np.int64)
    low = (words & np.uint64(0xFF)).astype(np.int64)
    return np.bincount(top, minlength=256), np.bincount(low, minlength=256)


@pytest.mark.parametrize("party", [0, 1, 2])
def test_view_is_uniform_and_independent_of_the_input(party: int) -> None:
    n, d = 16, 1000
    quiet = np.zeros((n, d)), np.ones(n)
    loud = np.full((n, d), 50.0), np.full(n, 1000)
    views = [_view(x, w, party) for x, w in (quiet, loud)]
    # input shares and protocol messages are tested separately, so a leak in
    # the (few) scalar messages is not diluted by the (many) input words
    for part in range(2):
        a, b = views[0][part], views[1][part]
        assert a.size == b.size > 500
        hists = [_bytes(a), _bytes(b)]
        for top, low in hists:
            assert stats.chisquare(top).pvalue > ALPHA
            assert stats.chisquare(low).pvalue > ALPHA
        for k in range(2):
            table = np.stack([hists[0][k], hists[1][k]])
            assert stats.chi2_contingency(table).pvalue > ALPHA


def test_the_test_detects_a_leaky_view() -> None:
    # sanity check of the statistic: an unmasked fixed-point input is caught,
    # and so is a message stream in which 5 % of the words are sign-extended
    # (what an unmasked truncated share looks like)
    x = CFG.encoder.encode(np.full(20_000, 50.0))
    top, low = _bytes(x)
    assert stats.chisquare(top).pvalue < ALPHA
    assert stats.chisquare(low).pvalue < ALPHA
    words = np.frombuffer(os.urandom(8 * 2000), dtype=np.uint64).copy()
    words[:100] = (words[:100].view(np.int64) >> np.int64(16)).view(np.uint64)
    assert stats.chisquare(_bytes(words)[0]).pvalue < ALPHA
