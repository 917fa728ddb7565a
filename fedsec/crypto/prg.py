"""fedsec's one pseudo-random generator: the AES-256-CTR keystream.

Every protocol expands keys into words here.

- **Masks** (:class:`MaskGenerator`). Bonawitz et al. (CCS 2017) expand a seed
  into a mask vector with a PRG; here it is AES-256 in counter mode (all-zero
  IV) keyed by the full 256-bit seed, so each seed must be used for one purpose
  only (seeds come from HKDF with a distinct label per purpose and round). The
  keystream is written straight into a preallocated buffer (``update_into``),
  which costs about 0.6 ms per million uint32 on a machine with AES-NI, and is
  added to or subtracted from an accumulator with numpy's natural wrap-around.
- **Keyed streams** (:func:`keystream_words`): the PRF ``F_k(counter)`` of
  Araki et al. (CCS 2016, section 2.2) that the MPC engine's correlated
  randomness, its seeded shares and the vertical trainer's batch schedule use:
  the block at counter ``nonce || c`` is ``AES_k(nonce || c)``, so two parties
  holding the same key draw identical uint64 words without talking, and
  distinct nonces give disjoint streams.
- **Secret permutations** (:func:`permutation_of`): a permutation from such
  words.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from fedsec.errors import CryptoError

SEED_BYTES = 32
KEY_BYTES = SEED_BYTES
_IV = bytes(16)
_CHUNK = 1 << 22
_BLOCK = 16

U32Array = npt.NDArray[np.uint32]


_ZEROS = np.zeros(0, dtype=np.uint8)  # the plaintext of every keystream
_ZEROS_LOCK = threading.Lock()
_LOCAL = threading.local()


def _zeros(nbytes: int) -> npt.NDArray[np.uint8]:
    """A read-only all-zero buffer of at least ``nbytes``, shared process-wide."""
    global _ZEROS
    with _ZEROS_LOCK:
        if _ZEROS.size < nbytes:
            _ZEROS = np.zeros(nbytes, dtype=np.uint8)
            _ZEROS.flags.writeable = False
        return _ZEROS


class MaskGenerator:
    """Expands seeds into uint32 / uint64 keystreams, reusing its buffers.

    An array returned by :meth:`uint32` is a view into the generator's buffer:
    it is valid until the next call. Use :meth:`add_into` / :meth:`sub_into`
    to fold a mask into an accumulator without a copy. :func:`thread_generator`
    returns one generator per thread, so that its buffer is allocated (and its
    pages faulted in) once per process rather than once per message.
    """

    def __init__(self) -> None:
        self._out = np.zeros(0, dtype=np.uint8)

    def _keystream(self, seed: bytes, nbytes: int) -> npt.NDArray[np.uint8]:
        if len(seed) != SEED_BYTES:
            raise CryptoError(f"PRG seed must be {SEED_BYTES} bytes")
        zeros = _zeros(nbytes)
        if self._out.size < nbytes + _BLOCK:
            self._out = np.empty(nbytes + _BLOCK, dtype=np.uint8)
        encryptor = _ctr(seed, _IV)
        encryptor.update_into(zeros.data[:nbytes], self._out.data)
        return self._out[:nbytes]

    def uint32(self, seed: bytes, count: int) -> U32Array:
        """Return ``count`` pseudo-random uint32 (a view, valid until next call)."""
        return self._keystream(seed, 4 * count).view("<u4")

    def uint64(self, seed: bytes, count: int) -> npt.NDArray[np.uint64]:
        """Return ``count`` pseudo-random uint64 (a view, valid until next call)."""
        return self._keystream(seed, 8 * count).view("<u8")

    def add_into(self, acc: U32Array, seed: bytes) -> None:
        """``acc += PRG(seed)`` modulo 2^32, in place."""
        np.add(acc, self.uint32(seed, acc.size), out=acc)

    def sub_into(self, acc: U32Array, seed: bytes) -> None:
        """``acc -= PRG(seed)`` modulo 2^32, in place."""
        np.subtract(acc, self.uint32(seed, acc.size), out=acc)


def thread_generator() -> MaskGenerator:
    """This thread's :class:`MaskGenerator` (views valid until its next call)."""
    gen: MaskGenerator | None = getattr(_LOCAL, "generator", None)
    if gen is None:
        gen = _LOCAL.generator = MaskGenerator()
    return gen


def prg_uint32(seed: bytes, count: int) -> U32Array:
    """Return a fresh array of ``count`` pseudo-random uint32 from ``seed``."""
    return MaskGenerator().uint32(seed, count).copy()


def keystream_words(
    key: bytes, nonce: int, count: int, out: npt.NDArray[np.uint64] | None = None
) -> npt.NDArray[np.uint64]:
    """Return ``count`` pseudo-random uint64 words: AES-256-CTR under ``key``.

    Parameters
    ----------
    key
        A 32-byte key.
    nonce
        A 64-bit stream index; the 128-bit counter block is ``nonce || 0^64``,
        so distinct nonces give disjoint streams of up to 2^64 blocks each.
    count
        Number of words.
    out
        Optional contiguous uint64 array of ``count`` words to fill (no
        allocation on the hot path).
    """
    if out is None:
        out = np.empty(count, dtype=np.uint64)
    if out.shape != (count,) or not out.flags.c_contiguous or out.dtype != np.uint64:
        raise ValueError("out must be a contiguous uint64 array of count words")
    if count == 0:
        return out
    enc = _ctr(key, (nonce % 2**64).to_bytes(8, "big") + bytes(8))
    buf = memoryview(out.data).cast("B")
    total = 8 * count
    # update_into wants 15 spare output bytes: fill all but the last 16 bytes
    # in place, then the tail through a small scratch buffer.
    body = max(total - _BLOCK, 0)
    zeros = _zeros(min(max(body, 1), _CHUNK)).data
    pos = 0
    while pos < body:
        n = min(len(zeros), body - pos)
        enc.update_into(zeros[:n], buf[pos:])
        pos += n
    tail = bytearray(3 * _BLOCK)
    n = enc.update_into(bytes(total - body), tail)
    buf[body:] = tail[:n]
    return out


def permutation_of(words: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    """The permutation that sorts ``words``: uniform when they are uniform.

    With ``n`` uniform 64-bit words a tie has probability below n^2 / 2^65,
    and a stable sort breaks it by position.
    """
    return np.argsort(words, kind="stable").astype(np.int64)


def secret_permutation(n: int) -> npt.NDArray[np.int64]:
    """A uniformly random permutation of ``range(n)``, keyed from ``os.urandom``."""
    return permutation_of(keystream_words(os.urandom(KEY_BYTES), 0, n))


def _ctr(key: bytes, iv: bytes) -> Any:
    if len(key) != KEY_BYTES:
        raise CryptoError(f"PRG key must be {KEY_BYTES} bytes")
    return Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
