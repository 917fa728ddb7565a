"""Server-side unmasking: reconstruct the revealed secrets, remove the masks.

Bonawitz et al. (CCS 2017), round 4: the server reconstructs, from ``t``
shares each, the self-mask seed of every survivor and the mask key of every
dropped participant, subtracts the survivors' self masks and cancels the
pairwise masks that survivors added for dropped neighbours. The Lagrange
coefficients of each distinct holder set are computed once.

Expanding the masks is the server's main cost (one AES-CTR keystream of
``dim + 1`` words per mask: with the complete graph, every dropped client
costs one per survivor). When a round needs at least
``PARALLEL_MIN_ELEMENTS`` mask words, the masks are split between this thread
and ``cores − 1`` worker processes (started once, with ``spawn``), which each
return the sum of their share of the masks: the pyca/cryptography AES call
holds the GIL, so threads would not help. The seeds travel to the workers over
a local pipe; they never leave the machine or reach a log.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import threading
from concurrent.futures import Executor, ProcessPoolExecutor

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
    jobs: list[tuple[bytes, bool]] = []  # (seed, subtract)
    for v in r.survivors:
        b = _secret(v, r.seed_shares, k, lagrange)
        jobs.append((ks.self_mask_seed(b, k.key_set, r.round, r.slot, v), True))
    for u in r.dropped:
        pair = X25519KeyPair.from_secret(_secret(u, r.key_shares, k, lagrange))
        if pair.public != ks.mask_public(k.adverts[u].mask_pks, r.slot):
            raise UnmaskError("reconstructed mask key does not match", node_id=u)
        mates = sorted(k.closed(u) & set(r.survivors))
        peers = [(v, ks.mask_public(k.adverts[v].mask_pks, r.slot)) for v in mates]
        seeds = ks.pairwise_seeds(pair.secret, u, peers, k.key_set, r.round, r.slot)
        jobs += [(seed, v < u) for v, seed in zip(mates, seeds, strict=True)]
    _remove_masks(r, prg, jobs)
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


def _remove_masks(
    r: RoundState, prg: MaskGenerator, jobs: list[tuple[bytes, bool]]
) -> None:
    """Apply every ``±PRG(seed)`` of ``jobs`` to the accumulator and the weight.

    ``subtract`` is true for masks the clients added (self masks, and pairwise
    masks a survivor ``v < u`` added for a dropped ``u``).
    """
    count = r.dim + 1
    pool = _pool() if len(jobs) * count >= PARALLEL_MIN_ELEMENTS else None
    if pool is None:
        for seed, subtract in jobs:
            _apply(r, prg, seed, subtract)
        return
    parts = _WORKERS + 1
    futures = [pool.submit(mask_total, jobs[i::parts], count) for i in range(1, parts)]
    for seed, subtract in jobs[0::parts]:  # this thread takes one part too
        _apply(r, prg, seed, subtract)
    for future in futures:
        total = future.result()  # Σ (−PRG(seed) if subtract else +PRG(seed))
        np.add(r.acc[: r.dim], total[: r.dim], out=r.acc[: r.dim])
        r.weight = (r.weight + int(total[r.dim])) % WEIGHT_MODULUS


def mask_total(jobs: list[tuple[bytes, bool]], count: int) -> npt.NDArray[np.uint32]:
    """``Σ ±PRG(seed)`` over ``jobs`` (minus where ``subtract``), modulo 2^32.

    Runs in a worker process; module-level so that it can be pickled.
    """
    prg = MaskGenerator()
    total = np.zeros(count, dtype=np.uint32)
    for seed, subtract in jobs:
        if subtract:
            prg.sub_into(total, seed)
        else:
            prg.add_into(total, seed)
    return total


# at least this many mask words per round before worker processes are used
# (about 64 masks of 1M; a worker's start costs ~0.5 s once per process)
PARALLEL_MIN_ELEMENTS = 1 << 26
_WORKERS = max(0, min(len(os.sched_getaffinity(0)), 8) - 1)
_POOL: Executor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> Executor | None:
    """The process pool of mask workers (``None`` on a single core)."""
    global _POOL
    if _WORKERS == 0:
        return None
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ProcessPoolExecutor(
                _WORKERS, mp_context=multiprocessing.get_context("spawn")
            )
            atexit.register(_POOL.shutdown, cancel_futures=True)
        return _POOL


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
