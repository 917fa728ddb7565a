"""Check a site's data file against the federation's schema before joining.

    python -m clients.check_data /site/data.csv --schema federation.yaml
    python -m clients.check_data /site/data.csv --task breast_cancer

Prints what the site would train on (one ``ok:`` line), or one ``error:``
line per problem, each naming the file, the column and the problem. The
SuperNode applies exactly the same checks when it reads its ``data-path``.

Exit codes (argparse's own usage error is 2):

- 0: the file is usable;
- 3: the file has problems (missing column, wrong type, unknown category,
  value outside the range, empty or all-missing column, unreadable file);
- 4: the schema itself cannot be used (unreadable, malformed).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fedsec.config import TASKS
from fedsec.data import Schema, load_schema, load_site_table, shipped_schema, site_split
from fedsec.data.site import site_file_problems
from fedsec.errors import FedsecError, SchemaError

EXIT_OK = 0
EXIT_DATA = 3
EXIT_SCHEMA = 4


def parser() -> argparse.ArgumentParser:
    """The command-line interface (reusable by a ``fedsec check-data`` command)."""
    p = argparse.ArgumentParser(
        prog="check-data",
        description=(__doc__ or "").splitlines()[0],
        epilog="exit codes: 0 ok, 3 data problems, 4 schema problem, 2 usage",
    )
    p.add_argument("path", help="CSV or Parquet file with the schema's columns")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--schema", help="the federation's schema (YAML file)")
    which.add_argument(
        "--task",
        choices=TASKS,
        help="a shipped schema (default breast_cancer when --schema is not given)",
    )
    return p


def _schema(args: argparse.Namespace) -> Schema:
    if args.schema:
        return load_schema(args.schema)
    return shipped_schema(args.task or "breast_cancer")


def main(argv: Sequence[str] | None = None) -> int:
    """Check the file; print the result; return the exit code."""
    args = parser().parse_args(argv)
    try:
        schema = _schema(args)
    except SchemaError as exc:
        print(f"error: schema: {exc}", file=sys.stderr)
        return EXIT_SCHEMA
    problems = site_file_problems(args.path, schema)
    if not problems:
        try:
            table = load_site_table(args.path, schema)
            site = site_split(table, seed=0)
        except FedsecError as exc:
            problems = [str(exc)]
    if problems:
        for line in problems:
            print(f"error: {line}", file=sys.stderr)
        return EXIT_DATA
    ignored = f"; ignored columns: {', '.join(table.ignored)}" if table.ignored else ""
    dropped = f" ({table.dropped} dropped for missing values)" if table.dropped else ""
    print(
        f"ok: {args.path}: {len(table)} rows{dropped}, {len(schema.features)} "
        f"features of schema {schema.name!r} (model input {schema.input_dim}); "
        f"{len(site.train)} train / {len(site.val)} validation rows{ignored}"
    )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
