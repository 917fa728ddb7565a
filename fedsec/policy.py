"""A site's own privacy policy: the floors no server message can lower.

The server *asks* (mode, threshold, noise, clip, who takes part); the site
*decides*. Everything that can weaken a guarantee is checked here against
values the site alone sets, in its SuperNode's node config
(``--node-config 'policy-min-sites=5 ...'``) or in a TOML policy file that
the node config names (``policy-file="/site/policy.toml"``, keys without the
``policy-`` prefix; a node-config key overrides the file). A request weaker
than the policy raises :class:`~fedsec.errors.PolicyError`, one line naming
the policy key and the value asked; the site replies with that line and
counts as a dropout of the stage.

Policy keys (node config ``policy-<key>``, or ``<key>`` in the file):

=========================  ===========  ===========================================
key                        default      what it bounds
=========================  ===========  ===========================================
``modes``                  provisioned  modes the site takes part in: ``plain``
                                        (its model in the clear, also central DP),
                                        ``semi_honest``, ``active``, ``mpc``,
                                        ``vertical`` (PSI and training on
                                        shares, as a holder or a party)
``min-sites``              3            fewest sites in a key set, an MPC session
                                        (there also ``min-threshold +
                                        colluders``), a released statistic
``min-threshold``          2            fewest shares ``t`` that reveal a secret,
                                        not counting colluders' shares
``min-threshold-fraction`` 0.5          ``t`` as a fraction of the site's
                                        closed neighbourhood
``colluders``              0            sites assumed to collude with the server:
                                        ``t >= min-threshold + colluders``, and in
                                        the active variant ``2t > |N[u]| +
                                        colluders``
``min-noise-multiplier``   0.0          least noise multiplier ``z`` of any DP
                                        mode, *after* dropouts
``require-dp``             false        refuse every mode without DP noise
``max-clip-norm``          1.0          largest clipping norm ``C`` (distributed
                                        DP, MPC)
``max-weight``             1000         largest weight of one site (MPC)
``require-signed-sites``   false        an MPC party refuses to compute without
                                        a site registry (``secagg-keys-dir``):
                                        with one it counts only packages signed
                                        by registered sites, without one it
                                        counts packages (not Sybil-proof)
=========================  ===========  ===========================================

The default of ``modes`` follows what the site was provisioned for: a site
with a signing key folder (``secagg-keys-dir``) takes part in the active
variant only, one with the compute parties' CA (``mpc-ca-file`` or
``mpc-tls-dir``) in MPC, one with both in both; a site provisioned for
neither takes part in ``plain`` and ``semi_honest`` only. So a site set up
for a mode never accepts a weaker one unless its operator says so.

The trust anchors (the site registry and signing key, the compute parties'
CA) are read from the node config only, never from a message:
:class:`TrustAnchors`.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from fedsec.errors import ConfigError, PolicyError
from fedsec.files import read_bounded

MODES = ("plain", "semi_honest", "active", "mpc", "vertical")
PREFIX = "policy-"
FILE_KEY = "policy-file"
_MAX_POLICY_FILE = 1 << 16


@dataclass(frozen=True)
class SitePolicy:
    """The floors one site enforces (see the module docstring for the keys)."""

    modes: frozenset[str] = frozenset({"plain", "semi_honest"})
    min_sites: int = 3
    min_threshold: int = 2
    min_threshold_fraction: float = 0.5
    colluders: int = 0
    min_noise_multiplier: float = 0.0
    require_dp: bool = False
    max_clip_norm: float = 1.0
    max_weight: int = 1000
    require_signed_sites: bool = False

    def __post_init__(self) -> None:
        unknown = sorted(set(self.modes) - set(MODES))
        if unknown or not self.modes:
            raise ConfigError(
                f"policy-modes must list some of {', '.join(MODES)}; "
                f"got {', '.join(sorted(self.modes)) or 'none'}"
            )
        if self.min_sites < 2:
            raise ConfigError(f"policy-min-sites must be >= 2, got {self.min_sites}")
        if self.min_threshold < 1:
            raise ConfigError(
                f"policy-min-threshold must be >= 1, got {self.min_threshold}"
            )
        if not 0.0 < self.min_threshold_fraction <= 1.0:
            raise ConfigError(
                "policy-min-threshold-fraction must lie in (0, 1], got "
                f"{self.min_threshold_fraction}"
            )
        if self.colluders < 0:
            raise ConfigError(f"policy-colluders must be >= 0, got {self.colluders}")
        if not (
            math.isfinite(self.min_noise_multiplier) and self.min_noise_multiplier >= 0
        ):
            raise ConfigError("policy-min-noise-multiplier must be finite and >= 0")
        if not self.max_clip_norm > 0:
            raise ConfigError("policy-max-clip-norm must be positive")
        if self.max_weight < 1:
            raise ConfigError(f"policy-max-weight must be >= 1, got {self.max_weight}")

    # ------------------------------------------------------------- building
    @classmethod
    def from_node_config(cls, node_config: Mapping[str, Any]) -> SitePolicy:
        """The policy of a SuperNode: its policy file, then ``policy-*`` keys.

        Raises
        ------
        ConfigError
            For an unknown policy key, a bad value, or an unreadable file.
        """
        values: dict[str, Any] = {}
        if FILE_KEY in node_config:
            values.update(_read_file(Path(str(node_config[FILE_KEY]))))
        for key, value in node_config.items():
            if key.startswith(PREFIX) and key != FILE_KEY:
                values[key[len(PREFIX) :]] = value
        if "modes" not in values:
            anchors = TrustAnchors.from_node_config(node_config)
            values["modes"] = sorted(default_modes(anchors))
        return cls.from_values(values)

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> SitePolicy:
        """Build a policy from ``{key: value}`` with kebab-case keys."""
        known = {f.name.replace("_", "-"): f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(
                f"unknown site policy key(s): {', '.join(PREFIX + k for k in unknown)}"
            )
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            kwargs[known[key].name] = _coerce(key, value, known[key].type)
        return cls(**kwargs)

    def to_values(self) -> dict[str, Any]:
        """``{key: value}`` with kebab-case keys (modes as a comma list)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, frozenset):
                value = ",".join(sorted(value))
            out[f.name.replace("_", "-")] = value
        return out

    def to_node_config(self) -> dict[str, Any]:
        """The ``policy-*`` node-config keys that rebuild this policy."""
        return {PREFIX + k: v for k, v in self.to_values().items()}

    # --------------------------------------------------------------- checks
    def require_mode(self, mode: str) -> None:
        """Refuse a mode the site does not take part in."""
        if mode not in self.modes:
            raise PolicyError("modes", ",".join(sorted(self.modes)), mode)

    def require_dp_noise(self, noise_multiplier: float | None) -> None:
        """Refuse a request whose DP noise multiplier (``None``: no DP) is too low.

        ``noise_multiplier`` is the *effective* multiplier of what the site's
        data contributes to a release (after dropouts, in distributed DP).
        """
        if noise_multiplier is None:
            if self.require_dp:
                raise PolicyError("require-dp", True, "a mode without DP noise")
            return
        if noise_multiplier < self.min_noise_multiplier:
            raise PolicyError(
                "min-noise-multiplier",
                self.min_noise_multiplier,
                f"noise multiplier {noise_multiplier:.4g}",
            )

    def require_clip(self, clip_norm: float) -> None:
        """Refuse a clipping norm above ``max-clip-norm``."""
        if not clip_norm <= self.max_clip_norm:
            raise PolicyError("max-clip-norm", self.max_clip_norm, clip_norm)

    def require_weight(self, max_weight: int) -> None:
        """Refuse a weight bound above ``max-weight``."""
        if max_weight > self.max_weight:
            raise PolicyError("max-weight", self.max_weight, max_weight)

    def require_sites(self, count: int, what: str = "sites") -> None:
        """Refuse a set of fewer than ``min-sites`` sites."""
        if count < self.min_sites:
            raise PolicyError("min-sites", self.min_sites, f"{count} {what}")

    def least_sites(self) -> int:
        """The fewest inputs in any released aggregate (an MPC session).

        At least ``min-sites``, and ``min-threshold`` beyond the sites assumed
        to collude (who know their own inputs and can subtract them).
        """
        return max(self.min_sites, self.min_threshold + self.colluders)

    def least_threshold(self, neighbourhood: int, *, active: bool) -> int:
        """The smallest ``t`` this site accepts for a closed neighbourhood size.

        ``neighbourhood`` counts the site and its neighbours (``n`` on the
        complete graph). In the active variant ``2t > |N| + colluders``: two
        disjoint honest views, each signed by ``t`` members of one
        neighbourhood, cannot exist (``docs/threat-model.md``).
        """
        least = max(
            self.min_threshold + self.colluders,
            math.ceil(self.min_threshold_fraction * neighbourhood - 1e-9),
        )
        if active:
            least = max(least, (neighbourhood + self.colluders) // 2 + 1)
        return least

    def require_threshold(self, t: int, neighbourhood: int, *, active: bool) -> None:
        """Refuse a threshold below :meth:`least_threshold`, naming the key."""
        if t >= self.least_threshold(neighbourhood, active=active):
            return
        if t < self.min_threshold:
            raise PolicyError("min-threshold", self.min_threshold, f"t={t}")
        if t < self.min_threshold + self.colluders:
            raise PolicyError(
                "colluders",
                self.colluders,
                f"t={t} (needs t >= min-threshold + colluders)",
            )
        if active and 2 * t <= neighbourhood + self.colluders:
            raise PolicyError(
                "colluders",
                self.colluders,
                f"t={t} of a neighbourhood of {neighbourhood} "
                "(the active variant needs 2t > neighbourhood + colluders)",
            )
        raise PolicyError(
            "min-threshold-fraction",
            self.min_threshold_fraction,
            f"t={t} of a neighbourhood of {neighbourhood}",
        )


@dataclass(frozen=True)
class TrustAnchors:
    """What a site trusts, from its node config only (never from a message).

    Attributes
    ----------
    keys_dir
        Folder with the site registry (``registry.json``) and this site's
        signing key (active secure aggregation); node config
        ``secagg-keys-dir``.
    site_name
        This site's name in the registry; node config ``secagg-site``.
    parties_ca
        The compute parties' CA certificate; node config ``mpc-ca-file``, else
        ``ca.pem`` in ``mpc-tls-dir``.
    party_tls_dir
        A compute party's own TLS folder; node config ``mpc-tls-dir``.
    """

    keys_dir: Path | None = None
    site_name: str = ""
    parties_ca: Path | None = None
    party_tls_dir: Path | None = None

    @classmethod
    def from_node_config(cls, node_config: Mapping[str, Any]) -> TrustAnchors:
        """Read the anchors from a SuperNode's node config."""
        keys_dir = _path(node_config, "secagg-keys-dir")
        tls_dir = _path(node_config, "mpc-tls-dir")
        ca = _path(node_config, "mpc-ca-file")
        if ca is None and tls_dir is not None:
            ca = tls_dir / "ca.pem"
        name = str(node_config.get("secagg-site", ""))
        if not name and "partition-id" in node_config:
            name = f"site{int(node_config['partition-id'])}"
        return cls(keys_dir, name, ca, tls_dir)

    def require_keys_dir(self) -> Path:
        """The registry folder, or a one-line error naming the node config key."""
        if self.keys_dir is None:
            raise ConfigError(
                "the active variant needs this site's node config 'secagg-keys-dir' "
                "(its signing key and the site registry)"
            )
        return self.keys_dir

    def require_parties_ca(self) -> Path:
        """The parties' CA, or a one-line error naming the node config key."""
        if self.parties_ca is None:
            raise ConfigError(
                "a site needs the compute parties' CA certificate to check their "
                "keys: node config 'mpc-ca-file'"
            )
        return self.parties_ca

    def require_party_tls_dir(self) -> Path:
        """A compute party's TLS folder, or a one-line error naming the key."""
        if self.party_tls_dir is None:
            raise ConfigError("a compute party needs node config 'mpc-tls-dir'")
        return self.party_tls_dir


def default_modes(anchors: TrustAnchors) -> frozenset[str]:
    """The modes a site takes part in when its policy names none.

    A site provisioned for a strong mode accepts only that mode: with a key
    folder, the active variant; with the parties' CA, MPC. A site provisioned
    for neither takes part in plain FL and the semi-honest variant.
    """
    modes = set()
    if anchors.keys_dir is not None:
        modes.add("active")
    if anchors.parties_ca is not None:
        modes.add("mpc")
    return frozenset(modes or {"plain", "semi_honest"})


def _path(node_config: Mapping[str, Any], key: str) -> Path | None:
    value = str(node_config.get(key, ""))
    return Path(value) if value else None


def _read_file(path: Path) -> dict[str, Any]:
    data = read_bounded(path, _MAX_POLICY_FILE, "the site policy")
    try:
        values = tomllib.loads(data.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not a TOML site policy ({exc})") from None
    return {k.removeprefix(PREFIX): v for k, v in values.items()}


def _coerce(key: str, value: Any, kind: Any) -> Any:
    name = str(kind)
    if "frozenset" in name:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not all(
            isinstance(x, str) for x in items
        ):
            raise ConfigError(f"{PREFIX}{key} must be a comma-separated list of modes")
        return frozenset(x.strip() for x in items if x.strip())
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if name == "bool" and isinstance(value, bool):
        return value
    if name == "bool" and isinstance(value, str) and value in ("true", "false"):
        return value == "true"
    if name == "int" and number and isinstance(value, int):
        return value
    if name == "float" and number:
        return float(value)
    raise ConfigError(f"{PREFIX}{key} must be of type {name}, got {value!r}")
