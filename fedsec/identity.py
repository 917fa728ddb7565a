"""Site identities for the active-adversary variant of secure aggregation.

The active variant (Bonawitz et al., CCS 2017, Section 6) needs every client to
know every other client's signature verification key *independently of the
server*, otherwise a malicious server simply swaps the keys it relays. fedsec
uses a public **registry** distributed out of band (a JSON file mapping site
names to Ed25519 verification keys) and one private signing key per site:

    keys/registry.json      public: {"site0": "<hex>", "site1": "<hex>", ...}
    keys/site0.key          private to site0 (mode 0600), raw 32 bytes

During set-up each client tells the server its site name; the server relays
the node-id → site-name map; each client looks the names up in its own copy
of the registry. A server that maps a node to another site's name gains
nothing: that node cannot sign for the other site's key. A name used twice or
missing from the registry is refused.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from fedsec.crypto.signatures import generate_signing_key, verify_key_of
from fedsec.errors import ConfigError, MaliciousServerError

REGISTRY = "registry.json"


def create_identities(directory: Path, sites: list[str]) -> Path:
    """Create a signing key per site and the public registry; return its path.

    The folder is made private (0700): it holds the private keys (0600).
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    registry: dict[str, str] = {}
    for site in sites:
        _check_name(site)
        key = generate_signing_key()
        path = directory / f"{site}.key"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
        registry[site] = verify_key_of(key).hex()
    out = directory / REGISTRY
    out.write_text(json.dumps(registry, indent=2, sort_keys=True) + "\n")
    return out


def load_registry(directory: Path) -> dict[str, bytes]:
    """Site name → verification key, from ``directory/registry.json``."""
    path = directory / REGISTRY
    try:
        raw = json.loads(path.read_text())
        return {str(k): bytes.fromhex(v) for k, v in raw.items()}
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no site registry (create the site keys first)"
        ) from None
    except (ValueError, AttributeError, TypeError):
        raise ConfigError(f"{path}: not a registry of hex keys") from None


def load_signing_key(directory: Path, site: str) -> bytes:
    """The private signing key of ``site``."""
    _check_name(site)
    path = directory / f"{site}.key"
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no signing key for site {site!r}") from None
    if len(key) != 32:
        raise ConfigError(f"{path}: a signing key is 32 bytes")
    return key


def verify_keys_for(
    sites_by_node: Mapping[int, str], registry: Mapping[str, bytes]
) -> dict[int, bytes]:
    """Node id → verification key; refuses unknown or repeated site names."""
    names = list(sites_by_node.values())
    if len(set(names)) != len(names):
        raise MaliciousServerError("one site name given to two nodes", stage="identity")
    unknown = sorted(set(names) - set(registry))
    if unknown:
        raise MaliciousServerError(
            f"site(s) not in the registry: {', '.join(unknown)}", stage="identity"
        )
    return {node: registry[name] for node, name in sites_by_node.items()}


def _check_name(site: str) -> None:
    if not site or not all(c.isalnum() or c in "-_." for c in site) or site[0] == ".":
        raise ConfigError(f"invalid site name {site!r}")
