"""Reusable work buffers of one party, kept from one session to the next.

A fresh multi-megabyte numpy array costs more than the arithmetic done in it:
the allocator hands large blocks back to the operating system when they are
freed, so every new one is paged in again, one page fault per 4 KiB (at
n = 10, d = 100k an ``(n, d)`` array is 2 000 faults; measured, the page
faults took more time than the range check's arithmetic). A :class:`Scratch`
keeps each named buffer alive and hands out views of it, so a party that runs
session after session touches the same pages every time.

A buffer's contents are only valid until the next :meth:`Scratch.take` of the
same name; the holder must not keep a view across sessions.
"""

from __future__ import annotations

import numpy as np

from fedsec.mpc.ring import Ring


class Scratch:
    """Named ``uint64`` buffers, grown on demand and never shrunk."""

    def __init__(self) -> None:
        self._buffers: dict[str, Ring] = {}

    def take(self, name: str, shape: tuple[int, ...]) -> Ring:
        """A C-contiguous ``uint64`` array of ``shape`` backed by buffer ``name``.

        The contents are whatever the buffer last held (like ``np.empty``).
        """
        count = 1
        for n in shape:
            count *= n
        buf = self._buffers.get(name)
        if buf is None or buf.size < count:
            buf = self._buffers[name] = np.empty(count, dtype=np.uint64)
        return buf[:count].reshape(shape)
