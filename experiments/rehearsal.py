"""Write realistic hospital tables for a rehearsal: per-site CSVs, schema, test file.

    python -m experiments.rehearsal --sites 5 --out .flwr/rehearsal --seed 0

From the embedded breast-cancer data (569 real patients) it writes what a
consortium of hospitals would bring:

- ``schema.yaml``: the 30 numeric measurements (ranges of the shipped
  schema), a binary ``family_history``, a categorical ``referral``
  (screening, gp, specialist) and the target ``diagnosis`` with the classes
  ``malignant`` and ``benign`` by name;
- ``site<i>.csv``: each site's patients, columns in the site's own order;
- ``test.csv``: held-out patients (20 %, stratified) for the server.

How the sites differ, as real hospitals do:

- **label skew**: each class is spread over the sites by a Dirichlet(α) draw;
- **case-mix shift**: a site attracts patients by a severity tilt
  ``exp(β_i · z)``, ``z`` the standardised mean radius and ``β_i`` uniform
  in ``[-shift, shift]``, so site populations differ in their features (the
  relation between features and diagnosis stays that of the data set);
- **missing values**: each site misses a share (uniform in ``[0.02,
  max_missing]``) of its values of ten measurements and of ``referral``;
- sizes differ accordingly.

``family_history`` and ``referral`` are synthetic (drawn from the diagnosis,
documented here), the measurements are the data set's own. Numpy's seeded
generator is fine: this is public experimental design, nothing secret.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import yaml

from fedsec.data import shipped_schema
from fedsec.data.embedded import embedded_frame
from fedsec.data.federated import split_indices

TARGET = "diagnosis"
CLASSES = ("malignant", "benign")  # the embedded labels 0 and 1
REFERRALS = ("screening", "gp", "specialist")
MISSING_COLUMNS = 10  # measurements that can be missing (plus referral)


@dataclass(frozen=True)
class Rehearsal:
    """Where the rehearsal's files are."""

    folder: Path
    schema: Path
    sites: list[Path]
    test: Path


def rehearsal_schema() -> dict[str, object]:
    """The rehearsal's schema document."""
    base = shipped_schema("breast_cancer")
    features: list[dict[str, object]] = [f.to_mapping() for f in base.features]
    features += [
        {"name": "family_history", "kind": "binary", "missing": "impute"},
        {
            "name": "referral",
            "kind": "categorical",
            "levels": list(REFERRALS),
            "missing": "impute",
        },
    ]
    return {
        "name": "breast_cancer_rehearsal",
        "target": {
            "column": TARGET,
            "kind": "classification",
            "classes": list(CLASSES),
            "missing": "refuse",
        },
        "features": features,
    }


def _patients(rng: np.random.Generator) -> pd.DataFrame:
    """The data set's rows with the synthetic columns and named diagnoses."""
    frame = embedded_frame(shipped_schema("breast_cancer"))
    y = frame.pop("target").to_numpy()
    malignant = y == 0
    frame["family_history"] = (rng.random(len(frame)) < 0.12 + 0.18 * malignant).astype(
        int
    )
    probs = np.where(malignant[:, None], [0.25, 0.35, 0.40], [0.45, 0.40, 0.15])
    draws = (rng.random(len(frame))[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
    frame["referral"] = np.asarray(REFERRALS, dtype=object)[draws]
    frame[TARGET] = np.asarray(CLASSES, dtype=object)[y]
    return frame


def _assign(
    labels: npt.NDArray[np.int64],
    severity: npt.NDArray[np.float64],
    sites: int,
    alpha: float,
    shift: float,
    rng: np.random.Generator,
    min_rows: int = 12,
) -> npt.NDArray[np.int64]:
    """A site per row: label skew (Dirichlet) times a case-mix tilt."""
    for _ in range(200):
        share = rng.dirichlet(np.full(sites, alpha), size=2)  # (class, site)
        beta = rng.uniform(-shift, shift, sites)
        weights = share[labels] * np.exp(np.outer(severity, beta))
        weights /= weights.sum(axis=1, keepdims=True)
        cumulative = np.cumsum(weights, axis=1)
        site = (rng.random(len(labels))[:, None] > cumulative).sum(axis=1)
        site = np.minimum(site, sites - 1)
        if np.bincount(site, minlength=sites).min() >= min_rows:
            return site.astype(np.int64)
    raise ValueError(f"cannot give {sites} sites {min_rows} rows each; raise alpha")


def write_rehearsal(
    out: Path,
    sites: int = 5,
    *,
    seed: int = 0,
    alpha: float = 1.0,
    shift: float = 1.0,
    max_missing: float = 0.2,
    test_fraction: float = 0.2,
) -> Rehearsal:
    """Write the rehearsal's schema, site files and test file into ``out``."""
    rng = np.random.default_rng(seed)
    frame = _patients(rng)
    labels = (frame[TARGET] == CLASSES[1]).to_numpy().astype(np.int64)
    rest, held = split_indices(labels, len(frame), test_fraction, seed)
    out.mkdir(parents=True, exist_ok=True)
    schema_path = out / "schema.yaml"
    schema_path.write_text(
        "# rehearsal schema, written by `python -m experiments.rehearsal`\n"
        + yaml.safe_dump(rehearsal_schema(), sort_keys=False, width=88)
    )
    test_path = out / "test.csv"
    frame.iloc[held].to_csv(test_path, index=False)
    pool = frame.iloc[rest].reset_index(drop=True)
    radius = pool["mean_radius"].to_numpy()
    severity = (radius - radius.mean()) / radius.std()
    site_of = _assign(labels[rest], severity, sites, alpha, shift, rng)
    measured = [c for c in pool.columns if c not in (TARGET, "family_history")]
    paths = []
    for i in range(sites):
        rows = pool[site_of == i].reset_index(drop=True).astype(object)
        rate = rng.uniform(0.02, max_missing)
        gaps = list(rng.choice(measured[:-1], MISSING_COLUMNS, replace=False))
        for column in [*gaps, "referral"]:
            hit = rng.random(len(rows)) < rate
            rows.loc[hit, column] = None
        rows = rows[list(rng.permutation(rows.columns))]
        path = out / f"site{i}.csv"
        rows.to_csv(path, index=False)
        paths.append(path)
    (out / "rehearsal.json").write_text(
        json.dumps(
            {
                "sites": sites,
                "seed": seed,
                "alpha": alpha,
                "shift": shift,
                "max_missing": max_missing,
                "rows": [int((site_of == i).sum()) for i in range(sites)],
                "test_rows": len(held),
            },
            indent=2,
        )
        + "\n"
    )
    return Rehearsal(out, schema_path, paths, test_path)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: write the files, print where they are."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sites", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(".flwr/rehearsal"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--alpha", type=float, default=1.0, help="Dirichlet label skew")
    parser.add_argument("--shift", type=float, default=1.0, help="case-mix tilt")
    parser.add_argument("--max-missing", type=float, default=0.2)
    args = parser.parse_args(argv)
    made = write_rehearsal(
        args.out,
        args.sites,
        seed=args.seed,
        alpha=args.alpha,
        shift=args.shift,
        max_missing=args.max_missing,
    )
    print(f"schema: {made.schema}")
    for path in made.sites:
        print(f"site:   {path}")
    print(f"test:   {made.test}")
    print(
        "check a site: python -m clients.check_data "
        f"{made.sites[0]} --schema {made.schema}"
    )


if __name__ == "__main__":
    main()
