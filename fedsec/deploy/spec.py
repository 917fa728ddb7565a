"""The federation file: who the coordinator is, which sites take part.

``fedsec provision federation.yaml --out kits/`` reads a small YAML file::

    coordinator:
      address: fl.consortium.example:9092   # host:port every site dials
      listen: 0.0.0.0                        # optional, the SuperLink's --host
      cert-hosts: [10.0.0.5]                 # optional extra names in its certificate
      valid-days: 365                        # optional, throwaway certificates
      tls:                                   # optional: the consortium's own PKI
        ca-cert: /pki/ca.pem
        cert: /pki/superlink.pem
        key: /pki/superlink.key
    connection: fedsec                       # optional, the flwr CLI connection name
    policy:                                  # optional, every site's policy defaults
      min-sites: 3
    sites:
      - name: hospital-a
        data-path: /srv/fedsec/data.csv      # optional, default data.csv in the kit
        runtime-port: 9094                   # optional, the SuperNode's local port
        mpc-party: 0                         # optional: a compute party (0, 1, 2)
        mpc-address: hospital-a.example:9201 # a party's address for the other two
        policy: {min-noise-multiplier: 0.5}  # optional, this site's own floors
        node-config: {vertical-holder: 0}    # optional, more node-config keys

Every key is checked here, once: an unknown key, a bad value or a file that is
too large is one line naming the key (:class:`~fedsec.errors.ConfigError`).
Policy values are checked by :class:`~fedsec.policy.SitePolicy`, so a kit
never carries a policy its SuperNode would refuse to start with.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fedsec.errors import ConfigError
from fedsec.files import read_bounded
from fedsec.mpc.shares import PARTIES
from fedsec.policy import SitePolicy

MAX_FILE_BYTES = 1 << 20
DEFAULT_CONNECTION = "fedsec"
DEFAULT_RUNTIME_PORT = 9094
DEFAULT_VALID_DAYS = 365


@dataclass(frozen=True)
class ExistingTls:
    """The consortium's own CA certificate and the SuperLink's key and certificate."""

    ca_cert: Path
    cert: Path
    key: Path


@dataclass(frozen=True)
class CoordinatorSpec:
    """Where the SuperLink runs and how the sites reach it."""

    host: str
    port: int
    listen: str = "0.0.0.0"  # noqa: S104 - the SuperLink must accept remote sites
    cert_hosts: tuple[str, ...] = ()
    valid_days: int = DEFAULT_VALID_DAYS
    tls: ExistingTls | None = None

    @property
    def address(self) -> str:
        """``host:port`` as the sites and the flwr CLI dial it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class SiteSpec:
    """One hospital: its name, its data file, its role, its own policy values."""

    name: str
    data_path: str = "data.csv"
    runtime_port: int = DEFAULT_RUNTIME_PORT
    mpc_party: int | None = None
    mpc_address: str = ""
    policy: Mapping[str, Any] = field(default_factory=dict)
    node_config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FederationSpec:
    """The whole federation file, checked."""

    coordinator: CoordinatorSpec
    sites: tuple[SiteSpec, ...]
    connection: str = DEFAULT_CONNECTION
    policy: Mapping[str, Any] = field(default_factory=dict)

    @property
    def has_mpc(self) -> bool:
        """True when three sites are the MPC compute parties."""
        return any(s.mpc_party is not None for s in self.sites)

    def site(self, name: str) -> SiteSpec:
        """The site called ``name``."""
        for site in self.sites:
            if site.name == name:
                return site
        raise ConfigError(f"no site {name!r} in the federation file")

    def policy_values(self, site: SiteSpec) -> dict[str, Any]:
        """The federation's policy values overridden by the site's own."""
        return {**self.policy, **site.policy}


