"""A data holder's rows, secret-shared to the three compute parties.

The holder encodes its ``rows x cols`` block in fixed point and splits it as
``X = X_0 + X_1 + X_2`` with ``X_0, X_1`` expanded from fresh 32-byte seeds
(AES-256-CTR) and ``X_2 = X - X_0 - X_1``: party 0 gets two seeds, parties 1
and 2 one seed and ``X_2`` (as the clip-and-sum clients do, :mod:`fedsec.mpc.client`).
Each package is sealed to its party (:mod:`fedsec.crypto.seal`) with a header
binding the party, session, holder, shape, kind (features or labels) and
fractional bits, so a relaying server can neither read, redirect nor reshape
it. Party side: :func:`open_block` returns the party's pair of components.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from fedsec.crypto.prg import KEY_BYTES, keystream_words
from fedsec.crypto.seal import OVERHEAD, seal, unseal
from fedsec.errors import CryptoError, ProtocolError
from fedsec.mpc.ring import FixedPoint, Ring
from fedsec.mpc.shares import PARTIES, Shared, nxt

_LABEL = b"fedsec/vertical/rows/v1|"
_HEADER = struct.Struct("<6sBQBQQBB")  # magic, party, session, holder, rows, cols,
_MAGIC = b"FSVRT1"  #                     kind, frac bits
FEATURES, LABELS, TAGS = 0, 1, 2
MAX_ROWS = 1 << 26
MAX_COLS = 4096


def header(
    party: int, session: int, holder: int, shape: tuple[int, int], kind: int, f: int
) -> bytes:
    """The public header a package is bound to."""
    return _HEADER.pack(_MAGIC, party, session, holder, shape[0], shape[1], kind, f)


def share_block(
    values: npt.ArrayLike,
    party_public_keys: Sequence[bytes],
    *,
    session: int,
    holder: int,
    kind: int,
    encoder: FixedPoint,
) -> list[bytes]:
    """Secret-share a 2-D block of reals; package ``i`` (header first) is for ``i``."""
    x = encoder.encode(np.asarray(values, dtype=np.float64))
    return share_words(
        x,
        party_public_keys,
        session=session,
        holder=holder,
        kind=kind,
        frac_bits=encoder.frac_bits,
    )


def share_words(
    x: Ring,
    party_public_keys: Sequence[bytes],
    *,
    session: int,
    holder: int,
    kind: int,
    frac_bits: int,
) -> list[bytes]:
    """Secret-share a 2-D block of ring elements (e.g. PSI tags as 4 words each)."""
    if x.ndim != 2 or not (0 < x.shape[0] <= MAX_ROWS and 0 < x.shape[1] <= MAX_COLS):
        raise ProtocolError("a block is rows x columns, both in range", stage="share")
    if len(party_public_keys) != PARTIES:
        raise ProtocolError("need the public keys of exactly three parties")
    count = x.size
    seeds = [os.urandom(KEY_BYTES), os.urandom(KEY_BYTES)]
    with np.errstate(over="ignore"):
        x2 = (
            x.ravel()
            - keystream_words(seeds[0], 0, count)
            - keystream_words(seeds[1], 0, count)
        )
    comps = [seeds[0], seeds[1], np.ascontiguousarray(x2, dtype="<u8").tobytes()]
    shape = (int(x.shape[0]), int(x.shape[1]))
    out = []
    for i in range(PARTIES):
        h = header(i, session, holder, shape, kind, frac_bits)
        held = (i, nxt(i))  # party 2 holds (x_2, x_0): the full vector first
        out.append(
            h + seal(party_public_keys[i], _LABEL, h, b"".join(comps[k] for k in held))
        )
    return out


def open_block(
    secret: X25519PrivateKey,
    index: int,
    package: bytes,
    *,
    session: int,
    holder: int,
    kind: int,
    frac_bits: int,
) -> Shared:
    """Party ``index``'s pair of components of a holder's block.

    Raises
    ------
    CryptoError
        If the package is not for this party, session, holder, kind or
        encoding, or was altered (one opaque error).
    """
    size = _HEADER.size
    if len(package) < size + OVERHEAD:
        raise CryptoError("package rejected", stage="open", node_id=index)
    magic, party, sess, hold, rows, cols, knd, f = _HEADER.unpack(package[:size])
    ok = (magic, party, sess, hold, knd, f) == (
        _MAGIC,
        index,
        session,
        holder,
        kind,
        frac_bits,
    )
    if not ok or not (0 < rows <= MAX_ROWS and 0 < cols <= MAX_COLS):
        raise CryptoError("package rejected", stage="open", node_id=index)
    held = (index, nxt(index))
    want = sum(KEY_BYTES if k < 2 else 8 * rows * cols for k in held)
    if len(package) != size + OVERHEAD + want:  # bounded before decrypting
        raise CryptoError("package rejected", stage="open", node_id=index)
    body = unseal(secret, _LABEL, package[:size], memoryview(package)[size:])
    parts, pos = [], 0
    for k in held:
        if k < 2:
            parts.append(keystream_words(body[pos : pos + KEY_BYTES], 0, rows * cols))
            pos += KEY_BYTES
        else:
            n = 8 * rows * cols
            parts.append(
                np.frombuffer(body[pos : pos + n], dtype="<u8").astype(np.uint64)
            )
            pos += n
    return Shared(parts[0].reshape(rows, cols), parts[1].reshape(rows, cols))
