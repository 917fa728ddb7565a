"""Conversions between fedsec values and Flower records.

This package is the only place in ``fedsec`` that imports Flower. Protocol
messages of ``fedsec.secagg`` and ``fedsec.mpc`` are plain mappings of
ConfigRecord-compatible values (``to_record()``); here they become Flower
``ConfigRecord`` objects and back, and model weights become ``ArrayRecord``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict

Weights = OrderedDict[str, npt.NDArray[np.float32]]


def weights_to_record(weights: Mapping[str, npt.NDArray[Any]]) -> ArrayRecord:
    """Model weights (name → array) as an ArrayRecord, order preserved."""
    return ArrayRecord.from_array_dict(
        {
            key: Array.from_numpy_ndarray(np.ascontiguousarray(v))
            for key, v in weights.items()
        }
    )


def record_to_weights(record: ArrayRecord) -> Weights:
    """An ArrayRecord as float32 numpy arrays, order preserved."""
    return OrderedDict(
        (key, np.asarray(array.numpy(), dtype=np.float32))
        for key, array in record.items()
    )


def flatten(weights: Mapping[str, npt.NDArray[Any]]) -> npt.NDArray[np.float32]:
    """Concatenate all arrays into one float32 vector (the order of ``weights``)."""
    if not weights:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(
        [np.ravel(v).astype(np.float32, copy=False) for v in weights.values()]
    )


def unflatten(
    vector: npt.NDArray[Any], like: Mapping[str, npt.NDArray[Any]]
) -> Weights:
    """Cut a flat vector back into arrays shaped like ``like``."""
    sizes = [int(np.prod(v.shape)) for v in like.values()]
    if int(vector.size) != sum(sizes):
        raise ValueError(f"vector has {vector.size} entries, weights need {sum(sizes)}")
    out: Weights = OrderedDict()
    offset = 0
    for (key, ref), size in zip(like.items(), sizes, strict=True):
        out[key] = np.asarray(vector[offset : offset + size], dtype=np.float32).reshape(
            ref.shape
        )
        offset += size
    return out


def to_config_record(values: Mapping[str, Any]) -> ConfigRecord:
    """A mapping of ConfigRecord-compatible values as a ConfigRecord."""
    return ConfigRecord(dict(values))


def from_config_record(record: ConfigRecord) -> dict[str, Any]:
    """A ConfigRecord as a plain dict (values are not validated here)."""
    return dict(record.items())


def content_bytes(content: RecordDict) -> int:
    """Payload bytes of a message's content: arrays, configs and metrics.

    Arrays count their serialised bytes; config and metric values count 8
    bytes per number and their length for strings and bytes (Flower's own
    ``ConfigRecord.count_bytes`` fails on an empty string).
    """
    total = 0
    for record in content.values():
        if isinstance(record, ArrayRecord):
            total += int(record.count_bytes())
        else:
            total += sum(
                len(key) + _value_bytes(value) for key, value in record.items()
            )
    return total


def _value_bytes(value: Any) -> int:
    if isinstance(value, list):
        return sum(_value_bytes(item) for item in value)
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, bool):
        return 1
    return 8
