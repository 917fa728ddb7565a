"""Conversions between fedsec values and Flower records."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
from flwr.app import ConfigRecord, MetricRecord, RecordDict

from fedsec.flower.records import (
    content_bytes,
    flatten,
    record_to_weights,
    unflatten,
    weights_to_record,
)


def _weights() -> OrderedDict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return OrderedDict(
        [
            ("w", rng.normal(size=(3, 4)).astype(np.float32)),
            ("b", np.arange(3, dtype=np.float32)),
        ]
    )


def test_weights_round_trip_in_order() -> None:
    weights = _weights()
    back = record_to_weights(weights_to_record(weights))
    assert list(back) == ["w", "b"]
    for key in weights:
        np.testing.assert_array_equal(back[key], weights[key])


def test_flatten_unflatten_round_trip_and_shape_check() -> None:
    weights = _weights()
    flat = flatten(weights)
    assert flat.shape == (15,)
    back = unflatten(flat, weights)
    for key in weights:
        np.testing.assert_array_equal(back[key], weights[key])
    with pytest.raises(ValueError, match="16 entries"):
        unflatten(np.zeros(16, np.float32), weights)


def test_content_bytes_counts_arrays_configs_and_empty_strings() -> None:
    content = RecordDict(
        {
            "arrays": weights_to_record(_weights()),
            "config": ConfigRecord({"a": "", "b": 3, "c": b"xyz"}),
            "metrics": MetricRecord({"m": 1.0}),
        }
    )
    arrays = weights_to_record(_weights()).count_bytes()
    # keys count too: a, b, c, m; numbers 8 bytes; str/bytes their length
    assert content_bytes(content) == arrays + (1 + 0) + (1 + 8) + (1 + 3) + (1 + 8)
