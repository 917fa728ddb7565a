"""Provision a federation: the coordinator's kit and one kit per site.

:func:`provision` turns a checked :class:`~fedsec.deploy.spec.FederationSpec`
into folders (:mod:`fedsec.deploy.layout`). What it creates, with
``cryptography`` only:

* the SuperLink's TLS material: a throwaway CA whose key is dropped after it
  signs the one server certificate (:func:`fedsec.pki.make_server_tls`), or
  the consortium's own CA certificate, key and certificate, checked and copied;
* per site: a SuperNode authentication key pair (ECDSA P-384, OpenSSH), an
  Ed25519 signing key for the active variant and MPC packages, the public
  registry, the SuperLink's CA, its policy file, its node config and its start
  script; for an MPC federation the parties' CA, and for a compute party its
  TLS key and certificate (the parties' CA key is dropped too);
* the coordinator's start script, the ``flwr supernode register`` lines and
  the ServerApp's copy of the registry.

Private keys are 0600 in 0700 folders and never printed. Re-running with a
longer site list adds the new sites and touches no file of an existing one;
replacing anything needs ``force``. Keys made here travel with the kits: a
site that wants its keys never to leave its premises creates them itself with
``fedsec rotate-keys`` on its own kit (docs/deployment.md).
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from fedsec.deploy import record, registry
from fedsec.deploy.files import (
    PUBLIC,
    SCRIPT,
    SECRET,
    ExistsError,
    private_dir,
    toml_lines,
    write_file,
    write_text,
)
from fedsec.deploy.layout import Layout, SiteKit
from fedsec.deploy.scripts import (
    env_script,
    register_script,
    superlink_script,
    supernode_script,
)
from fedsec.deploy.spec import ExistingTls, FederationSpec, SiteSpec
from fedsec.errors import ConfigError
from fedsec.pki import make_node_auth_key, make_server_tls
from fedsec.policy import SitePolicy, TrustAnchors, default_modes


@dataclass
class ProvisionReport:
    """What one provisioning run did."""

    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    coordinator_created: bool = False
    notes: list[str] = field(default_factory=list)


def provision(
    spec: FederationSpec, out: Path, *, force: bool = False
) -> ProvisionReport:
    """Write (or extend) the kits of ``spec`` under ``out``.

    A first run (or ``force``) makes everything; a later run with an existing
    ``federation.json`` adds the sites it does not know and leaves every file
    of the others as it is.
    """
    layout = Layout(out)
    private_dir(out)
    previous = None if force or not layout.record.is_file() else record.load(layout)
    if previous is not None:
        record.check_compatible(previous, spec)
    existing = set() if previous is None else set(previous.sites)
    new_sites = [s for s in spec.sites if s.name not in existing]
    for site in new_sites:
        if layout.site(site.name).root.exists() and not force:
            raise ExistsError(
                f"{layout.site(site.name).root} exists but is not in "
                f"{layout.record.name}; use --force to replace it"
            )
    report = ProvisionReport(kept=[s.name for s in spec.sites if s.name in existing])
    if previous is None:
        _coordinator_tls(spec, layout, force)
        report.coordinator_created = True
        if spec.has_mpc:
            _mpc_tls(spec, layout, force)
    keys = {site.name: _site_kit(spec, site, layout, force) for site in new_sites}
    stale = set(registry.load(layout)) if previous is None else set()
    registry.update(layout, add=keys, remove=stale - set(keys))
    for site in new_sites:
        registry.give_to_site(layout, layout.site(site.name))
        kit = layout.site(site.name)
        write_file(
            layout.coordinator.site_key(site.name),
            kit.path(SiteKit.AUTH_PUB).read_bytes(),
            PUBLIC,
            force=True,
        )
    report.created = [s.name for s in new_sites]
    merged = record.merged(previous, spec)
    _coordinator_files(spec, layout, merged.active_sites)
    record.save(layout, merged)
    if previous is not None and new_sites:
        report.notes.append(
            f"the site registry changed: give {layout.public.registry} to every "
            "other site (as secagg-keys/registry.json in its kit) and register "
            "the new sites (fedsec register)"
        )
    return report


# ------------------------------------------------------------ coordinator
def _coordinator_tls(spec: FederationSpec, layout: Layout, force: bool) -> None:
    kit = layout.coordinator
    private_dir(kit.root)
    for path in (kit.ca_cert, kit.cert, kit.key):
        if path.exists() and not force:
            raise ExistsError(f"{path} exists; use --force to replace it")
    c = spec.coordinator
    if c.tls is None:
        with tempfile.TemporaryDirectory(dir=layout.out) as scratch:
            tls = make_server_tls(
                Path(scratch),
                (c.host, *c.cert_hosts),
                valid_for=dt.timedelta(days=c.valid_days),
            )
            for src, dst, mode in (
                (tls.ca_cert, kit.ca_cert, PUBLIC),
                (tls.cert, kit.cert, PUBLIC),
                (tls.key, kit.key, SECRET),
            ):
                write_file(dst, src.read_bytes(), mode, force=force)
    else:
        ca, cert, key = _check_existing_tls(c.tls, c.host)
        write_file(kit.ca_cert, ca, PUBLIC, force=force)
        write_file(kit.cert, cert, PUBLIC, force=force)
        write_file(kit.key, key, SECRET, force=force)
    write_file(layout.public.superlink_ca, kit.ca_cert.read_bytes(), PUBLIC, force=True)


def _check_existing_tls(tls: ExistingTls, host: str) -> tuple[bytes, bytes, bytes]:
    """Read the consortium's CA, certificate and key; check they fit together."""
    try:
        ca_pem, cert_pem, key_pem = (
            p.read_bytes() for p in (tls.ca_cert, tls.cert, tls.key)
        )
    except OSError as exc:
        raise ConfigError(f"coordinator.tls: cannot read {exc.filename}") from None
    try:
        ca = x509.load_pem_x509_certificate(ca_pem)
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        raise ConfigError(
            "coordinator.tls: ca-cert and cert must be PEM certificates"
        ) from None
    try:
        key = serialization.load_pem_private_key(key_pem, None)
    except (ValueError, TypeError):
        raise ConfigError(
            "coordinator.tls.key: not an unencrypted PEM private key"
        ) from None
    try:
        cert.verify_directly_issued_by(ca)
    except Exception:
        raise ConfigError("coordinator.tls: cert is not issued by ca-cert") from None
    if key.public_key() != cert.public_key():
        raise ConfigError("coordinator.tls: key does not belong to cert")
    if not _names_host(cert, host):
        raise ConfigError(
            f"coordinator.tls: cert does not name {host!r} (subject alternative name)"
        )
    return ca_pem, cert_pem, key_pem


