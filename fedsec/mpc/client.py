"""Client side: secret-share an update to the three parties, encrypted to each.

The client encodes its update in fixed point and splits it as
``x = x_0 + x_1 + x_2``, with ``x_0`` and ``x_1`` expanded from fresh 32-byte
seeds (AES-256-CTR) and ``x_2 = x - x_0 - x_1``. Party ``i`` needs
``(x_i, x_{i+1})``: party 0 gets two seeds, parties 1 and 2 one seed and the
vector ``x_2``, so the client uploads two vectors instead of six. The integer
weight is split the same way (explicit words).

Each package is encrypted to its party with ECIES: a fresh ephemeral X25519
key per package, ``HKDF(X25519(eph, pk_party), info)`` as an AES-256-GCM key
(:mod:`fedsec.crypto.seal`),
and the header (version, party, session, client id, dimension, and the
session's public terms: fractional bits, clipping norm, noise, weight bound,
:func:`~fedsec.mpc.params.terms_bytes`) as associated data. A relaying
server learns the header only; it cannot read, redirect (to another party,
session or client id) or alter a package without the party noticing, nor
have the parties compute on it under other terms than the client agreed to.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fedsec.crypto.mac import one_time_mac
from fedsec.crypto.prg import KEY_BYTES, keystream_words
from fedsec.crypto.seal import OVERHEAD, seal, unseal_into
from fedsec.errors import CryptoError, ProtocolError
from fedsec.mpc.keys import PartyKeys
from fedsec.mpc.params import TERMS_SIZE, ClipSumConfig, terms_bytes
from fedsec.mpc.shares import PARTIES, Shared, nxt, stack

_MAGIC = b"FSMPC2"
# magic, party, session, client, dim, then the terms (terms_bytes)
_HEADER = struct.Struct(f"<6sBQQQ{TERMS_SIZE}s")
_SEEDED = (0, 1)  # components expanded from seeds; component 2 travels in full


@dataclass(frozen=True)
class ClientShare:
    """What party ``party`` holds of one client's input after decryption.

    Attributes
    ----------
    x
        The pair ``(x_i, x_{i+1})`` of the fixed-point update, shape ``(dim,)``.
    w
        The pair of the integer weight, shape ``(1,)``.
    digests
        Poly1305 tags (16 bytes) of each held component and its weight word,
        under one-time keys only the two holders of that component know
        (:func:`fedsec.crypto.mac.one_time_mac`); exchanged to detect a client that sent
        inconsistent shares.
    """

    x: Shared
    w: Shared
    digests: tuple[bytes, bytes]


def _header(party: int, session: int, client_id: int, dim: int, terms: bytes) -> bytes:
    return _HEADER.pack(_MAGIC, party, session, client_id, dim, terms)


_LABEL = b"fedsec/mpc/client-share/v2|"


def _words(x: npt.NDArray[np.uint64]) -> bytes:
    return np.ascontiguousarray(x, dtype="<u8").tobytes()


def client_share(
    update: npt.ArrayLike,
    weight: int,
    party_public_keys: Sequence[bytes],
    *,
    session: int,
    client_id: int,
    config: ClipSumConfig,
    clamp: float | None = None,
) -> list[bytes]:
    """Secret-share ``update`` with ``weight`` and encrypt one package per party.

    Parameters
    ----------
    update
        The 1-D model update (reals); encoded with ``config.encoder``.
    weight
        The client's integer weight (e.g. its number of examples).
    party_public_keys
        Raw X25519 public keys of parties 0, 1, 2.
    session, client_id
        Bound into each package (associated data).
    config
        The session's public terms the client agrees to (checked against its
        policy by the caller); bound into each package, so the parties can
        open it only when they run exactly these terms.
    clamp
        If given, every coordinate is first clamped to ``[-clamp, clamp]``:
        pass ``ClipSumConfig.coordinate_bound(dim)``, the bound the parties
        check (a client with a coordinate beyond three times it is left out).

    Returns
    -------
    list[bytes]
        Package ``i`` is for party ``i``.
    """
    values = np.ravel(np.asarray(update, dtype=np.float64))
    if clamp is not None:
        values = np.clip(values, -clamp, clamp)
    x = config.encoder.encode(values)
    dim = int(x.shape[0])
    if len(party_public_keys) != PARTIES:
        raise ProtocolError("need the public keys of exactly three parties")
    seeds = [os.urandom(KEY_BYTES) for _ in _SEEDED]
    x2 = x - keystream_words(seeds[0], 0, dim) - keystream_words(seeds[1], 0, dim)
    w_rand = np.frombuffer(os.urandom(16), dtype=np.uint64)
    w = np.array(
        [w_rand[0], w_rand[1], (weight - int(w_rand[0]) - int(w_rand[1])) % 2**64],
        dtype=np.uint64,
    )
    comps: list[bytes] = [seeds[0], seeds[1], _words(x2)]
    packages = []
    terms = terms_bytes(config)
    for i in range(PARTIES):
        j = nxt(i)
        header = _header(i, session, client_id, dim, terms)
        held = sorted((i, j), key=lambda k: k not in _SEEDED)  # seeds first
        body = _words(w[[i, j]]) + b"".join(comps[k] for k in held)
        packages.append(header + seal(party_public_keys[i], _LABEL, header, body))
    return packages


@dataclass(frozen=True)
class ClientInputs:
    """All client inputs at one party, as the program consumes them.

    Attributes
    ----------
    ids
        Client ids, one per row.
    digests
        Per row, the digests of the two held components.
    x
        ``(n, dim)`` shares of the updates.
    w
        ``(n,)`` shares of the weights.
    """

    ids: tuple[int, ...]
    digests: tuple[tuple[bytes, bytes], ...]
    x: Shared
    w: Shared

    @classmethod
    def from_shares(cls, shares: Mapping[int, ClientShare]) -> ClientInputs:
        """Stack individually opened shares (tests; copies the data)."""
        ids = tuple(sorted(shares))
        return cls(
            ids,
            tuple(shares[c].digests for c in ids),
            stack([shares[c].x for c in ids]),
            stack([shares[c].w[0] for c in ids]),
        )


class ShareBatch:
    """The decrypted inputs of up to ``capacity`` clients at one party.

    Components are written straight into preallocated ``(capacity, dim)``
    matrices (no per-client allocation, no stacking): the party's hot path.

    Parameters
    ----------
    keys
        The party's keys.
    capacity
        Maximum number of clients.
    dim, config
        Expected dimension and terms (checked against every header).
    """

    def __init__(
        self, keys: PartyKeys, capacity: int, dim: int, config: ClipSumConfig
    ) -> None:
        self.keys = keys
        self.dim = dim
        self.terms = terms_bytes(config)
        self._a = np.empty((capacity, dim), dtype=np.uint64)
        self._b = np.empty((capacity, dim), dtype=np.uint64)
        self._w = np.empty((capacity, 2), dtype=np.uint64)
        self._scratch = bytearray(16 + 2 * KEY_BYTES + 8 * dim)
        self.ids: list[int] = []
        self.digests: list[tuple[bytes, bytes]] = []
        self._mac_keys: tuple[int, tuple[bytes, bytes]] | None = None

    def fits(self, capacity: int, dim: int, config: ClipSumConfig) -> bool:
        """Whether this batch can be :meth:`reset` for the given shape and terms."""
        return (
            self._a.shape[0] >= capacity
            and self.dim == dim
            and self.terms == terms_bytes(config)
        )

    def reset(self) -> None:
        """Forget the clients (keep the buffers: a party reuses them each round)."""
        self.ids = []
        self.digests = []

    def add(self, package: bytes, *, session: int, client_id: int) -> None:
        """Decrypt ``package`` from ``client_id`` into the next free row.

        Raises
        ------
        CryptoError
            If the package is not for this party, session, client, dimension
            or terms, or was altered (one opaque error at the trust
            boundary), or the batch is full or the client is a duplicate.
        """
        i = self.keys.index
        if len(self.ids) >= self._a.shape[0] or client_id in self.ids:
            raise CryptoError("client package rejected", stage="open", node_id=i)
        header = _header(i, session, client_id, self.dim, self.terms)
        j = nxt(i)
        held = sorted((i, j), key=lambda k: k not in _SEEDED)
        size = 16 + sum(KEY_BYTES if k in _SEEDED else 8 * self.dim for k in held)
        hlen = _HEADER.size
        if len(package) != hlen + OVERHEAD + size or package[:hlen] != header:
            raise CryptoError("client package rejected", stage="open", node_id=i)
        pkg = memoryview(package)
        body = memoryview(self._scratch)[:size]
        try:
            unseal_into(self.keys.secret, _LABEL, header, pkg[hlen:], body)
        except CryptoError:
            raise CryptoError(
                "client package rejected", stage="open", node_id=i
            ) from None
        if self._mac_keys is None or self._mac_keys[0] != session:
            self._mac_keys = (session, self.keys.digest_keys(session))
        mac_keys = self._mac_keys[1]
        row = len(self.ids)
        self._w[row] = np.frombuffer(body[:16], dtype="<u8")
        pos = 16
        digest: dict[int, bytes] = {}
        for k in held:
            target = self._a[row] if k == i else self._b[row]
            word = body[0:8] if k == i else body[8:16]
            tag = one_time_mac(mac_keys[0] if k == i else mac_keys[1], client_id)
            if k in _SEEDED:
                seed = bytes(body[pos : pos + KEY_BYTES])
                keystream_words(seed, 0, self.dim, out=target)
                tag.update(seed)
                pos += KEY_BYTES
            else:
                vec = body[pos : pos + 8 * self.dim]
                target[:] = np.frombuffer(vec, dtype="<u8")
                tag.update(vec)  # first: 16-byte aligned input is hashed in place
                pos += 8 * self.dim
            tag.update(word)
            digest[k] = tag.finalize()
        self.ids.append(client_id)
        self.digests.append((digest[i], digest[j]))

    def inputs(self) -> ClientInputs:
        """The clients added so far (views into the batch, no copy)."""
        n = len(self.ids)
        return ClientInputs(
            tuple(self.ids),
            tuple(self.digests),
            Shared(self._a[:n], self._b[:n]),
            Shared(self._w[:n, 0], self._w[:n, 1]),
        )


def open_client_share(
    keys: PartyKeys,
    package: bytes,
    *,
    session: int,
    client_id: int,
    dim: int,
    config: ClipSumConfig,
) -> ClientShare:
    """Decrypt one package (see :meth:`ShareBatch.add`) into a :class:`ClientShare`."""
    batch = ShareBatch(keys, 1, dim, config)
    batch.add(package, session=session, client_id=client_id)
    got = batch.inputs()
    return ClientShare(x=got.x[0], w=got.w[0:1], digests=got.digests[0])
