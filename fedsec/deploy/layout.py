"""Where every file of a provisioned federation lives.

::

    <out>/                          0700: it holds every kit
      federation.json               public record of what was provisioned
      public/                       what every site may see: the SuperLink's CA,
        superlink-ca.pem            the parties' CA and the site registry
        mpc-ca.pem
        registry.json
      coordinator/                  the coordinator's kit (0700)
        start-superlink.sh          starts flower-superlink with every flag
        flwr-env.sh                 `. flwr-env.sh`: the flwr CLI's connection
        register-sites.sh           one `flwr supernode register` line per site
        superlink-tls/              ca.pem, server.pem, server.key (secret)
        site-keys/<site>.pub        the sites' SuperNode public keys
        flwr-home/secagg-keys/registry.json   the ServerApp's copy of the registry
        runs/                       the ServerApp's outputs per run
      sites/<site>/                 one kit per site (0700)
        start-supernode.sh          starts flower-supernode with every flag
        node-config.toml            --node-config; paths relative to the kit
        policy.toml                 the site's own floors (policy-file)
        superlink-ca.pem            whom the site trusts as SuperLink
        node-auth.key / .pub        SuperNode authentication (key secret)
        secagg-keys/<site>.key      signing key (secret) + registry.json
        mpc-ca.pem                  the compute parties' CA (MPC federations)
        mpc-tls/                    a compute party's own TLS key and certificate
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fedsec.identity import REGISTRY

RECORD = "federation.json"


@dataclass(frozen=True)
class PublicFiles:
    """The public files every site may get (``<out>/public``)."""

    root: Path

    @property
    def superlink_ca(self) -> Path:
        """The CA certificate the SuperLink's certificate chains to."""
        return self.root / "superlink-ca.pem"

    @property
    def mpc_ca(self) -> Path:
        """The compute parties' CA certificate."""
        return self.root / "mpc-ca.pem"

    @property
    def registry(self) -> Path:
        """Site name → Ed25519 verification key."""
        return self.root / REGISTRY


@dataclass(frozen=True)
class CoordinatorKit:
    """The coordinator's kit folder."""

    root: Path

    @property
    def tls_dir(self) -> Path:
        """The SuperLink's TLS material."""
        return self.root / "superlink-tls"

    @property
    def ca_cert(self) -> Path:
        """``--ssl-ca-certfile``."""
        return self.tls_dir / "ca.pem"

    @property
    def cert(self) -> Path:
        """``--ssl-certfile``."""
        return self.tls_dir / "server.pem"

    @property
    def key(self) -> Path:
        """``--ssl-keyfile`` (secret)."""
        return self.tls_dir / "server.key"

    @property
    def site_keys(self) -> Path:
        """The sites' SuperNode public keys, for ``flwr supernode register``."""
        return self.root / "site-keys"

    def site_key(self, site: str) -> Path:
        """One site's SuperNode public key."""
        return self.site_keys / f"{site}.pub"

    @property
    def flwr_home(self) -> Path:
        """``FLWR_HOME`` of the SuperLink and of the operator's flwr CLI."""
        return self.root / "flwr-home"

    @property
    def registry_dir(self) -> Path:
        """The ServerApp's copy of the site registry (``$FLWR_HOME/secagg-keys``)."""
        return self.flwr_home / "secagg-keys"

    @property
    def runs(self) -> Path:
        """``FEDSEC_RUNS_DIR``: per-run metrics and global models."""
        return self.root / "runs"

    @property
    def nodes(self) -> Path:
        """Site → node id, recorded by ``fedsec register``."""
        return self.root / "nodes.json"

    @property
    def start_script(self) -> Path:
        """Starts the SuperLink."""
        return self.root / "start-superlink.sh"

    @property
    def env_script(self) -> Path:
        """Sourced by the scripts: FLWR_HOME and the CLI connection."""
        return self.root / "flwr-env.sh"

    @property
    def register_script(self) -> Path:
        """The ``flwr supernode register`` lines."""
        return self.root / "register-sites.sh"


@dataclass(frozen=True)
class SiteKit:
    """One site's kit folder; file names inside it are relative to it."""

    root: Path
    name: str

    NODE_CONFIG = "node-config.toml"
    POLICY = "policy.toml"
    SUPERLINK_CA = "superlink-ca.pem"
    AUTH_KEY = "node-auth.key"
    AUTH_PUB = "node-auth.pub"
    KEYS_DIR = "secagg-keys"
    MPC_CA = "mpc-ca.pem"
    MPC_TLS_DIR = "mpc-tls"
    MPC_SESSION_LOG = "mpc-sessions.log"
    START = "start-supernode.sh"

    def path(self, name: str) -> Path:
        """A file of the kit."""
        return self.root / name

    @property
    def signing_key(self) -> Path:
        """The site's Ed25519 signing key (secret)."""
        return self.root / self.KEYS_DIR / f"{self.name}.key"

    @property
    def registry(self) -> Path:
        """The site's copy of the public registry."""
        return self.root / self.KEYS_DIR / REGISTRY


@dataclass(frozen=True)
class Layout:
    """Every folder of one provisioning output."""

    out: Path

    @property
    def record(self) -> Path:
        """``federation.json``."""
        return self.out / RECORD

    @property
    def public(self) -> PublicFiles:
        """``<out>/public``."""
        return PublicFiles(self.out / "public")

    @property
    def coordinator(self) -> CoordinatorKit:
        """``<out>/coordinator``."""
        return CoordinatorKit(self.out / "coordinator")

    def site(self, name: str) -> SiteKit:
        """``<out>/sites/<name>``."""
        return SiteKit(self.out / "sites" / name, name)