def load_spec(path: Path) -> FederationSpec:
    """Read and check a federation file (at most 1 MiB of YAML)."""
    data = read_bounded(path, MAX_FILE_BYTES, "a federation file")
    try:
        raw = yaml.safe_load(data.decode())
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise ConfigError(f"{path}: not a YAML federation file{line}") from None
    try:
        return parse_spec(raw, base=path.parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def parse_spec(raw: object, base: Path = Path()) -> FederationSpec:
    """Check a parsed federation file; relative TLS paths are taken from ``base``."""
    top = _mapping(raw, "the federation file")
    _known(top, "", {"coordinator", "sites", "connection", "policy"})
    if "coordinator" not in top or "sites" not in top:
        raise ConfigError("the federation file needs 'coordinator' and 'sites'")
    coordinator = _coordinator(_mapping(top["coordinator"], "coordinator"), base)
    connection = _name(top.get("connection", DEFAULT_CONNECTION), "connection")
    policy = _policy(top.get("policy", {}), "policy")
    items = top["sites"]
    if not isinstance(items, list) or not items:
        raise ConfigError("sites must be a non-empty list")
    sites = tuple(_site(item, f"sites[{i}]") for i, item in enumerate(items))
    names = [s.name for s in sites]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"sites: name(s) listed twice: {', '.join(repeated)}")
    spec = FederationSpec(coordinator, sites, connection, policy)
    _check_parties(spec)
    for site in sites:
        _check_policy(spec.policy_values(site), f"site {site.name!r}: policy")
    return spec


# ----------------------------------------------------------------- sections
def _coordinator(raw: Mapping[str, Any], base: Path) -> CoordinatorSpec:
    _known(
        raw, "coordinator.", {"address", "listen", "cert-hosts", "valid-days", "tls"}
    )
    if "address" not in raw:
        raise ConfigError("coordinator.address is required (host:port)")
    host, port = _host_port(raw["address"], "coordinator.address")
    listen = str(raw.get("listen", "0.0.0.0"))  # noqa: S104
    _host(listen, "coordinator.listen")
    hosts = raw.get("cert-hosts", [])
    if not isinstance(hosts, list):
        raise ConfigError("coordinator.cert-hosts must be a list of names")
    cert_hosts = tuple(_host(str(h), "coordinator.cert-hosts") for h in hosts)
    valid_days = _int(
        raw.get("valid-days", DEFAULT_VALID_DAYS), "coordinator.valid-days"
    )
    if not 1 <= valid_days <= 3650:
        raise ConfigError("coordinator.valid-days must lie in [1, 3650]")
    tls = None
    if "tls" in raw:
        t = _mapping(raw["tls"], "coordinator.tls")
        _known(t, "coordinator.tls.", {"ca-cert", "cert", "key"})
        missing = sorted({"ca-cert", "cert", "key"} - set(t))
        if missing:
            raise ConfigError(f"coordinator.tls needs {', '.join(missing)}")
        ca_cert, cert, key = (base / str(t[k]) for k in ("ca-cert", "cert", "key"))
        tls = ExistingTls(ca_cert, cert, key)
    return CoordinatorSpec(host, port, listen, cert_hosts, valid_days, tls)


_SITE_KEYS = {
    "name",
    "data-path",
    "runtime-port",
    "mpc-party",
    "mpc-address",
    "policy",
    "node-config",
}
# node-config keys the kit writes itself (from the keys above and its files)
KIT_KEYS = frozenset(
    {
        "data-path",
        "secagg-site",
        "secagg-keys-dir",
        "policy-file",
        "mpc-ca-file",
        "mpc-party",
        "mpc-address",
        "mpc-tls-dir",
        "mpc-session-log",
    }
)


