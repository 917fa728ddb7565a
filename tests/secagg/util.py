"""Shared helpers of the secagg tests: a federation with recorded quantisation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest

from fedsec.crypto.quantize import Quantizer
from fedsec.secagg.config import SecAggConfig
from fedsec.secagg.local import LocalFederation

DIM = 24


def make_updates(ids: list[int], seed: int = 0) -> tuple[dict, dict]:
    """Synthetic float32 updates in [-1.2, 1.2] and integer weights in [1, 4]."""
    rng = np.random.default_rng(seed)  # test data, nothing secret
    updates = {u: rng.uniform(-1.2, 1.2, DIM).astype(np.float32) for u in ids}
    weights = {u: int(rng.integers(1, 5)) for u in ids}
    return updates, weights


@contextmanager
def record_quantized(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict[bytes, np.ndarray]]:
    """Record each client's quantised vector, keyed by the update's bytes."""
    seen: dict[bytes, np.ndarray] = {}
    original = Quantizer.quantize

    def spy(self: Quantizer, update: np.ndarray, weight: float) -> np.ndarray:
        out = original(self, update, weight)
        seen[update.tobytes()] = out.copy()
        return out

    monkeypatch.setattr(Quantizer, "quantize", spy)
    yield seen


def plaintext_ring_sum(
    seen: dict[bytes, np.ndarray], updates: dict, survivors: tuple[int, ...], bits: int
) -> np.ndarray:
    """Σ of the survivors' quantised inputs in Z_{2^bits}."""
    total = np.zeros(DIM, dtype=np.uint32)
    for u in survivors:
        total += seen[updates[u].tobytes()]
    return total & np.uint32((1 << bits) - 1)


def federation(config: SecAggConfig, n: int, *, wire: bool = True) -> LocalFederation:
    """A federation of ``n`` clients with sparse, non-contiguous node ids."""
    return LocalFederation(config, [10_000 + 37 * i for i in range(n)], wire=wire)