def _names_host(cert: x509.Certificate, host: str) -> bool:
    import ipaddress

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    try:
        return ipaddress.ip_address(host) in san.get_values_for_type(x509.IPAddress)
    except ValueError:
        return host in san.get_values_for_type(x509.DNSName)


def _coordinator_files(spec: FederationSpec, layout: Layout, sites: list[str]) -> None:
    """The coordinator's scripts (rewritten: they list every active site)."""
    kit = layout.coordinator
    private_dir(kit.runs)
    write_text(
        kit.env_script, env_script(spec.coordinator, spec.connection), force=True
    )
    write_text(kit.start_script, superlink_script(spec.coordinator), SCRIPT, force=True)
    write_text(
        kit.register_script, register_script(sites, spec.connection), SCRIPT, force=True
    )


# ------------------------------------------------------------------ sites
def _mpc_tls(spec: FederationSpec, layout: Layout, force: bool) -> None:
    """The parties' CA (public) and each party's key and certificate."""
    from fedsec.mpc.tls import make_throwaway_pki, party_name

    days = dt.timedelta(days=spec.coordinator.valid_days)
    with tempfile.TemporaryDirectory(dir=layout.out) as scratch:
        identities = make_throwaway_pki(Path(scratch), valid_for=days)
        write_file(
            layout.public.mpc_ca, identities[0].ca_file.read_bytes(), PUBLIC, force=True
        )
        for site in spec.sites:
            if site.mpc_party is None:
                continue
            kit = layout.site(site.name)
            folder = private_dir(kit.path(SiteKit.MPC_TLS_DIR))
            ident = identities[site.mpc_party]
            name = party_name(site.mpc_party)
            write_file(
                folder / "ca.pem", ident.ca_file.read_bytes(), PUBLIC, force=force
            )
            write_file(
                folder / f"{name}.pem",
                ident.cert_file.read_bytes(),
                PUBLIC,
                force=force,
            )
            write_file(
                folder / f"{name}.key", ident.key_file.read_bytes(), SECRET, force=force
            )