def _site(raw: object, where: str) -> SiteSpec:
    item = _mapping(raw, where)
    _known(item, f"{where}.", _SITE_KEYS)
    if "name" not in item:
        raise ConfigError(f"{where}.name is required")
    name = _name(item["name"], f"{where}.name")
    where = f"site {name!r}"
    data_path = item.get("data-path", "data.csv")
    if not isinstance(data_path, str) or not data_path:
        raise ConfigError(f"{where}: data-path must be a file path")
    port = _int(
        item.get("runtime-port", DEFAULT_RUNTIME_PORT), f"{where}: runtime-port"
    )
    _port(port, f"{where}: runtime-port")
    party = None
    address = ""
    if "mpc-party" in item:
        party = _int(item["mpc-party"], f"{where}: mpc-party")
        if party not in range(PARTIES):
            raise ConfigError(f"{where}: mpc-party must be 0, 1 or 2, got {party}")
        if "mpc-address" not in item:
            raise ConfigError(f"{where}: a compute party needs mpc-address (host:port)")
        host, p = _host_port(item["mpc-address"], f"{where}: mpc-address")
        address = f"{host}:{p}"
    elif "mpc-address" in item:
        raise ConfigError(f"{where}: mpc-address without mpc-party")
    policy = _policy(item.get("policy", {}), f"{where}: policy")
    extra = _node_config(item.get("node-config", {}), f"{where}: node-config")
    return SiteSpec(name, data_path, port, party, address, policy, extra)


def _node_config(raw: object, where: str) -> dict[str, Any]:
    """Extra node-config keys of a site: scalars, none the kit sets itself."""
    values = dict(_mapping(raw, where))
    for key, value in values.items():
        if key in KIT_KEYS or key.startswith("policy-"):
            raise ConfigError(
                f"{where}: {key} is written by the kit (use the site's own keys: "
                "data-path, mpc-party, mpc-address, policy)"
            )
        if not key or not all(c.isalnum() or c in "-_" for c in key):
            raise ConfigError(f"{where}: invalid key {key!r}")
        if not isinstance(value, str | int | float | bool):
            raise ConfigError(f"{where}: {key} must be a string, number or boolean")
    return values


def _check_parties(spec: FederationSpec) -> None:
    parties = sorted(s.mpc_party for s in spec.sites if s.mpc_party is not None)
    if parties and parties != list(range(PARTIES)):
        raise ConfigError(
            "MPC needs exactly three compute parties, mpc-party 0, 1 and 2; "
            f"got {', '.join(map(str, parties))}"
        )


def _policy(raw: object, where: str) -> dict[str, Any]:
    values = dict(_mapping(raw, where))
    values = {str(k).removeprefix("policy-"): v for k, v in values.items()}
    if isinstance(values.get("modes"), list):
        values["modes"] = ",".join(str(m) for m in values["modes"])
    _check_policy(values, where)
    return values


def _check_policy(values: Mapping[str, Any], where: str) -> None:
    try:
        SitePolicy.from_values(values)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc.reason}") from None


# ------------------------------------------------------------------ values
def _mapping(raw: object, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, dict) or not all(isinstance(k, str) for k in raw):
        raise ConfigError(f"{where} must be a mapping of names to values")
    return raw


def _known(raw: Mapping[str, Any], prefix: str, known: set[str]) -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        keys = ", ".join(prefix + k for k in unknown)
        raise ConfigError(f"unknown key(s) {keys}; known: {', '.join(sorted(known))}")


def _int(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where} must be an integer, got {value!r}")
    return value


def _port(port: int, where: str) -> int:
    if not 1 <= port <= 65535:
        raise ConfigError(f"{where}: port {port} is outside 1-65535")
    return port


def _name(value: object, where: str) -> str:
    text = str(value) if isinstance(value, str) else ""
    if not text or text[0] in ".-" or not all(c.isalnum() or c in "-_." for c in text):
        raise ConfigError(
            f"{where} must be letters, digits, '-', '_' or '.', got {value!r}"
        )
    return text


def _host(text: str, where: str) -> str:
    try:
        ipaddress.ip_address(text)
        return text
    except ValueError:
        pass
    labels = text.split(".")
    if not text or not all(
        label and label[0] != "-" and all(c.isalnum() or c == "-" for c in label)
        for label in labels
    ):
        raise ConfigError(f"{where}: {text!r} is not an IP address or DNS name")
    return text


def _host_port(value: object, where: str) -> tuple[str, int]:
    text = str(value) if isinstance(value, str) else ""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not port.isdigit():
        raise ConfigError(f"{where} must be host:port, got {value!r}")
    return _host(host, where), _port(int(port), where)
