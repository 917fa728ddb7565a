"""Pairwise masks cancel in the sum; self masks and labels are separated."""

from __future__ import annotations

import itertools

import numpy as np

from fedsec.crypto.kdf import X25519KeyPair
from fedsec.crypto.prg import MaskGenerator
from fedsec.secagg import keyschedule as ks


def test_pairwise_masks_cancel_over_all_clients() -> None:
    nodes = [5, 17, 40, 41, 99]
    keys = {u: X25519KeyPair.generate() for u in nodes}
    total = np.zeros(1001, dtype=np.uint32)
    prg = MaskGenerator()
    for i, u in enumerate(nodes):
        peers = [(v, keys[v].public) for v in nodes if v != u]
        seeds = ks.pairwise_seeds(keys[u].secret, u, peers, 3, 7, 1)
        for (v, _), seed in zip(peers, seeds, strict=True):
            (prg.add_into if u < v else prg.sub_into)(total, seed)
        if i < len(nodes) - 1:
            assert total.any()  # any partial sum is still masked
    assert not total.any()  # the full sum: every pairwise mask cancelled


def test_pairwise_seed_is_symmetric_and_bound_to_round_and_slot() -> None:
    a, b = X25519KeyPair.generate(), X25519KeyPair.generate()
    ab = ks.pairwise_seed(a.secret, b.public, 1, 2, 0, 10, 20)
    assert ab == ks.pairwise_seed(b.secret, a.public, 1, 2, 0, 20, 10)
    others = {
        ks.pairwise_seed(a.secret, b.public, k, r, s, 10, 20)
        for k, r, s in itertools.product((1, 2), (2, 3), (0, 1))
    }
    assert len(others) == 8  # key set, round and slot each change the seed


def test_self_mask_seed_depends_on_every_label_field() -> None:
    seed = bytes(range(32))
    variants = {
        ks.self_mask_seed(seed, k, r, s, n)
        for k, r, s, n in itertools.product((1, 2), (0, 1), (0, 1), (3, 4))
    }
    assert len(variants) == 16