def _site_kit(
    spec: FederationSpec, site: SiteSpec, layout: Layout, force: bool
) -> bytes:
    """Write one site's kit; return its signing key's verification key."""
    kit = layout.site(site.name)
    private_dir(kit.root)
    for name in (SiteKit.AUTH_KEY, SiteKit.AUTH_PUB):
        if kit.path(name).exists() and not force:
            raise ExistsError(f"{kit.path(name)} exists; use --force to replace it")
    new_auth_key(kit, site.name, force=force)
    verify_key = registry.new_signing_key(kit, force=force)
    write_file(
        kit.path(SiteKit.SUPERLINK_CA),
        layout.public.superlink_ca.read_bytes(),
        PUBLIC,
        force=force,
    )
    if spec.has_mpc:
        write_file(
            kit.path(SiteKit.MPC_CA),
            layout.public.mpc_ca.read_bytes(),
            PUBLIC,
            force=force,
        )
    config = node_config(spec, site)
    write_text(kit.path(SiteKit.POLICY), policy_file(spec, site, config), force=force)
    header = [
        f"# Node config of site {site.name!r} (flower-supernode --node-config).",
        "# Relative paths are relative to this kit: start-supernode.sh runs from here.",
        "# Every key is explained in docs/deployment.md (node-config reference).",
    ]
    write_text(
        kit.path(SiteKit.NODE_CONFIG),
        "\n".join(header + toml_lines(config)) + "\n",
        force=force,
    )
    write_text(
        kit.path(SiteKit.START),
        supernode_script(site, spec.coordinator),
        SCRIPT,
        force=force,
    )
    return verify_key


def new_auth_key(kit: SiteKit, site: str, *, force: bool = False) -> None:
    """Give ``kit`` a fresh SuperNode authentication key pair (private 0600)."""
    with tempfile.TemporaryDirectory(dir=kit.root) as scratch:
        auth = make_node_auth_key(Path(scratch), site)
        write_file(
            kit.path(SiteKit.AUTH_KEY),
            auth.private_key.read_bytes(),
            SECRET,
            force=force,
        )
        write_file(
            kit.path(SiteKit.AUTH_PUB),
            auth.public_key.read_bytes(),
            PUBLIC,
            force=force,
        )


def node_config(spec: FederationSpec, site: SiteSpec) -> dict[str, Any]:
    """The node-config keys of one site's kit (paths relative to the kit)."""
    config: dict[str, Any] = {
        "data-path": site.data_path,
        "secagg-site": site.name,
        "secagg-keys-dir": SiteKit.KEYS_DIR,
        "policy-file": SiteKit.POLICY,
    }
    if spec.has_mpc:
        config["mpc-ca-file"] = SiteKit.MPC_CA
    if site.mpc_party is not None:
        config.update(
            {
                "mpc-party": site.mpc_party,
                "mpc-address": site.mpc_address,
                "mpc-tls-dir": SiteKit.MPC_TLS_DIR,
                "mpc-session-log": SiteKit.MPC_SESSION_LOG,
            }
        )
    config.update(site.node_config)
    return config


def policy_file(spec: FederationSpec, site: SiteSpec, config: dict[str, Any]) -> str:
    """The site's policy as TOML, every key written out with its value.

    ``modes`` defaults to what the site is provisioned for (its trust anchors:
    ``active``, and ``mpc`` in an MPC federation), unless the federation file
    names them.
    """
    values = spec.policy_values(site)
    if "modes" not in values:
        anchors = TrustAnchors.from_node_config(config)
        values = {**values, "modes": ",".join(sorted(default_modes(anchors)))}
    policy = SitePolicy.from_values(values)
    header = [
        f"# Site policy of {site.name!r}: the floors no server request can lower.",
        "# The SuperNode reads it through node config policy-file; a policy-* key in",
        "# the node config overrides a value here. Keys: docs/deployment.md.",
    ]
    return "\n".join(header + toml_lines(policy.to_values())) + "\n"
