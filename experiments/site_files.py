"""Write the embedded task as one data file per hospital, for deployment runs.

    python -m experiments.site_files --sites 3 --out sites/

Each file holds the site's raw (unscaled) rows with the columns the task's
shipped schema names (``fedsec/data/schemas``) and a ``target`` column, as a
hospital would export them; the SuperNode checks and scales them itself.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fedsec.config import TASKS
from fedsec.data import iid_partition, shipped_schema
from fedsec.data.embedded import embedded_frame


def write_site_files(
    out_dir: Path,
    num_sites: int,
    task: str = "breast_cancer",
    seed: int = 42,
    fmt: str = "csv",
) -> list[Path]:
    """Split ``task`` IID across ``num_sites`` files in ``out_dir``."""
    rows = embedded_frame(shipped_schema(task))
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for site, idx in enumerate(iid_partition(len(rows), num_sites, seed)):
        frame = rows.iloc[idx].reset_index(drop=True)
        path = out_dir / f"site{site}.{fmt}"
        frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path)
        paths.append(path)
    return paths


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("sites"))
    parser.add_argument("--task", default="breast_cancer", choices=TASKS)
    parser.add_argument("--format", default="csv", choices=["csv", "parquet"])
    args = parser.parse_args()
    for path in write_site_files(args.out, args.sites, args.task, fmt=args.format):
        print(path)


if __name__ == "__main__":
    main()
