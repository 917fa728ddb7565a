"""Correlated randomness from pairwise PRF keys, without a trusted dealer.

Araki et al. (CCS 2016, section 2.2): party ``i`` holds two 256-bit keys,
``k_i`` (shared with party ``i - 1``) and ``k_{i+1}`` (shared with party
``i + 1``). Evaluating the PRF on a counter both holders advance in lockstep
gives

* a *zero sharing* ``alpha_i = F(k_i) - F(k_{i+1})`` with
  ``alpha_0 + alpha_1 + alpha_2 = 0``, uniform to any single party, used to
  re-randomise products before they are sent;
* the XOR variant ``F(k_i) ^ F(k_{i+1})`` for the Boolean sharing;
* a *pair-random* word known to exactly two neighbouring parties.

The provider is an explicit object (a :class:`typing.Protocol`) passed to the
runtime, never a module-level singleton.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from fedsec.crypto.prg import KEY_BYTES, keystream_words
from fedsec.errors import ProtocolError
from fedsec.mpc.ring import Ring
from fedsec.mpc.shares import nxt, prv


class CorrelatedRandomness(Protocol):
    """Source of correlated randomness for one party."""

    def zero_share(self, shape: tuple[int, ...]) -> Ring:
        """This party's share of an additive sharing of zero."""
        ...

    def zero_share_xor(self, shape: tuple[int, ...]) -> Ring:
        """This party's share of an XOR sharing of zero."""
        ...

    def pair_random(
        self, peer: int, shape: tuple[int, ...], out: Ring | None = None
    ) -> Ring:
        """Uniform words known to this party and its neighbour ``peer`` only.

        With ``out`` (a C-contiguous ``uint64`` array of ``shape``) the words
        are written there instead of into a fresh array.
        """
        ...


class _Stream:
    """A PRF key and the counter both of its holders advance in lockstep.

    Small draws (the re-randomisation of a few scalars, dozens of times per
    program) are served from a block of :data:`_BLOCK_WORDS` words drawn at
    once: a fresh AES context per draw cost more than the words. Both holders
    make the same draws in the same order, so they take the same words; no
    word is handed out twice.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ProtocolError("PRF keys are 32 bytes", stage="setup")
        self._key = key
        self._counter = 0
        self._block: Ring = np.empty(0, dtype=np.uint64)
        self._used = 0

    def draw(self, shape: tuple[int, ...], out: Ring | None = None) -> Ring:
        count = 1
        for n in shape:
            count *= n
        if out is not None and (out.shape != shape or not out.flags.c_contiguous):
            raise ProtocolError("output buffer of the wrong shape", stage="setup")
        if out is None and count <= _SMALL_DRAW:
            if self._used + count > self._block.size:
                self._block = keystream_words(self._key, self._counter, _BLOCK_WORDS)
                self._counter += 1
                self._used = 0
            words = self._block[self._used : self._used + count].copy()
            self._used += count
            return words.reshape(shape)
        flat = None if out is None else out.reshape(-1)
        words = keystream_words(self._key, self._counter, count, out=flat)
        self._counter += 1
        return words.reshape(shape)


_SMALL_DRAW = 1024
_BLOCK_WORDS = 16384


class PrfRandomness:
    """Correlated randomness for party ``index`` from its two pairwise keys.

    Parameters
    ----------
    index
        This party's index in {0, 1, 2}.
    key_prev
        ``k_i``, the key shared with party ``index - 1``.
    key_next
        ``k_{i+1}``, the key shared with party ``index + 1``.

    Notes
    -----
    All parties must request randomness in the same order (the engine is
    SPMD: every party runs the same program), otherwise the counters of two
    holders of a key diverge and the sharings of zero stop summing to zero.
    """

    def __init__(self, index: int, key_prev: bytes, key_next: bytes) -> None:
        self.index = index
        self._prev = _Stream(key_prev)
        self._next = _Stream(key_next)

    def zero_share(self, shape: tuple[int, ...]) -> Ring:
        """``F(k_i) - F(k_{i+1})``."""
        return self._prev.draw(shape) - self._next.draw(shape)

    def zero_share_xor(self, shape: tuple[int, ...]) -> Ring:
        """``F(k_i) ^ F(k_{i+1})``."""
        return self._prev.draw(shape) ^ self._next.draw(shape)

    def pair_random(
        self, peer: int, shape: tuple[int, ...], out: Ring | None = None
    ) -> Ring:
        """Words from the key shared with neighbour ``peer`` (into ``out`` if given)."""
        if peer == prv(self.index):
            return self._prev.draw(shape, out)
        if peer == nxt(self.index):
            return self._next.draw(shape, out)
        raise ProtocolError(f"party {peer} is not a neighbour", node_id=self.index)
