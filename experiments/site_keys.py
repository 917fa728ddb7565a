"""Create the site signing keys and the public registry (active secure aggregation).

    python -m experiments.site_keys --sites 10 --out .flwr/secagg-keys

In a real federation each hospital creates its own key and only the public
registry is shared (out of band, e.g. signed by the consortium); this command
makes all of them in one folder for simulations and local deployments.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fedsec.identity import create_identities


def ensure_site_keys(directory: Path, num_sites: int) -> Path:
    """Create keys for ``site0..site{n-1}`` unless the registry already has them."""
    from fedsec.identity import REGISTRY, load_registry

    wanted = [f"site{i}" for i in range(num_sites)]
    if (directory / REGISTRY).is_file() and set(wanted) <= set(
        load_registry(directory)
    ):
        return directory
    create_identities(directory, wanted)
    return directory


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path(".flwr/secagg-keys"))
    args = parser.parse_args()
    print(create_identities(args.out, [f"site{i}" for i in range(args.sites)]))


if __name__ == "__main__":
    main()
