"""The public site registry of a provisioned federation, and the signing keys.

The registry (site name → Ed25519 verification key, :mod:`fedsec.identity`)
is public. Its master copy is ``<out>/public/registry.json``; the ServerApp
reads the coordinator's copy (``$FLWR_HOME/secagg-keys``) and every site its
own (``secagg-keys/registry.json`` in its kit). Adding, rotating or revoking a
site changes the master and the coordinator's copy here; the sites' copies
must be replaced by the operators (the commands say so), since a site's kit
is on the site's machine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from fedsec.crypto.signatures import generate_signing_key, verify_key_of
from fedsec.deploy.files import (
    PUBLIC,
    SECRET,
    private_dir,
    read_json,
    write_file,
    write_json,
)
from fedsec.deploy.layout import Layout, SiteKit
from fedsec.errors import ConfigError


def new_signing_key(kit: SiteKit, *, force: bool = False) -> bytes:
    """Write a fresh signing key into ``kit``; return its verification key."""
    key = generate_signing_key()
    private_dir(kit.signing_key.parent)
    write_file(kit.signing_key, key, SECRET, force=force)
    return verify_key_of(key)


def load(layout: Layout) -> dict[str, str]:
    """The master registry (name → hex key); empty before the first site."""
    path = layout.public.registry
    if not path.is_file():
        return {}
    raw = read_json(path)
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise ConfigError(f"{path}: not a registry of hex keys")
    return dict(raw)


def update(
    layout: Layout,
    add: Mapping[str, bytes] | None = None,
    remove: Iterable[str] = (),
) -> dict[str, str]:
    """Add or replace keys, remove names; write the master and coordinator copy."""
    current = load(layout)
    for name in remove:
        current.pop(name, None)
    current.update({name: key.hex() for name, key in (add or {}).items()})
    write_json(layout.public.registry, current, force=True)
    private_dir(layout.coordinator.registry_dir)
    write_file(
        layout.coordinator.registry_dir / "registry.json",
        layout.public.registry.read_bytes(),
        PUBLIC,
        force=True,
    )
    return current


def give_to_site(layout: Layout, kit: SiteKit) -> None:
    """Copy the master registry into a site's kit."""
    write_file(kit.registry, layout.public.registry.read_bytes(), PUBLIC, force=True)
