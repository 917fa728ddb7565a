"""Check a site's data file before joining a federation.

    python -m clients.check_data /site/data.csv [--task breast_cancer]

Prints one line: what the site would train on, or what is wrong with the file
(exit code 2). The SuperNode applies exactly the same checks when it reads
its ``data-path``.
"""

from __future__ import annotations

import argparse
import sys

from fedsec.config import TASKS
from fedsec.data import load_site_table, load_task, site_split
from fedsec.errors import FedsecError


def main(argv: list[str] | None = None) -> int:
    """Validate the file; print one line; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="CSV or Parquet file with a 'target' column")
    parser.add_argument("--task", default="breast_cancer", choices=TASKS)
    args = parser.parse_args(argv)
    reference = load_task(args.task)
    try:
        table = load_site_table(
            args.path, reference.kind, reference.num_outputs, reference.num_features
        )
        site = site_split(table, seed=0)
    except FedsecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"ok: {args.path}: {len(table)} rows, {table.num_features} features; "
        f"{len(site.train)} train / {len(site.val)} validation rows"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
