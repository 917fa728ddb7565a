"""Create the site signing keys and the public registry (active SecAgg, MPC).

    python -m experiments.site_keys --sites 10 --out .flwr/secagg-keys \
        --sim-sites .flwr/sim-sites

In a real federation each hospital creates its own key and only the public
registry is shared (out of band, e.g. signed by the consortium); this command
makes all of them in one folder for simulations and local deployments. The
same keys serve the active variant of secure aggregation and the MPC
clip-and-sum, where a site signs its packages and the compute parties count
only registered sites.

``--sim-sites DIR`` also plays the operators of the simulated sites of a plain
``flwr run .``: it writes each site's node config (``site<i>.toml``: its
name, its key folder, and ``policy-modes`` taking part in plain FL and both
secure-aggregation variants), which the ClientApp reads from
``$FLWR_HOME/sim-sites`` (or ``FEDSEC_SIM_SITES``), never from the run config.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import tempfile
from pathlib import Path

from fedsec.identity import REGISTRY, create_identities, load_registry


def ensure_site_keys(directory: Path, num_sites: int) -> Path:
    """Make sure ``site0..site{n-1}`` have keys in the registry of ``directory``.

    Only missing sites get new keys; existing keys are kept, so simulations
    running at the same time with the same folder never see a key change
    under them. Holds a lock on the folder while it adds keys, and replaces
    the registry atomically.
    """
    return ensure_named_keys(directory, [f"site{i}" for i in range(num_sites)])


def ensure_named_keys(directory: Path, sites: list[str]) -> Path:
    """Make sure every name in ``sites`` has a key in ``directory`` (see above)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)  # it holds private keys
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        path = directory / REGISTRY
        registry = load_registry(directory) if path.is_file() else {}
        missing = [
            s
            for s in sites
            if s not in registry or not (directory / f"{s}.key").is_file()
        ]
        if not missing:
            return directory
        with tempfile.TemporaryDirectory(dir=directory) as scratch:
            fresh = Path(scratch)
            create_identities(fresh, missing)
            registry.update(load_registry(fresh))
            for site in missing:
                os.replace(fresh / f"{site}.key", directory / f"{site}.key")
            text = {k: v.hex() for k, v in registry.items()}
            staged = fresh / REGISTRY
            staged.write_text(json.dumps(text, indent=2, sort_keys=True) + "\n")
            os.replace(staged, path)
        return directory
    finally:
        os.close(fd)  # releases the lock


def write_sim_sites(folder: Path, keys: Path, num_sites: int) -> list[Path]:
    """Node-config files of ``num_sites`` simulated sites using ``keys``."""
    from clients.site_config import write_site_file

    return [
        write_site_file(
            folder,
            i,
            {
                "secagg-site": f"site{i}",
                "secagg-keys-dir": str(keys.resolve()),
                "policy-modes": "plain,semi_honest,active",
            },
        )
        for i in range(num_sites)
    ]


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path(".flwr/secagg-keys"))
    parser.add_argument(
        "--sim-sites",
        type=Path,
        default=None,
        help="also write the simulated sites' node configs into this folder",
    )
    args = parser.parse_args()
    print(ensure_site_keys(args.out, args.sites) / REGISTRY)
    if args.sim_sites is not None:
        files = write_sim_sites(args.sim_sites, args.out, args.sites)
        print(f"{len(files)} simulated sites' node configs in {args.sim_sites}")


if __name__ == "__main__":
    main()
