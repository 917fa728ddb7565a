"""Vertical training end to end: PSI, sharing, training on shares over mutual TLS.

Breast cancer split by columns across ``--holders`` holders (labels at holder
0), each holder missing 2 % of the records and holding 2 % of its own:

1. the holders check their tables against the schema and run ECDH-PSI in
   ``shares`` mode (in this process: the holders' side);
2. each holder secret-shares its columns (the label holder its labels too) in
   its secret upload order, sealed to the three parties;
3. three compute-party processes connect over TCP with mutual TLS 1.3 on
   127.0.0.1, align the rows from the PSI tags, train logistic regression by
   mini-batch gradient descent on the shares and reveal the model.

Compared with float64 gradient descent on the joined table (the same spline,
and the logistic function itself) on the held-out test split. ``--scale``
instead times one epoch at 100k rows x 100 features (synthetic) over TLS,
beside a plaintext (numpy) epoch. One JSON object per case::

    python -m experiments.vertical --epochs 20
    python -m experiments.vertical --scale --rows 100000 --features 100 --epochs 1
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

# the party processes import only what they need: the data and holder
# modules (pandas, scikit-learn) are imported inside the holders' functions
from fedsec.mpc.keys import PartyKeys, generate_party_keys
from fedsec.vertical.party import HolderInputs
from fedsec.vertical.train import Model, TrainTerms, plaintext_train

SESSION = 21
SEED = b"fedsec/vertical/benchmark"


def _save_keys(work: Path, keys: list[PartyKeys]) -> None:
    """Each party's secret key in its own 0600 file, the public keys beside."""
    from fedsec.pki import write_secret

    for k in keys:
        write_secret(work / f"party{k.index}.x25519", k.secret.private_bytes_raw())
    (work / "public.keys").write_bytes(b"".join(keys[0].public_keys))


def _load_keys(work: Path, index: int) -> PartyKeys:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    pub = (work / "public.keys").read_bytes()
    secret = (work / f"party{index}.x25519").read_bytes()
    return PartyKeys(
        index,
        X25519PrivateKey.from_private_bytes(secret),
        (pub[:32], pub[32:64], pub[64:96]),
    )


