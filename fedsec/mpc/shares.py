"""Replicated 2-out-of-3 secret shares over Z_2^64 (one party's view).

Araki, Furukawa, Lindell, Nof and Ohara, "High-Throughput Semi-Honest Secure
Three-Party Computation with an Honest Majority", CCS 2016. A secret ``x`` is
split as ``x = x_0 + x_1 + x_2 (mod 2^64)`` with ``x_0, x_1`` uniform; party
``i`` holds the pair ``(x_i, x_{i+1})`` (indices modulo 3). Any two parties
can reconstruct, any single party sees two uniformly random words.

The same layout with XOR instead of addition is the Boolean sharing of ABY3
(Mohassel and Rindal, CCS 2018); :class:`Shared` serves both, and the caller
keeps track of which one an object is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from fedsec.errors import ProtocolError
from fedsec.mpc.ring import Ring

PARTIES = 3
Index = int | slice | list[int] | tuple[slice | int, ...]
"""Index types accepted by :meth:`Shared.__getitem__`."""


def nxt(i: int) -> int:
    """Index of the party after ``i``."""
    return (i + 1) % PARTIES


def prv(i: int) -> int:
    """Index of the party before ``i``."""
    return (i - 1) % PARTIES


@dataclass(frozen=True)
class Shared:
    """One party's two components ``(x_i, x_{i+1})`` of a replicated sharing.

    Attributes
    ----------
    a
        The component ``x_i`` (also held by party ``i - 1``).
    b
        The component ``x_{i+1}`` (also held by party ``i + 1``).
    """

    a: Ring
    b: Ring

    def __post_init__(self) -> None:
        if self.a.shape != self.b.shape or self.a.dtype != np.uint64:
            raise ProtocolError("share components differ in shape or are not uint64")

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the shared array."""
        return tuple(self.a.shape)

    def __add__(self, other: Shared) -> Shared:
        return Shared(self.a + other.a, self.b + other.b)

    def __sub__(self, other: Shared) -> Shared:
        return Shared(self.a - other.a, self.b - other.b)

    def __neg__(self) -> Shared:
        return Shared(-self.a, -self.b)

    def __xor__(self, other: Shared) -> Shared:
        return Shared(self.a ^ other.a, self.b ^ other.b)

    def __getitem__(self, key: Index) -> Shared:
        return Shared(np.asarray(self.a[key]), np.asarray(self.b[key]))

    def mul_public(self, c: Ring | int) -> Shared:
        """Multiply by a public ring element (local; no truncation)."""
        k = np.uint64(c) if isinstance(c, int) else c
        return Shared(self.a * k, self.b * k)

    def and_public(self, c: Ring | int) -> Shared:
        """Bitwise AND with a public word (Boolean sharing; local)."""
        k = np.uint64(c) if isinstance(c, int) else c
        return Shared(self.a & k, self.b & k)

    def shift_left(self, bits: int) -> Shared:
        """Shift every component left (valid for both sharings)."""
        k = np.uint64(bits)
        return Shared(self.a << k, self.b << k)

    def shift_right(self, bits: int) -> Shared:
        """Logical right shift (valid for the Boolean sharing only)."""
        k = np.uint64(bits)
        return Shared(self.a >> k, self.b >> k)

    def sum(self, axis: int) -> Shared:
        """Sum along ``axis`` (arithmetic sharing; local)."""
        return Shared(
            self.a.sum(axis=axis, dtype=np.uint64),
            self.b.sum(axis=axis, dtype=np.uint64),
        )


def stack(parts: list[Shared], axis: int = 0) -> Shared:
    """Stack shares of equal shape along a new axis (local)."""
    return Shared(
        np.stack([p.a for p in parts], axis=axis),
        np.stack([p.b for p in parts], axis=axis),
    )


def concat(parts: list[Shared]) -> Shared:
    """Concatenate 1-D shares (local)."""
    return Shared(
        np.concatenate([p.a for p in parts]), np.concatenate([p.b for p in parts])
    )


def public_component(index: int, value: Ring, owner: int) -> Shared:
    """Share a value ``value`` that parties ``owner - 1`` and ``owner`` both know.

    The trivial sharing with ``x_owner = value`` and the other two components
    zero; party ``index`` gets its pair of it. Used to re-enter a component of
    another sharing (ABY3's A2B and bit injection) and to add public constants.
    """
    zero = np.zeros_like(value)
    a = value if index == owner else zero
    b = value if nxt(index) == owner else zero
    return Shared(a, b)


def split(x: Ring) -> tuple[Ring, Ring, Ring]:
    """Split ``x`` into three additive components, two of them uniform.

    Randomness from ``os.urandom``. Clients use the seeded variant in
    :mod:`fedsec.mpc.client`; this one serves tests and local inputs.
    """
    n = int(np.prod(x.shape))
    x0 = np.frombuffer(os.urandom(8 * n), dtype=np.uint64).reshape(x.shape)
    x1 = np.frombuffer(os.urandom(8 * n), dtype=np.uint64).reshape(x.shape)
    return x0, x1, np.asarray(x - x0 - x1, dtype=np.uint64)


def views(components: tuple[Ring, Ring, Ring]) -> list[Shared]:
    """The three parties' pairs ``(x_i, x_{i+1})`` of a component triple."""
    return [Shared(components[i], components[nxt(i)]) for i in range(PARTIES)]
