"""Bit-packing of k-bit ring elements into ``k`` bits each.

Layout: the vector is zero-padded to a multiple of 32 and cut into 32
contiguous blocks of ``G = d/32`` elements. Element ``g`` of block ``i``
occupies bits ``[i*k, i*k + k)`` of group ``g``, a string of ``32*k`` bits held
in ``k`` little-endian uint32 words; word ``j`` of every group is stored as one
contiguous plane of ``G`` words. Every operation therefore runs on contiguous
uint32 arrays (the Python loop is over the 32 block positions, never over
data), and an upload of ``d`` elements is ``4 * k * ceil(d/32)`` bytes, i.e.
``d*k/8`` plus at most 124 bytes of padding.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fedsec.errors import CryptoError

U32Array = npt.NDArray[np.uint32]
_GROUP = 32


def packed_size(count: int, bits: int) -> int:
    """Bytes taken by ``count`` packed elements of ``bits`` bits."""
    return 4 * bits * (-(-count // _GROUP))


def _layout(bits: int) -> list[tuple[int, int, bool]]:
    """(word, shift, spills into the next word) of each block position."""
    out = []
    for i in range(_GROUP):
        word, shift = divmod(i * bits, 32)
        out.append((word, shift, shift + bits > 32))
    return out


def _check_bits(bits: int) -> None:
    if not 1 <= bits <= 32:
        raise CryptoError("bits must be in [1, 32]")


def pack(values: U32Array, bits: int) -> bytes:
    """Pack uint32 ``values`` (each ``< 2^bits``) into :func:`packed_size` bytes.

    Raises
    ------
    CryptoError
        If ``bits`` is outside ``[1, 32]`` or a value does not fit in ``bits``.
    """
    _check_bits(bits)
    if bits < 32 and values.size and int(values.max()) >> bits:
        raise CryptoError(f"value does not fit in {bits} bits")
    count = values.size
    groups = -(-count // _GROUP)
    flat = np.zeros(groups * _GROUP, dtype=np.uint32)
    flat[:count] = values
    blocks = flat.reshape(_GROUP, groups)
    planes = np.zeros((bits + 1, groups), dtype="<u4")  # one spare plane
    tmp = np.empty(groups, dtype=np.uint32)
    for i, (word, shift, spill) in enumerate(_layout(bits)):
        np.left_shift(blocks[i], np.uint32(shift), out=tmp)
        planes[word] |= tmp
        if spill:
            np.right_shift(blocks[i], np.uint32(32 - shift), out=tmp)
            planes[word + 1] |= tmp
    return planes[:bits].tobytes()


def unpack(data: bytes, bits: int, count: int) -> U32Array:
    """Inverse of :func:`pack`: ``count`` uint32 values from ``data``.

    Raises
    ------
    CryptoError
        If ``data`` is not exactly :func:`packed_size` bytes.
    """
    out = np.empty(-(-count // _GROUP) * _GROUP, dtype=np.uint32)
    _unpack_into(data, bits, count, out, add=False)
    return out[:count]


def unpack_add(data: bytes, bits: int, acc: U32Array) -> None:
    """``acc += unpack(data)`` modulo 2^32, in place, without a full temporary.

    ``acc`` must have ``32 * ceil(count / 32)`` elements (padding included).
    """
    _unpack_into(data, bits, acc.size, acc, add=True)


def padded_length(count: int) -> int:
    """Length of an accumulator accepted by :func:`unpack_add`."""
    return -(-count // _GROUP) * _GROUP


def _unpack_into(data: bytes, bits: int, count: int, out: U32Array, add: bool) -> None:
    _check_bits(bits)
    if len(data) != packed_size(count, bits):
        raise CryptoError("packed data has the wrong length")
    groups = -(-count // _GROUP)
    if out.size != groups * _GROUP:
        raise CryptoError("accumulator has the wrong length")
    planes = np.frombuffer(data, dtype="<u4").reshape(bits, groups)
    blocks = out.reshape(_GROUP, groups)
    mask = np.uint32((1 << bits) - 1) if bits < 32 else np.uint32(0xFFFFFFFF)
    val = np.empty(groups, dtype=np.uint32)
    tmp = np.empty(groups, dtype=np.uint32)
    for i, (word, shift, spill) in enumerate(_layout(bits)):
        np.right_shift(planes[word], np.uint32(shift), out=val)
        if spill:
            np.left_shift(planes[word + 1], np.uint32(32 - shift), out=tmp)
            val |= tmp
        val &= mask
        if add:
            blocks[i] += val
        else:
            blocks[i] = val