def _parties(
    work: Path, terms: TrainTerms, inputs: list[HolderInputs]
) -> list[dict[str, Any]]:
    """Run the three parties as processes over mutual TLS; their JSON reports."""
    from fedsec.mpc.tls import make_throwaway_pki
    from fedsec.net import free_ports

    make_throwaway_pki(work / "pki")
    (work / "terms.pkl").write_bytes(pickle.dumps(terms))
    for i, inp in enumerate(inputs):
        (work / f"inputs{i}.pkl").write_bytes(pickle.dumps(inp))
    ports = free_ports(3)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "experiments.vertical", "--role", "party",
             "--party", str(i), "--workdir", str(work), "--ports", *map(str, ports)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]  # fmt: skip
    outs = [p.communicate(timeout=3600)[0] for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit("a compute party failed")
    return [json.loads(o.strip().splitlines()[-1]) for o in outs]


def party_worker(index: int, work: Path, ports: list[int]) -> None:
    """One compute party: connect the mTLS mesh, train, report JSON."""
    from fedsec.mpc.sessions import MemorySessionLog
    from fedsec.mpc.tcp import TlsChannel
    from fedsec.mpc.tls import TlsIdentity, party_name
    from fedsec.policy import SitePolicy
    from fedsec.vertical.party import VerticalParty

    keys = _load_keys(work, index)
    terms: TrainTerms = pickle.loads((work / "terms.pkl").read_bytes())
    inputs: HolderInputs = pickle.loads((work / f"inputs{index}.pkl").read_bytes())
    pki = work / "pki"
    ident = TlsIdentity(
        pki / "ca.pem",
        pki / f"{party_name(index)}.pem",
        pki / f"{party_name(index)}.key",
    )
    t0 = time.perf_counter()
    chan = TlsChannel.connect(index, [("127.0.0.1", p) for p in ports], ident, 60)
    connect = time.perf_counter() - t0
    party = VerticalParty(
        keys,
        chan,
        terms,
        sessions=MemorySessionLog(node_id=index),
        policy=SitePolicy(modes=frozenset({"vertical"})),
    )
    out = party.run(SESSION, inputs, SEED)
    chan.close()
    print(json.dumps({
        "party": index, "seconds_train": out.seconds, "seconds_connect": connect,
        "rows": out.rows, "bytes_sent": out.stats.bytes_sent,
        "rounds": out.stats.rounds, "weights": out.weights.tolist(),
    }))  # fmt: skip


def breast_cancer_case(holders: int, terms: TrainTerms) -> dict[str, Any]:
    """PSI + sharing + training over mTLS, against float64 on the joined table."""
    from fedsec.data.vertical import column_groups, vertical_tables, vertical_test_set
    from fedsec.psi.local import final_lists
    from fedsec.psi.protocol import OutputMode, PsiTerms, match_tags
    from fedsec.vertical.holder import VerticalHolder
    from fedsec.vertical.local import holder_inputs
    from fedsec.vertical.table import check_table

    t_start = time.perf_counter()
    frames = vertical_tables("breast_cancer", holders)
    groups = column_groups(30, holders)
    tables = [
        check_table(f, groups[h], labels=h == 0, holder=h, source=f"holder{h}")
        for h, f in enumerate(frames)
    ]
    psi_terms = PsiTerms(SESSION, holders, OutputMode.SHARES)
    hs = [VerticalHolder(h, tables[h], psi_terms) for h in range(holders)]
    keys = generate_party_keys()
    t = time.perf_counter()
    inputs = holder_inputs(hs, keys[0].public_keys, terms.encoder)
    seconds_holders = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        _save_keys(work, keys)
        reports = _parties(work, terms, inputs)
    seconds_total = time.perf_counter() - t_start
    w = np.asarray(reports[0]["weights"])
    # the plaintext reference: the joined table of the intersection, in the
    # common order (the same exponents give the tags the parties opened)
    match = match_tags(final_lists([h.psi for h in hs], psi_terms), holders)
    joined = [
        tables[h].aligned(hs[h].psi.upload_order[match.positions[h]])
        for h in range(holders)
    ]
    x = np.hstack([j.x for j in joined])
    y = joined[0].y
    assert y is not None
    enc = terms.encoder
    w_spline = plaintext_train(
        enc.decode(enc.encode(x)), enc.decode(enc.encode(y)), terms, SEED
    )
    w_exact = plaintext_train(x, y, terms, SEED, exact_sigmoid=True)
    # the held-out rows, standardised like the holders' columns
    xt, yt = vertical_test_set("breast_cancer")

    def acc(v: np.ndarray) -> float:
        return float(np.mean(((xt @ v[:-1] + v[-1]) > 0) == yt))

    return {
        "case": "breast_cancer", "holders": holders, "label_holder": 0,
        "rows_intersection": int(match.size), "features": int(x.shape[1]),
        "epochs": terms.epochs, "batch_size": terms.batch_size,
        "learning_rate": terms.learning_rate, "frac_bits": terms.frac_bits,
        "channel": "tcp+mtls", "seconds_end_to_end": seconds_total,
        "seconds_psi_and_share": seconds_holders,
        "seconds_train": max(r["seconds_train"] for r in reports),
        "bytes_between_parties": sum(r["bytes_sent"] for r in reports),
        "rounds": max(r["rounds"] for r in reports),
        "accuracy_mpc": acc(w), "accuracy_plain_spline": acc(w_spline),
        "accuracy_plain_exact_sigmoid": acc(w_exact),
        "max_coef_diff_vs_spline": float(np.max(np.abs(w - w_spline))),
        "coef_tolerance": 2 * terms.steps(len(y)) * 2.0**-terms.frac_bits,
    }  # fmt: skip


def scale_case(rows: int, features: int, terms: TrainTerms) -> dict[str, Any]:
    """Seconds per epoch and bytes at scale over mTLS, beside a plaintext epoch."""
    from fedsec.vertical.shares import FEATURES, LABELS, share_block

    rng = np.random.default_rng(5)  # synthetic public data
    x = rng.normal(size=(rows, features)) / np.sqrt(features)
    y = (x @ rng.normal(size=features) + 0.1 * rng.normal(size=rows) > 0).astype(float)
    keys = generate_party_keys()
    holders = 2
    cols = np.array_split(np.arange(features), holders)
    blocks = [
        share_block(x[:, c], keys[0].public_keys, session=SESSION, holder=h,
                    kind=FEATURES, encoder=terms.encoder)
        for h, c in enumerate(cols)
    ]  # fmt: skip
    labels = share_block(
        y[:, None], keys[0].public_keys, session=SESSION, holder=0, kind=LABELS,
        encoder=terms.encoder,
    )  # fmt: skip
    inputs = [
        HolderInputs({h: blocks[h][i] for h in range(holders)}, labels[i], 0, None)
        for i in range(3)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        _save_keys(work, keys)
        reports = _parties(work, terms, inputs)
    plain = []
    for _ in range(3):
        t = time.perf_counter()
        plaintext_train(x, y, TrainTerms(**{**terms.__dict__, "epochs": 1}), SEED)
        plain.append(time.perf_counter() - t)
    secs = max(r["seconds_train"] for r in reports)
    return {
        "case": "scale", "rows": rows, "features": features, "epochs": terms.epochs,
        "batch_size": terms.batch_size, "channel": "tcp+mtls",
        "seconds_per_epoch": secs / terms.epochs,
        "bytes_between_parties_per_epoch": sum(r["bytes_sent"] for r in reports)
        / terms.epochs,
        "rounds_per_epoch": max(r["rounds"] for r in reports) / terms.epochs,
        "plaintext_seconds_per_epoch": statistics.median(plain),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Print one JSON object per case."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--holders", type=int, default=3)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--learning-rate", type=float, default=0.5)
    p.add_argument("--frac-bits", type=int, default=14)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--scale", action="store_true")
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--features", type=int, default=100)
    p.add_argument("--role", choices=["party"], default=None, help=argparse.SUPPRESS)
    p.add_argument("--party", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--workdir", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--ports", type=int, nargs=3, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.role == "party":
        party_worker(args.party, args.workdir, args.ports)
        return
    terms = TrainTerms(
        model=Model.LOGISTIC, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, frac_bits=args.frac_bits,
    )  # fmt: skip
    for _ in range(args.repeats):
        if args.scale:
            row = scale_case(args.rows, args.features, terms)
        else:
            row = breast_cancer_case(args.holders, terms)
        row |= {"cores": os.cpu_count(), "load_avg_1min": os.getloadavg()[0]}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
