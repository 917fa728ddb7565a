"""Benchmark of fedsec's ECDH-PSI against this machine's ECDH floor.

Two holders with ``--size`` ids each (half of them common) run the protocol as
two processes on this machine, talking through pipes; each holder uses
``cores // 2`` worker processes, so the two together use every core. The
*floor* is measured in the same run: two scalar multiplications per id per
side (4 n X25519 multiplications through ``cryptography``) spread over every
core, timed on a sample of ``--floor-sample`` multiplications per core before
and after the PSI runs. ``ratio = seconds / floor_seconds``; on a shared machine
the load moves
both, so ``cpu_ratio`` (the holders' CPU seconds over the CPU seconds of
``4 n`` multiplications) is reported too. One JSON object
per case, with the machine's cores and its load average.

Example::

    python -m experiments.bench_psi --size 1000000 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import time
from multiprocessing.connection import Connection
from typing import Any

from fedsec.psi.group import Exponentiator, hash_ids, new_key
from fedsec.psi.protocol import OutputMode, PsiHolder, PsiTerms


def _ids(holder: int, n: int) -> list[str]:
    start = holder * (n // 2)
    return [f"record-{i:09d}" for i in range(start, start + n)]


def _holder(index: int, n: int, workers: int, mode: str, conn: Connection) -> None:
    ids = _ids(index, n)
    terms = PsiTerms(11, 2, OutputMode(mode))
    conn.recv()  # start signal: ids are ready
    cpu = _cpu()
    h = PsiHolder(index, ids, terms, workers=workers)
    try:
        conn.send_bytes(h.start())  # to the other holder (relay)
        theirs = conn.recv_bytes()
        conn.send_bytes(h.relay(1 - index, 1, theirs))  # final tags of their list
        finals = {index: conn.recv_bytes(), 1 - index: b""}
        # the other holder's final list comes back through the driver
        conn.send_bytes(finals[index])
        finals[1 - index] = conn.recv_bytes()
        result = h.finish(finals)
    finally:
        h.close()  # joins the workers: their CPU time is counted below
    conn.send((result.size, _cpu() - cpu))


def _cpu() -> float:
    """CPU seconds of this process and its finished children."""
    import resource

    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def run_psi_case(n: int, workers: int, mode: str) -> tuple[float, int, float]:
    """Wall seconds of one two-holder PSI, its size, and the holders' CPU seconds.

    CPU seconds are the holder processes' and their workers'.
    """
    ctx = mp.get_context("spawn")
    pipes = [ctx.Pipe() for _ in range(2)]
    procs = [
        ctx.Process(target=_holder, args=(i, n, workers, mode, pipes[i][1]))
        for i in range(2)
    ]
    for p in procs:
        p.start()
    a, b = pipes[0][0], pipes[1][0]
    time.sleep(0.5)
    t = time.perf_counter()
    a.send("go")
    b.send("go")
    la, lb = a.recv_bytes(), b.recv_bytes()  # own lists, relayed to the other
    a.send_bytes(lb)
    b.send_bytes(la)
    fb, fa = a.recv_bytes(), b.recv_bytes()  # a relays b's list: b's finals
    a.send_bytes(fa)
    b.send_bytes(fb)
    a.recv_bytes()
    b.recv_bytes()
    a.send_bytes(fb)
    b.send_bytes(fa)
    (size_a, cpu_a), (size_b, cpu_b) = a.recv(), b.recv()
    sizes = {size_a, size_b}
    seconds = time.perf_counter() - t
    for p in procs:
        p.join()
    if len(sizes) != 1:
        raise RuntimeError("the holders disagree on the intersection size")
    return seconds, sizes.pop(), cpu_a + cpu_b


def _mults(count: int, barrier: Any, out: Any) -> None:
    pts = hash_ids([str(i).encode() for i in range(count)], 1)
    exp = Exponentiator(new_key())
    barrier.wait()
    t, cpu = time.perf_counter(), time.process_time()
    exp.raise_points(pts)
    out.put((time.perf_counter() - t, time.process_time() - cpu))


def multiplication_seconds(per_core: int, cores: int) -> tuple[float, float]:
    """Wall and CPU seconds per X25519 multiplication, every core busy at once."""
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(cores), ctx.Queue()
    procs = [
        ctx.Process(target=_mults, args=(per_core, barrier, out)) for _ in range(cores)
    ]
    for p in procs:
        p.start()
    times = [out.get() for _ in procs]
    for p in procs:
        p.join()
    wall = statistics.median(t for t, _ in times) / per_core
    return wall, statistics.median(c for _, c in times) / per_core


def main(argv: list[str] | None = None) -> None:
    """Print one JSON object per case."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, nargs="+", default=[1_000_000])
    p.add_argument(
        "--mode", choices=[m.value for m in OutputMode], default="intersection"
    )
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--floor-sample", type=int, default=100_000)
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="worker processes per holder (0: cores // 2, the two holders "
        "together one per core)",
    )
    args = p.parse_args(argv)
    cores = os.cpu_count() or 1
    workers = args.workers or max(1, cores // 2)
    for n in args.size:
        before = multiplication_seconds(args.floor_sample, cores)
        runs = [run_psi_case(n, workers, args.mode) for _ in range(args.repeats)]
        after = multiplication_seconds(args.floor_sample, cores)
        mult = (before[0] + after[0]) / 2
        mult_cpu = (before[1] + after[1]) / 2
        floor = 4 * n * mult / cores
        seconds = statistics.median(s for s, _, _ in runs)
        cpu = statistics.median(c for _, _, c in runs)
        row: dict[str, Any] = {
            "case": "psi",
            "holders": 2,
            "mode": args.mode,
            "ids_per_holder": n,
            "intersection": runs[0][1],
            "seconds": seconds,
            "seconds_runs": [s for s, _, _ in runs],
            "floor_seconds": floor,
            "ratio": seconds / floor,
            "cpu_seconds": cpu,
            "cpu_floor_seconds": 4 * n * mult_cpu,
            "cpu_ratio": cpu / (4 * n * mult_cpu),
            "multiplication_us_all_cores_busy": mult * 1e6,
            "multiplication_cpu_us": mult_cpu * 1e6,
            "cores": cores,
            "workers_per_holder": workers,
            "repeats": args.repeats,
            "load_avg_1min": os.getloadavg()[0],
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
