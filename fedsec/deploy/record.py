"""``federation.json``: what was provisioned, so a re-run only adds.

The record holds public facts only: the coordinator's address, the flwr CLI
connection name, each site's role and the sites revoked since. A second
``fedsec provision`` compares the federation file with it and refuses a change
that would need new material for a site that already has its kit (another
coordinator address, another party assignment) unless ``--force`` is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fedsec.deploy.files import read_json, write_json
from fedsec.deploy.layout import Layout
from fedsec.deploy.spec import FederationSpec
from fedsec.errors import ConfigError

VERSION = 1


@dataclass
class SiteRecord:
    """One provisioned site."""

    mpc_party: int | None = None
    mpc_address: str = ""
    revoked: bool = False


@dataclass
class Record:
    """The whole record."""

    address: str
    connection: str
    has_mpc: bool
    sites: dict[str, SiteRecord] = field(default_factory=dict)

    @property
    def active_sites(self) -> list[str]:
        """Sites provisioned and not revoked, in provisioning order."""
        return [n for n, s in self.sites.items() if not s.revoked]

    def require_site(self, name: str) -> SiteRecord:
        """The record of an active site, or a one-line error."""
        site = self.sites.get(name)
        if site is None:
            raise ConfigError(f"no site {name!r} was provisioned here")
        if site.revoked:
            raise ConfigError(f"site {name!r} was revoked")
        return site


def load(layout: Layout) -> Record:
    """Read ``federation.json``."""
    raw = read_json(layout.record)
    try:
        if raw["version"] != VERSION:
            raise ConfigError(f"{layout.record}: unknown version {raw['version']!r}")
        sites = {
            str(name): SiteRecord(
                None if s["mpc-party"] is None else int(s["mpc-party"]),
                str(s["mpc-address"]),
                bool(s["revoked"]),
            )
            for name, s in raw["sites"].items()
        }
        return Record(
            str(raw["address"]), str(raw["connection"]), bool(raw["mpc"]), sites
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise ConfigError(f"{layout.record}: not a fedsec federation record") from None


def save(layout: Layout, record: Record) -> None:
    """Write ``federation.json``."""
    value: dict[str, Any] = {
        "version": VERSION,
        "address": record.address,
        "connection": record.connection,
        "mpc": record.has_mpc,
        "sites": {
            name: {
                "mpc-party": s.mpc_party,
                "mpc-address": s.mpc_address,
                "revoked": s.revoked,
            }
            for name, s in record.sites.items()
        },
    }
    write_json(layout.record, value, force=True)


def merged(previous: Record | None, spec: FederationSpec) -> Record:
    """The record after provisioning ``spec`` on top of ``previous``."""
    out = Record(
        spec.coordinator.address,
        spec.connection,
        spec.has_mpc or (previous is not None and previous.has_mpc),
    )
    if previous is not None:
        out.sites.update(previous.sites)
    for site in spec.sites:
        out.sites.setdefault(site.name, SiteRecord(site.mpc_party, site.mpc_address))
    return out


def check_compatible(previous: Record, spec: FederationSpec) -> None:
    """Refuse a federation file that contradicts the kits already made."""
    if previous.address != spec.coordinator.address:
        raise ConfigError(
            f"coordinator.address changed from {previous.address} to "
            f"{spec.coordinator.address}: the SuperLink certificate names the old "
            "one; provision again with --force (every site gets a new kit)"
        )
    if previous.connection != spec.connection:
        raise ConfigError(
            f"connection changed from {previous.connection!r} to {spec.connection!r}"
        )
    for site in spec.sites:
        old = previous.sites.get(site.name)
        if old is None:
            if previous.has_mpc != spec.has_mpc:
                raise ConfigError(
                    "MPC parties are set up with the first kits; provision again "
                    "with --force to add or remove them"
                )
            continue
        if old.revoked:
            raise ConfigError(
                f"site {site.name!r} was revoked; give the returning site a new name"
            )
        if (old.mpc_party, old.mpc_address) != (site.mpc_party, site.mpc_address):
            raise ConfigError(
                f"site {site.name!r}: MPC role changed; provision again with --force"
            )
