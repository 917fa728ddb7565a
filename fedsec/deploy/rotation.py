"""Rotate or revoke a site's keys in a provisioned federation.

* **rotate**: a new SuperNode authentication key pair (the old public key is
  unregistered at the SuperLink, the new one registered) and/or a new signing
  key (the registry entry is replaced). The site restarts its SuperNode with
  the new kit files; the other sites need the new registry before the next
  active run or signed MPC session.
* **revoke**: the site leaves: its key is unregistered, its registry entry and
  its public key at the coordinator are removed, and the record marks it
  revoked, so it is never provisioned again under that name.

Both return the ``flwr`` lines the coordinator runs (``fedsec rotate-keys
--apply`` / ``fedsec revoke --apply`` run them) and what to tell the sites.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from fedsec.deploy import record, registry
from fedsec.deploy.files import PUBLIC, SCRIPT, write_file, write_text
from fedsec.deploy.kits import new_auth_key
from fedsec.deploy.layout import Layout, SiteKit
from fedsec.deploy.nodes import forget
from fedsec.deploy.scripts import register_script
from fedsec.errors import ConfigError


@dataclass
class Change:
    """The ``flwr`` command lines to run at the coordinator and notes for people.

    ``old_node`` is the node id the site's previous key had (if recorded),
    ``reregister`` whether its new public key must be registered.
    """

    site: str
    old_node: int | None = None
    reregister: bool = False
    unregister: list[str] = field(default_factory=list)
    register: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def lines(self) -> list[str]:
        """Every command line, unregistering first."""
        return self.unregister + self.register


def unregister_line(node_id: int | None, connection: str, site: str) -> str:
    """``flwr supernode unregister <id> <connection>`` (id unknown: a placeholder)."""
    node = str(node_id) if node_id is not None else f"<node id of {site}>"
    return f"flwr supernode unregister {shlex.quote(node)} {shlex.quote(connection)}"


def register_line(site: str, connection: str) -> str:
    """``flwr supernode register site-keys/<site>.pub <connection> --name <site>``."""
    key = shlex.quote(f"site-keys/{site}.pub")
    return (
        f"flwr supernode register {key} {shlex.quote(connection)} "
        f"--name {shlex.quote(site)}"
    )


def rotate(
    layout: Layout, site: str, *, auth: bool = True, signing: bool = True
) -> Change:
    """Replace ``site``'s authentication key pair and/or signing key."""
    if not (auth or signing):
        raise ConfigError(
            "nothing to rotate: choose the auth key, the signing key or both"
        )
    rec = record.load(layout)
    rec.require_site(site)
    kit = layout.site(site)
    if not kit.root.is_dir():
        raise ConfigError(f"{kit.root}: the kit of site {site!r} is not here")
    change = Change(site)
    if auth:
        new_auth_key(kit, site, force=True)
        write_file(
            layout.coordinator.site_key(site),
            kit.path(SiteKit.AUTH_PUB).read_bytes(),
            PUBLIC,
            force=True,
        )
        change.old_node = forget(layout.coordinator, site)
        change.reregister = True
        change.unregister.append(unregister_line(change.old_node, rec.connection, site))
        change.register.append(register_line(site, rec.connection))
        change.notes.append(
            f"site {site}: install the new node-auth.key and node-auth.pub of its kit "
            "and restart its SuperNode after the coordinator ran these lines"
        )
    if signing:
        verify_key = registry.new_signing_key(kit, force=True)
        registry.update(layout, add={site: verify_key})
        registry.give_to_site(layout, kit)
        change.notes.append(
            f"site {site}: install its new secagg-keys/{site}.key; every other site: "
            f"replace secagg-keys/registry.json with {layout.public.registry}"
        )
    return change


def revoke(layout: Layout, site: str) -> Change:
    """Take ``site`` out of the federation for good."""
    rec = record.load(layout)
    rec.require_site(site)
    rec.sites[site].revoked = True
    registry.update(layout, remove=[site])
    layout.coordinator.site_key(site).unlink(missing_ok=True)
    write_text(
        layout.coordinator.register_script,
        register_script(rec.active_sites, rec.connection),
        SCRIPT,
        force=True,
    )
    record.save(layout, rec)
    change = Change(site, old_node=forget(layout.coordinator, site))
    change.unregister.append(unregister_line(change.old_node, rec.connection, site))
    change.notes.append(
        f"every other site: replace secagg-keys/registry.json with "
        f"{layout.public.registry} (site {site} is no longer in it); site {site}: "
        "stop its SuperNode and delete its kit, whose keys are now worthless"
    )
    return change
