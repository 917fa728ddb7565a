"""Keyed pseudo-random generators and key derivation used inside the MPC engine.

AES-256 in counter mode keyed with a 256-bit key is the PRF ``F_k(counter)`` of
Araki et al. (CCS 2016, section 2.2): the output block at counter ``c`` is
``AES_k(c)``, so two parties holding the same key and the same counter draw
identical words without talking. Keys come from HKDF-SHA256 with a distinct
``info`` label per purpose and per session.
"""

from __future__ import annotations

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from fedsec.mpc.ring import Ring

KEY_BYTES = 32


def hkdf(secret: bytes, info: bytes, length: int = KEY_BYTES) -> bytes:
    """Derive ``length`` bytes from ``secret`` for the purpose named by ``info``."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(
        secret
    )


def keystream_words(
    key: bytes, nonce: int, count: int, out: Ring | None = None
) -> Ring:
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
    iv = (nonce % 2**64).to_bytes(8, "big") + bytes(8)
    enc = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    buf = memoryview(out.data).cast("B")
    total = 8 * count
    # update_into wants 15 spare output bytes: fill all but the last 16 bytes
    # in place, then the tail through a small scratch buffer.
    body = max(total - 16, 0)
    zeros = memoryview(bytes(min(max(body, 1), _CHUNK)))
    pos = 0
    while pos < body:
        n = min(len(zeros), body - pos)
        enc.update_into(zeros[:n], buf[pos:])
        pos += n
    tail = bytearray(48)
    n = enc.update_into(bytes(total - body), tail)
    buf[body:] = tail[:n]
    return out


_CHUNK = 1 << 22
