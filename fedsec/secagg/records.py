"""Validation of flat message records (what a Flower ConfigRecord can hold).

A record maps ``str`` to ``int``, ``float``, ``str``, ``bytes``, ``bool`` or a
list of one of those. :class:`RecordReader` pulls typed fields out of one and
raises :class:`~fedsec.secagg.errors.MessageFormatError` on anything else; it
also refuses fields it was not asked for, so every message is read strictly.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from fedsec.secagg.errors import MessageFormatError

Value = (
    int
    | float
    | str
    | bytes
    | bool
    | list[int]
    | list[float]
    | list[str]
    | list[bytes]
    | list[bool]
)  # exactly the value type of a Flower ConfigRecord
Record = dict[str, Value]

NODE_ID_MAX = (1 << 64) - 1
MAX_NODES = 1 << 16


def record_nbytes(record: Mapping[str, Any]) -> int:
    """Approximate wire size of a record: payload bytes plus 8 per number."""
    total = 0
    for key, value in record.items():
        total += len(key)
        items = value if isinstance(value, list) else [value]
        for item in items:
            total += len(item) if isinstance(item, bytes | str) else 8
    return total


class RecordReader:
    """Reads and validates the fields of one record for message ``tag``."""

    def __init__(self, record: object, tag: str) -> None:
        if not isinstance(record, Mapping):
            raise MessageFormatError(f"{tag}: record must be a mapping")
        self._record = record
        self._tag = tag
        self._seen: set[str] = set()
        if self._raw("msg") != tag:
            raise MessageFormatError(f"expected a {tag} message", stage=tag)

    def _raw(self, key: str) -> object:
        self._seen.add(key)
        if key not in self._record:
            raise MessageFormatError(f"{self._tag}: missing field {key!r}")
        return self._record[key]

    def _fail(self, key: str, what: str) -> MessageFormatError:
        return MessageFormatError(f"{self._tag}: field {key!r} {what}")

    def integer(self, key: str, lo: int = 0, hi: int = NODE_ID_MAX) -> int:
        """An integer (not a bool) in ``[lo, hi]``."""
        value = self._raw(key)
        if type(value) is not int:
            raise self._fail(key, "must be an int")
        if not lo <= value <= hi:
            raise self._fail(key, f"out of range [{lo}, {hi}]")
        return value

    def blob(
        self, key: str, length: int | None = None, max_len: int = 1 << 31
    ) -> bytes:
        """A bytes value, of exactly ``length`` bytes when given."""
        value = self._raw(key)
        if type(value) is not bytes:
            raise self._fail(key, "must be bytes")
        if length is not None and len(value) != length:
            raise self._fail(key, f"must be {length} bytes")
        if len(value) > max_len:
            raise self._fail(key, "too long")
        return value

    def node_ids(self, key: str, *, min_len: int = 0) -> tuple[int, ...]:
        """A strictly increasing list of node ids (so: distinct, canonical)."""
        value = self._raw(key)
        if not isinstance(value, list) or any(type(v) is not int for v in value):
            raise self._fail(key, "must be a list of ints")
        if not min_len <= len(value) <= MAX_NODES:
            raise self._fail(key, f"must hold between {min_len} and {MAX_NODES} ids")
        if any(not 0 <= v <= NODE_ID_MAX for v in value):
            raise self._fail(key, "holds an id outside [0, 2^64)")
        if any(a >= b for a, b in itertools.pairwise(value)):
            raise self._fail(key, "must be strictly increasing")
        return tuple(value)

    def blob_list(
        self, key: str, count: int | tuple[int, ...], length: int | None = None
    ) -> tuple[bytes, ...]:
        """A list of ``count`` bytes values (or any of the counts of a tuple),
        each of ``length`` bytes if given."""
        value = self._raw(key)
        if not isinstance(value, list) or any(type(v) is not bytes for v in value):
            raise self._fail(key, "must be a list of bytes")
        counts = count if isinstance(count, tuple) else (count,)
        if len(value) not in counts:
            wanted = " or ".join(str(c) for c in sorted(set(counts)))
            raise self._fail(key, f"must hold {wanted} items")
        if length is not None and any(len(v) != length for v in value):
            raise self._fail(key, f"items must be {length} bytes")
        return tuple(value)

    def done(self) -> None:
        """Refuse fields that were not read."""
        extra = set(self._record) - self._seen
        if extra:
            raise MessageFormatError(f"{self._tag}: unknown fields {sorted(extra)}")
