"""Write the schemas of the embedded tasks (``fedsec/data/schemas/*.yaml``).

    python -m experiments.shipped_schemas [--out fedsec/data/schemas]

Run once when an embedded task changes; the files are committed. Column names
are scikit-learn's feature names in snake case. A numeric feature's plausible
range is ``[0, nice(1.5 · max)]`` when the data are non-negative (else
symmetric around 0 from the larger magnitude), rounded up to 1, 1.5, 2, 3, 5
or 7.5 times a power of ten; digits' pixels take their true range 0-16.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sklearn import datasets as skd

from fedsec.data.schema import SHIPPED_DIR

_STEPS = (1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0)
_HEADER = (
    "# fedsec federation schema, written by `python -m experiments.shipped_schemas`.\n"
)


def nice(value: float) -> float:
    """The smallest 1/1.5/2/3/5/7.5 × 10^k at or above ``value`` (> 0)."""
    power = 10.0 ** math.floor(math.log10(value))
    return next(round(s * power, 12) for s in _STEPS if s * power >= value - 1e-12)


def snake(name: str) -> str:
    """``mean radius`` -> ``mean_radius``."""
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def _numeric(name: str, column: np.ndarray, bins: int) -> dict[str, Any]:
    low, high = float(column.min()), float(column.max())
    if low >= 0:
        lo, hi = 0.0, nice(1.5 * high)
    else:
        bound = nice(1.5 * max(abs(low), abs(high)))
        lo, hi = -bound, bound
    return {
        "name": name,
        "kind": "numeric",
        "range": [lo, hi],
        "bins": bins,
        "missing": "impute",
    }


def schemas() -> dict[str, dict[str, Any]]:
    """The three embedded tasks as schema documents."""
    out: dict[str, dict[str, Any]] = {}
    cancer = skd.load_breast_cancer()
    out["breast_cancer"] = {
        "name": "breast_cancer",
        "dataset": "breast_cancer",
        "target": {"column": "target", "kind": "classification", "classes": [0, 1]},
        "features": [
            _numeric(snake(n), cancer.data[:, i], 20)
            for i, n in enumerate(cancer.feature_names)
        ],
    }
    digits = skd.load_digits()
    out["digits"] = {
        "name": "digits",
        "dataset": "digits",
        "target": {
            "column": "target",
            "kind": "classification",
            "classes": list(range(10)),
        },
        "features": [
            {
                "name": snake(n),
                "kind": "numeric",
                "range": [0.0, 16.0],
                "bins": 16,
                "missing": "impute",
            }
            for n in digits.feature_names
        ],
    }
    diabetes = skd.load_diabetes()
    out["diabetes"] = {
        "name": "diabetes",
        "dataset": "diabetes",
        # the model predicts (y - 152) / 77: the public data set description's
        # mean and standard deviation of the disease progression score
        "target": {
            "column": "target",
            "kind": "regression",
            "center": 152.0,
            "scale": 77.0,
            "range": [0.0, 400.0],
            "bins": 20,
        },
        "features": [
            _numeric(snake(n), diabetes.data[:, i], 20)
            for i, n in enumerate(diabetes.feature_names)
        ],
    }
    return out


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SHIPPED_DIR)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, doc in schemas().items():
        path = args.out / f"{name}.yaml"
        text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=88)
        path.write_text(_HEADER + text)
        print(path)


if __name__ == "__main__":
    main()
