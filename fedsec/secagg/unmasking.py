"""Server-side unmasking: reconstruct the revealed secrets, remove the masks.

Bonawitz et al. (CCS 2017), round 4: the server reconstructs, from ``t``
shares each, the self-mask seed of every survivor and the mask key of every
dropped participant, subtracts the survivors' self masks and cancels the
pairwise masks that survivors added for dropped neighbours. The Lagrange
coefficients of each distinct holder set are computed once.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fedsec.crypto import shamir
from fedsec.crypto.kdf import X25519KeyPair
from fedsec.crypto.prg import MaskGenerator
from fedsec.errors import CryptoError
from fedsec.secagg import keyschedule as ks
from fedsec.secagg.rounds import WEIGHT_MODULUS
from fedsec.secagg.server_state import AggregateResult, KeySetState, RoundState


class UnmaskError(CryptoError):
    """Some secret cannot be reconstructed (too few or inconsistent shares)."""


def unmask_sum(r: RoundState, k: KeySetState, prg: MaskGenerator) -> AggregateResult:
    """Remove every mask from the round's accumulator and dequantise the sum.

    Raises
    ------
    UnmaskError
        If a secret has fewer than ``t`` shares, the shares are inconsistent,
        or a reconstructed mask key does not match its advertised public key.
    """
    lagrange: dict[tuple[int, ...], npt.NDArray[np.int64]] = {}
    for v in r.survivors:
        b = _secret(v, r.seed_shares, k, lagrange)
        _apply(r, prg, ks.self_mask_seed(b, k.key_set, r.round, r.slot, v), True)
    for u in r.dropped:
        pair = X25519KeyPair.from_secret(_secret(u, r.key_shares, k, lagrange))
        if pair.public != ks.mask_public(k.adverts[u].mask_pks, r.slot):
            raise UnmaskError("reconstructed mask key does not match", node_id=u)
        mates = sorted(k.closed(u) & set(r.survivors))
        peers = [(v, ks.mask_public(k.adverts[v].mask_pks, r.slot)) for v in mates]
        seeds = ks.pairwise_seeds(pair.secret, u, peers, k.key_set, r.round, r.slot)
        for v, seed in zip(mates, seeds, strict=True):
            _apply(r, prg, seed, v < u)  # v added +PRG iff v < u
    body = r.acc[: r.dim]
    np.bitwise_and(body, np.uint32(r.quantizer.ring_mask), out=body)
    return AggregateResult(
        round=r.round,
        weighted_sum=r.quantizer.dequantize_sum(body),
        ring_sum=body,
        total_weight=r.weight,
        survivors=r.survivors,
        dropped=r.dropped,
    )


def _secret(
    target: int,
    pool: dict[int, dict[int, bytes]],
    k: KeySetState,
    lagrange: dict[tuple[int, ...], npt.NDArray[np.int64]],
) -> bytes:
    held = pool.get(target, {})
    holders = sorted(held)[: k.threshold]
    if len(holders) < k.threshold:
        raise UnmaskError("too few shares after unmasking", node_id=target)
    xs = tuple(k.x_of(h) for h in holders)
    if xs not in lagrange:
        lagrange[xs] = shamir.lagrange_at_zero(xs)
    rows = np.stack([ks.decode_share(held[h], ks.CHUNKS) for h in holders])
    values = shamir.reconstruct_field(xs, rows, coefficients=lagrange[xs])
    try:
        return shamir.field_to_bytes(values, ks.SECRET_BYTES)
    except CryptoError as exc:
        raise UnmaskError("inconsistent shares", node_id=target) from exc


def _apply(r: RoundState, prg: MaskGenerator, seed: bytes, subtract: bool) -> None:
    """Add or subtract ``PRG(seed)`` (``dim`` ring elements + the weight word)."""
    mask = prg.uint32(seed, r.dim + 1)
    body = r.acc[: r.dim]
    if subtract:
        np.subtract(body, mask[: r.dim], out=body)
        r.weight = (r.weight - int(mask[r.dim])) % WEIGHT_MODULUS
    else:
        np.add(body, mask[: r.dim], out=body)
        r.weight = (r.weight + int(mask[r.dim])) % WEIGHT_MODULUS
