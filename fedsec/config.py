"""Typed run configuration, parsed once at the entry point.

Flower hands the ServerApp a flat mapping (``context.run_config``, from
``[tool.flwr.app.config]`` in ``pyproject.toml`` plus ``flwr run -c`` overrides);
the Hydra entry point builds the same flat mapping from its config tree. Both go
through :meth:`RunConfig.from_mapping`, which checks every value once, so the
layers below receive typed fields and never the raw mapping.

The defaults here equal those of ``[tool.flwr.app.config]`` (a test checks it).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from fedsec.errors import ConfigError

if TYPE_CHECKING:
    from fedsec.secagg.config import SecAggConfig
    from fedsec.vertical.train import TrainTerms

# the schemas shipped in fedsec/data/schemas (a test checks they agree)
TASKS = ("breast_cancer", "digits", "diabetes")
PARTITIONS = ("iid", "dirichlet")
RUN_MODES = ("train", "analytics")
# where a site's feature scaling comes from: its own training rows, or the
# federation's securely computed statistics
STANDARDISE = ("site", "global")
MODELS = ("logreg", "mlp")
LINEAR_STRATEGY_NAMES = (
    "fedavg",
    "fedprox",
    "fedadam",
    "fedyogi",
    "fedadagrad",
    "fedavgm",
)
# Robust strategies look at every update: plain mode only (refused when secure).
ROBUST_STRATEGY_NAMES = ("krum", "fedmedian", "fedtrimmedavg")
STRATEGIES = LINEAR_STRATEGY_NAMES + ROBUST_STRATEGY_NAMES

Scalar = bool | int | float | str


@dataclass(frozen=True)
class DataConfig:
    """Which task, and how it is split across the simulated sites."""

    task: str = "breast_cancer"
    # a schema YAML file; empty: the shipped schema named by ``task``
    task_schema: str = ""
    partition: str = "iid"
    dirichlet_alpha: float = 0.5
    test_fraction: float = 0.2
    seed: int = 42
    standardise: str = "site"
    # the server's own test file (checked against the schema); empty: the
    # held-out rows of the schema's embedded data set, if it has one
    test_path: str = ""

    def __post_init__(self) -> None:
        _one_of("task", self.task, TASKS)
        _one_of("partition", self.partition, PARTITIONS)
        _one_of("standardise", self.standardise, STANDARDISE)
        _positive("dirichlet-alpha", self.dirichlet_alpha)
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError(
                f"test-fraction must lie in (0, 1), got {self.test_fraction}"
            )


@dataclass(frozen=True)
class TrainConfig:
    """Local training at each site."""

    model: str = "logreg"
    hidden_dim: int = 32
    local_epochs: int = 2
    batch_size: int = 16
    learning_rate: float = 0.1

    def __post_init__(self) -> None:
        _one_of("model", self.model, MODELS)
        _positive("hidden-dim", self.hidden_dim)
        _positive("local-epochs", self.local_epochs)
        _positive("batch-size", self.batch_size)
        _positive("learning-rate", self.learning_rate)


@dataclass(frozen=True)
class StrategyConfig:
    """The Flower Message-API strategy that turns the aggregate into a model."""

    name: str = "fedavg"
    fraction_train: float = 1.0
    min_nodes: int = 2
    # the federation's size: every mode waits for this many connected sites
    # before it starts (0: min_nodes); a simulation sets its number of sites
    min_available_nodes: int = 0
    proximal_mu: float = 0.01
    server_learning_rate: float = 0.1
    server_momentum: float = 0.9

    def __post_init__(self) -> None:
        _one_of("strategy", self.name, STRATEGIES)
        if not 0.0 < self.fraction_train <= 1.0:
            raise ConfigError(
                f"fraction-train must lie in (0, 1], got {self.fraction_train}"
            )
        _positive("min-nodes", self.min_nodes)
        if self.min_available_nodes < 0:
            raise ConfigError(
                f"min-available-nodes must be >= 0, got {self.min_available_nodes}"
            )

    @property
    def available_nodes(self) -> int:
        """Sites that must be connected before the run starts and each round samples."""
        return max(self.min_nodes, self.min_available_nodes)


SECAGG_MODES = ("none", "semi_honest", "active")
SECAGG_GRAPHS = ("auto", "complete", "sparse")
DP_MODES = ("none", "local_opacus", "distributed", "central")
DP_MECHANISMS = ("dgauss", "skellam")
ACCOUNTANTS = ("prv", "rdp")
MPC_MODES = ("none", "clip_and_sum")

# ``secagg-threshold`` 0 asks for the variant's default. The active variant
# needs more than half of a neighbourhood (fedsec.secagg.config refuses
# <= 1/2); 2/3 keeps a margin and still tolerates a third of it dropping.
SEMI_HONEST_DEFAULT_THRESHOLD = 0.5
ACTIVE_DEFAULT_THRESHOLD = 2 / 3
_SECAGG_HINTS = {
    "threshold": " (omit it, or 0, for the variant's default: 1/2, active 2/3)",
    "degree": " (or 0: 2·⌈log2 n⌉)",
}


@dataclass(frozen=True)
class SecAggSettings:
    """Secure aggregation: off, semi-honest or active-adversary variant."""

    mode: str = "none"
    graph: str = "auto"  # complete below 32 sites, sparse (SecAgg+) from 32 on
    degree: int = 0  # 0: 2·⌈log2 n⌉ for the sparse graph
    # fraction of a neighbourhood needed to unmask; 0: the variant's default
    # (see effective_threshold)
    threshold: float = 0.0
    bits: int = 20
    clip: float = 1.0  # clipping range of each update coordinate
    rounds_per_key_set: int = 5
    max_weight: int = 1000  # public bound on a site's weight (its example count)
    # active variant: folder with the public site registry (and, in simulation,
    # every site's signing key); a SuperNode's own node config takes precedence
    keys_dir: str = ""

    def __post_init__(self) -> None:
        _one_of("secagg-mode", self.mode, SECAGG_MODES)
        _one_of("secagg-graph", self.graph, SECAGG_GRAPHS)
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(
                "secagg-threshold must lie in [0, 1] (0: the variant's default), "
                f"got {self.threshold}"
            )
        self._check_protocol_bounds()

    def _check_protocol_bounds(self) -> None:
        """Check each value against the protocol's own bounds, naming its key.

        The threshold is tried with the variant, then every other parameter
        alone with both, so a refusal is pinned on one flat key without
        repeating the protocol's limits here.
        """
        from fedsec.secagg.config import SecAggConfig

        kwargs = self._protocol_kwargs()
        base = {"variant": kwargs.pop("variant"), "threshold": kwargs.pop("threshold")}
        checks = {"threshold": base, **{k: {**base, k: v} for k, v in kwargs.items()}}
        for name, check in checks.items():
            _refuse_as(
                _KEY_OF[("secagg", name)],
                getattr(self, name),
                functools.partial(SecAggConfig, **check),
                _SECAGG_HINTS.get(name, ""),
            )
        _refuse_as("secagg-mode", self.mode, self.protocol_config)

    @property
    def enabled(self) -> bool:
        """True unless the mode is ``none``."""
        return self.mode != "none"

    @property
    def effective_threshold(self) -> float:
        """The threshold fraction in force: ``threshold``, or the variant's default."""
        if self.threshold:
            return self.threshold
        if self.mode == "active":
            return ACTIVE_DEFAULT_THRESHOLD
        return SEMI_HONEST_DEFAULT_THRESHOLD

    def protocol_config(self) -> SecAggConfig:
        """The public parameters of :mod:`fedsec.secagg` for these settings."""
        from fedsec.secagg.config import SecAggConfig

        return SecAggConfig(**self._protocol_kwargs())

    def _protocol_kwargs(self) -> dict[str, Any]:
        from fedsec.secagg.config import GraphKind, Variant

        return {
            "variant": Variant.ACTIVE if self.mode == "active" else Variant.SEMI_HONEST,
            "graph": GraphKind(self.graph),
            "degree": self.degree or None,
            "threshold": self.effective_threshold,
            "bits": self.bits,
            "clip": self.clip,
            "max_weight": self.max_weight,
            "rounds_per_key_set": self.rounds_per_key_set,
        }


@dataclass(frozen=True)
class DPSettings:
    """Differential privacy: local DP-SGD, distributed noise, or central DP."""

    mode: str = "none"
    noise_multiplier: float = 1.0
    target_epsilon: float = 0.0  # > 0: derive the noise multiplier from it
    delta: float = 1e-5
    max_grad_norm: float = 1.0  # per-sample clipping (local DP-SGD)
    clip_norm: float = 1.0  # per-update clipping (distributed, central)
    accountant: str = "prv"
    epsilon_budget: float = 0.0  # > 0: a site stops once it would exceed it
    mechanism: str = "dgauss"
    # distributed DP: the noise is calibrated so that this fraction of the
    # sampled sites, surviving, carries the target noise
    survivor_fraction: float = 1.0

    def __post_init__(self) -> None:
        _one_of("dp-mode", self.mode, DP_MODES)
        _one_of("dp-accountant", self.accountant, ACCOUNTANTS)
        _one_of("dp-mechanism", self.mechanism, DP_MECHANISMS)
        _positive_finite("dp-noise-multiplier", self.noise_multiplier)
        _positive_finite("dp-max-grad-norm", self.max_grad_norm)
        _positive_finite("dp-clip-norm", self.clip_norm)
        if not 0.0 < self.delta < 1.0:
            raise ConfigError(f"dp-delta must lie in (0, 1), got {self.delta}")
        if not 0.0 < self.survivor_fraction <= 1.0:
            raise ConfigError(
                f"dp-survivor-fraction must lie in (0, 1], got {self.survivor_fraction}"
            )
        # Only the sites' DP-SGD derives its noise from a target ε or stops at a
        # budget; any other mode would ignore the request and spend more ε.
        for key, value, otherwise in (
            ("dp-target-epsilon", self.target_epsilon, "set dp-noise-multiplier"),
            ("dp-epsilon-budget", self.epsilon_budget, "no other mode stops at one"),
        ):
            if not value >= 0:
                raise ConfigError(f"{key} must be >= 0, got {value}")
            if value > 0 and self.mode != "local_opacus":
                raise ConfigError(
                    f"{key} is only honoured with dp-mode='local_opacus'; "
                    f"dp-mode={self.mode!r} would ignore it ({otherwise})"
                )


@dataclass(frozen=True)
class MPCSettings:
    """MPC clip-and-sum by three compute parties."""

    mode: str = "none"
    clip_norm: float = 1.0
    noise_multiplier: float = 0.0  # central-DP noise added inside the MPC
    max_weight: int = 1000  # public bound on a site's weight (its example count)
    frac_bits: int = 16  # fixed-point fractional bits of the shares
    # TLS material of the three parties (CA + party-<i>.pem/.key); a party's
    # own node config ``mpc-tls-dir`` takes precedence
    tls_dir: str = ""
    timeout: float = 120.0  # seconds the parties wait for each other

    def __post_init__(self) -> None:
        _one_of("mpc-mode", self.mode, MPC_MODES)
        _positive_finite("mpc-clip-norm", self.clip_norm)
        _positive("mpc-max-weight", self.max_weight)
        _positive("mpc-frac-bits", self.frac_bits)
        _positive("mpc-timeout", self.timeout)
        if not (self.noise_multiplier >= 0 and math.isfinite(self.noise_multiplier)):
            raise ConfigError(
                f"mpc-noise-multiplier must be finite and >= 0, got "
                f"{self.noise_multiplier}"
            )
        if self.noise_multiplier > 0 and not self.enabled:
            raise ConfigError(
                "mpc-noise-multiplier adds noise inside the MPC: it needs "
                "mpc-mode='clip_and_sum' (without MPC use dp-mode)"
            )
        self._check_protocol_bounds()

    def _check_protocol_bounds(self) -> None:
        """Check the values against the MPC engine's own bounds, naming the key."""
        from fedsec.mpc.clip_and_sum import ClipSumConfig
        from fedsec.mpc.range_check import ratio
        from fedsec.mpc.ring import FixedPoint

        f = self.frac_bits
        _refuse_as("mpc-frac-bits", f, functools.partial(FixedPoint, f))
        _refuse_as(
            "mpc-max-weight",
            self.max_weight,
            functools.partial(ClipSumConfig, self.clip_norm, self.max_weight),
        )
        _refuse_as(
            "mpc-clip-norm",
            self.clip_norm,
            functools.partial(ratio, self.clip_norm, f),
            f" (mpc-frac-bits={f})",
        )
        # The sum is opened at 2f fractional bits: even one site's clipped,
        # weighted update (a coordinate up to W·C) must fit.
        largest = self.effective_max_weight * self.clip_norm
        try:
            FixedPoint(f).encode(largest, frac_bits=2 * f)
        except ConfigError:
            raise ConfigError(
                f"mpc-frac-bits={f} refused: one site's clipped, weighted update "
                f"(weight {self.effective_max_weight} × mpc-clip-norm "
                f"{self.clip_norm}) overflows the sum at 2·{f} fractional bits; "
                "lower mpc-frac-bits, mpc-max-weight or mpc-clip-norm"
            ) from None

    @property
    def enabled(self) -> bool:
        """True unless the mode is ``none``."""
        return self.mode != "none"

    @property
    def effective_max_weight(self) -> int:
        """The weight clamp inside the MPC: 1 (an unweighted mean) with noise."""
        return 1 if self.noise_multiplier > 0 else self.max_weight


# Bits of a fixed-point sum of squares that must fit a signed 64-bit integer
# at a site (fedsec.analytics.layout): 2·frac_bits + log2(max_rows) <= 62.
_ANALYTICS_INT_BITS = 62


@dataclass(frozen=True)
class AnalyticsSettings:
    """Federated statistics: fixed-point precision, public row bound, output.

    Numeric values are encoded as ``round((v - low) / (high - low) · 2^f)``
    with ``f = frac_bits`` over the schema's range, so means and standard
    deviations are exact to ``(high - low) · 2^-(f+1)``; ``max_rows`` is the
    public bound on one site's rows that sizes the secure sum.
    """

    frac_bits: int = 20
    max_rows: int = 1_000_000
    out_dir: str = "outputs/analytics"

    def __post_init__(self) -> None:
        if not 1 <= self.frac_bits <= 30:
            raise ConfigError(
                f"analytics-frac-bits must lie in [1, 30], got {self.frac_bits}"
            )
        _positive("analytics-max-rows", self.max_rows)
        if 2 * self.frac_bits + self.max_rows.bit_length() > _ANALYTICS_INT_BITS:
            raise ConfigError(
                f"analytics-frac-bits={self.frac_bits} with analytics-max-rows="
                f"{self.max_rows}: a site's sum of squares needs 2·frac-bits + "
                f"log2(max-rows) <= {_ANALYTICS_INT_BITS} bits; lower one of them"
            )
        if not self.out_dir:
            raise ConfigError("analytics-out must name a folder")


VERTICAL_MODELS = ("none", "logistic", "linear")
VERTICAL_PSI_MODES = ("shares", "intersection")


@dataclass(frozen=True)
class VerticalSettings:
    """Vertical training: PSI between data holders, regression on shares.

    The data holders (node config ``vertical-holder``; partitions
    ``0..holders-1`` in simulation) hold different columns of the same
    records; the three MPC compute parties train on secret shares
    (``docs/vertical.md``). ``psi`` is ``shares`` (nobody learns the
    intersection) or ``intersection`` (every holder learns it).
    """

    model: str = "none"
    psi: str = "shares"
    holders: int = 3
    label_holder: int = 0
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 0.5
    frac_bits: int = 14
    noise_multiplier: float = 0.0
    row_norm: float = 0.0

    def __post_init__(self) -> None:
        _one_of("vertical-model", self.model, VERTICAL_MODELS)
        _one_of("vertical-psi", self.psi, VERTICAL_PSI_MODES)
        if not 0 <= self.label_holder < self.holders:
            raise ConfigError(
                f"vertical-label-holder must lie in [0, {self.holders}), "
                f"got {self.label_holder}"
            )
        if self.enabled:
            from fedsec.psi.protocol import MAX_HOLDERS

            if not 2 <= self.holders <= MAX_HOLDERS:
                raise ConfigError(
                    f"vertical-holders must lie in [2, {MAX_HOLDERS}], "
                    f"got {self.holders}"
                )
            _refuse_as("vertical-model", self.model, self.train_terms)

    @property
    def enabled(self) -> bool:
        """True unless the model is ``none``."""
        return self.model != "none"

    def train_terms(self) -> TrainTerms:
        """The :class:`~fedsec.vertical.train.TrainTerms` these settings ask for."""
        from fedsec.vertical.train import Model, TrainTerms

        return TrainTerms(
            model=Model(self.model),
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            frac_bits=self.frac_bits,
            noise_multiplier=self.noise_multiplier,
            row_norm=self.row_norm,
        )


# Stages at which a site can be told to drop (``faults-drop``): local training,
# the secure-aggregation stages (fedsec.secagg.stages.Stage, less ``idle``) and
# the MPC share upload. A name outside them would never fire.
FAULT_STAGES = (
    "train",
    "advertise_keys",
    "seed_reveal",
    "share_keys",
    "masked_input",
    "consistency_check",
    "unmask",
    "mpc_share",
)


@dataclass(frozen=True)
class FaultSettings:
    """Injected failures for experiments: which sites drop, at which stage.

    ``drop`` is a comma-separated list of ``partition:stage`` items, e.g.
    ``"2:masked_input,5:unmask"``; such a site fails that stage of every round.
    ``poison`` names partitions that send a scaled-up update (``poison_scale``).
    ``corrupt_shares`` names partitions that send garbage share ciphertexts in
    secure-aggregation set-up (signed, in the active variant: a malicious site).
    """

    drop: str = ""
    poison: str = ""
    poison_scale: float = 100.0
    corrupt_shares: str = ""

    def __post_init__(self) -> None:
        self.drops()
        self.poisoned()
        self.corrupting()

    def drops(self) -> dict[int, str]:
        """``{partition-id: stage}`` of the sites that drop."""
        out: dict[int, str] = {}
        for item in filter(None, (x.strip() for x in self.drop.split(","))):
            pid, sep, stage = (x.strip() for x in item.partition(":"))
            if not sep or not pid.isdigit() or not stage:
                raise ConfigError(f"faults-drop item {item!r} is not 'partition:stage'")
            if stage not in FAULT_STAGES:
                raise ConfigError(
                    f"faults-drop item {item!r}: unknown stage {stage!r}; known: "
                    f"{', '.join(FAULT_STAGES)}"
                )
            if int(pid) in out:
                raise ConfigError(
                    f"faults-drop lists partition {int(pid)} twice (a site drops "
                    "at one stage)"
                )
            out[int(pid)] = stage
        return out

    def poisoned(self) -> frozenset[int]:
        """Partition ids of the sites that poison their update."""
        return _partitions("faults-poison", self.poison)

    def corrupting(self) -> frozenset[int]:
        """Partition ids of the sites that send garbage share ciphertexts."""
        return _partitions("faults-corrupt-shares", self.corrupt_shares)


def _partitions(key: str, text: str) -> frozenset[int]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not all(x.isdigit() for x in items):
        raise ConfigError(f"{key} must list partition ids, got {text!r}")
    return frozenset(int(x) for x in items)


@dataclass(frozen=True)
class RunConfig:
    """Everything the ServerApp needs, in typed sections."""

    num_rounds: int = 5
    round_timeout: float = 600.0
    mode: str = "train"
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    strategy: StrategyConfig = dataclasses.field(default_factory=StrategyConfig)
    secagg: SecAggSettings = dataclasses.field(default_factory=SecAggSettings)
    dp: DPSettings = dataclasses.field(default_factory=DPSettings)
    mpc: MPCSettings = dataclasses.field(default_factory=MPCSettings)
    faults: FaultSettings = dataclasses.field(default_factory=FaultSettings)
    analytics: AnalyticsSettings = dataclasses.field(default_factory=AnalyticsSettings)
    vertical: VerticalSettings = dataclasses.field(default_factory=VerticalSettings)

    def __post_init__(self) -> None:
        _positive("num-server-rounds", self.num_rounds)
        _positive("round-timeout", self.round_timeout)
        _one_of("mode", self.mode, RUN_MODES)
        self._check_analytics()
        if self.vertical.enabled and (
            self.secagg.enabled
            or self.mpc.enabled
            or self.dp.mode != "none"
            or self.mode != "train"
        ):
            raise ConfigError(
                "vertical-model trains on secret shares by itself: it takes no "
                "secagg-mode, mpc-mode, dp-mode or mode='analytics' (use "
                "vertical-noise-multiplier)"
            )
        if self.secagg.enabled and self.mpc.enabled:
            raise ConfigError(
                "secagg-mode and mpc-mode: choose secure aggregation or MPC, not both"
            )
        if self.dp.mode == "distributed" and not self.secagg.enabled:
            raise ConfigError(
                "dp-mode 'distributed' needs secure aggregation (set secagg-mode)"
            )
        if self.dp.mode == "central" and (self.secagg.enabled or self.mpc.enabled):
            hidden_by, instead = (
                (f"mpc-mode={self.mpc.mode!r}", "mpc-noise-multiplier")
                if self.mpc.enabled
                else (f"secagg-mode={self.secagg.mode!r}", "dp-mode='distributed'")
            )
            raise ConfigError(
                "dp-mode 'central' needs the server to see every update, which "
                f"{hidden_by} hides; use {instead} instead"
            )
        aggregate_only = self._aggregate_only()
        if self.strategy.name in ROBUST_STRATEGY_NAMES and aggregate_only:
            raise ConfigError(
                f"strategy {self.strategy.name!r} needs every update in the clear, "
                f"but {aggregate_only} hands it only the (noised) sum; use one of "
                f"{', '.join(LINEAR_STRATEGY_NAMES)}"
            )

    def _check_analytics(self) -> None:
        """Statistics are summed by secure aggregation (or plain), noise distributed.

        (``standardise='global'`` always sums its statistics round securely,
        whatever the training's own mode: :mod:`strategies.analytics`.)
        """
        if self.mode != "analytics":
            return
        if self.mpc.enabled:
            raise ConfigError(
                "mode='analytics' sums statistics by secure aggregation "
                "(secagg-mode) or in plain mode, not by MPC; set mpc-mode='none'"
            )
        if self.dp.mode in ("local_opacus", "central"):
            raise ConfigError(
                "mode='analytics': statistics take DP noise inside the secure sum "
                "(dp-mode='distributed' with a secagg-mode), not dp-mode="
                f"{self.dp.mode!r}"
            )

    def _aggregate_only(self) -> str:
        """The setting that hands the strategy only an aggregate, or ``""``."""
        if self.secagg.enabled:
            return f"secagg-mode={self.secagg.mode!r}"
        if self.mpc.enabled:
            return f"mpc-mode={self.mpc.mode!r}"
        if self.dp.mode == "central":
            return "dp-mode='central'"
        return ""

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> RunConfig:
        """Parse a flat Flower run config (``kebab-case`` keys).

        Unknown keys are refused, so a typo never goes unnoticed.
        """
        unknown = sorted(set(mapping) - set(_FLAT_KEYS))
        if unknown:
            raise ConfigError(f"unknown run-config keys: {', '.join(unknown)}")
        sections = _parse_sections(mapping)
        return cls(
            **sections[""],
            data=DataConfig(**sections["data"]),
            train=TrainConfig(**sections["train"]),
            strategy=StrategyConfig(**sections["strategy"]),
            secagg=SecAggSettings(**sections["secagg"]),
            dp=DPSettings(**sections["dp"]),
            mpc=MPCSettings(**sections["mpc"]),
            faults=FaultSettings(**sections["faults"]),
            analytics=AnalyticsSettings(**sections["analytics"]),
            vertical=VerticalSettings(**sections["vertical"]),
        )

    def to_mapping(self) -> dict[str, Scalar]:
        """The flat run config that :meth:`from_mapping` turns back into ``self``."""
        out: dict[str, Scalar] = {}
        for key, (section, name) in _FLAT_KEYS.items():
            holder = self if section == "" else getattr(self, section)
            out[key] = getattr(holder, name)
        return out

    def client_mapping(self) -> dict[str, Scalar]:
        """The flat keys a site needs, sent with each request."""
        return {
            key: value
            for key, value in self.to_mapping().items()
            if _FLAT_KEYS[key][0] in _CLIENT_SECTIONS
        }


@dataclass(frozen=True)
class ClientSettings:
    """What a site reads from a request: data, training, DP and fault sections."""

    data: DataConfig
    train: TrainConfig
    secagg: SecAggSettings = dataclasses.field(default_factory=SecAggSettings)
    dp: DPSettings = dataclasses.field(default_factory=DPSettings)
    mpc: MPCSettings = dataclasses.field(default_factory=MPCSettings)
    faults: FaultSettings = dataclasses.field(default_factory=FaultSettings)
    analytics: AnalyticsSettings = dataclasses.field(default_factory=AnalyticsSettings)
    vertical: VerticalSettings = dataclasses.field(default_factory=VerticalSettings)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> ClientSettings:
        """Parse the site's keys of a request; other keys are ignored."""
        relevant = {
            k: v
            for k, v in mapping.items()
            if _FLAT_KEYS.get(k, ("", ""))[0] in _CLIENT_SECTIONS
        }
        sections = _parse_sections(relevant)
        return cls(
            data=DataConfig(**sections["data"]),
            train=TrainConfig(**sections["train"]),
            secagg=SecAggSettings(**sections["secagg"]),
            dp=DPSettings(**sections["dp"]),
            mpc=MPCSettings(**sections["mpc"]),
            faults=FaultSettings(**sections["faults"]),
            analytics=AnalyticsSettings(**sections["analytics"]),
            vertical=VerticalSettings(**sections["vertical"]),
        )


def _parse_sections(mapping: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    sections: dict[str, dict[str, Any]] = {name: {} for name in ("", *_SECTION_CLASSES)}
    for key, value in mapping.items():
        section, name = _FLAT_KEYS[key]
        sections[section][name] = _coerce(key, value, _field_type(section, name))
    return sections


# flat kebab-case key -> (section, field name)
_FLAT_KEYS: dict[str, tuple[str, str]] = {
    "num-server-rounds": ("", "num_rounds"),
    "round-timeout": ("", "round_timeout"),
    "mode": ("", "mode"),
    "seed": ("data", "seed"),
    "task": ("data", "task"),
    "task-schema": ("data", "task_schema"),
    "standardise": ("data", "standardise"),
    "test-path": ("data", "test_path"),
    "partition": ("data", "partition"),
    "dirichlet-alpha": ("data", "dirichlet_alpha"),
    "test-fraction": ("data", "test_fraction"),
    "model": ("train", "model"),
    "hidden-dim": ("train", "hidden_dim"),
    "local-epochs": ("train", "local_epochs"),
    "batch-size": ("train", "batch_size"),
    "learning-rate": ("train", "learning_rate"),
    "strategy": ("strategy", "name"),
    "fraction-train": ("strategy", "fraction_train"),
    "min-nodes": ("strategy", "min_nodes"),
    "min-available-nodes": ("strategy", "min_available_nodes"),
    "proximal-mu": ("strategy", "proximal_mu"),
    "server-learning-rate": ("strategy", "server_learning_rate"),
    "server-momentum": ("strategy", "server_momentum"),
    "secagg-mode": ("secagg", "mode"),
    "secagg-graph": ("secagg", "graph"),
    "secagg-degree": ("secagg", "degree"),
    "secagg-threshold": ("secagg", "threshold"),
    "secagg-bits": ("secagg", "bits"),
    "secagg-clip": ("secagg", "clip"),
    "secagg-rounds-per-key-set": ("secagg", "rounds_per_key_set"),
    "secagg-max-weight": ("secagg", "max_weight"),
    "secagg-keys-dir": ("secagg", "keys_dir"),
    "dp-mode": ("dp", "mode"),
    "dp-noise-multiplier": ("dp", "noise_multiplier"),
    "dp-target-epsilon": ("dp", "target_epsilon"),
    "dp-delta": ("dp", "delta"),
    "dp-max-grad-norm": ("dp", "max_grad_norm"),
    "dp-clip-norm": ("dp", "clip_norm"),
    "dp-accountant": ("dp", "accountant"),
    "dp-epsilon-budget": ("dp", "epsilon_budget"),
    "dp-mechanism": ("dp", "mechanism"),
    "dp-survivor-fraction": ("dp", "survivor_fraction"),
    "mpc-mode": ("mpc", "mode"),
    "mpc-clip-norm": ("mpc", "clip_norm"),
    "mpc-noise-multiplier": ("mpc", "noise_multiplier"),
    "mpc-max-weight": ("mpc", "max_weight"),
    "mpc-frac-bits": ("mpc", "frac_bits"),
    "mpc-tls-dir": ("mpc", "tls_dir"),
    "mpc-timeout": ("mpc", "timeout"),
    "faults-drop": ("faults", "drop"),
    "faults-poison": ("faults", "poison"),
    "faults-poison-scale": ("faults", "poison_scale"),
    "faults-corrupt-shares": ("faults", "corrupt_shares"),
    "analytics-frac-bits": ("analytics", "frac_bits"),
    "analytics-max-rows": ("analytics", "max_rows"),
    "analytics-out": ("analytics", "out_dir"),
    "vertical-model": ("vertical", "model"),
    "vertical-psi": ("vertical", "psi"),
    "vertical-holders": ("vertical", "holders"),
    "vertical-label-holder": ("vertical", "label_holder"),
    "vertical-epochs": ("vertical", "epochs"),
    "vertical-batch-size": ("vertical", "batch_size"),
    "vertical-learning-rate": ("vertical", "learning_rate"),
    "vertical-frac-bits": ("vertical", "frac_bits"),
    "vertical-noise-multiplier": ("vertical", "noise_multiplier"),
    "vertical-row-norm": ("vertical", "row_norm"),
}

# (section, field name) -> flat key
_KEY_OF = {place: key for key, place in _FLAT_KEYS.items()}

# Sections a site needs to read from each request.
_CLIENT_SECTIONS = (
    "data",
    "train",
    "secagg",
    "dp",
    "mpc",
    "faults",
    "analytics",
    "vertical",
)

_SECTION_CLASSES: dict[str, type] = {
    "data": DataConfig,
    "train": TrainConfig,
    "strategy": StrategyConfig,
    "secagg": SecAggSettings,
    "dp": DPSettings,
    "mpc": MPCSettings,
    "vertical": VerticalSettings,
    "faults": FaultSettings,
    "analytics": AnalyticsSettings,
}


def _field_type(section: str, name: str) -> type:
    cls = RunConfig if section == "" else _SECTION_CLASSES[section]
    annotation = {f.name: f.type for f in fields(cls)}[name]
    return {"int": int, "float": float, "str": str, "bool": bool}[str(annotation)]


def _coerce(key: str, value: Any, kind: type) -> Scalar:
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value  # type: ignore[return-value]
    raise ConfigError(
        f"{key} must be of type {kind.__name__}, got {type(value).__name__} {value!r}"
    )


def _one_of(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key} must be one of {', '.join(allowed)}; got {value!r}")


def _positive(key: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"{key} must be positive, got {value}")


def _positive_finite(key: str, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ConfigError(f"{key} must be positive and finite, got {value}")


def _refuse_as(
    key: str, value: object, check: Callable[[], object], hint: str = ""
) -> None:
    """Run ``check``; re-raise its :class:`ConfigError` naming ``key`` and ``value``."""
    try:
        check()
    except ConfigError as exc:
        raise ConfigError(f"{key}={value!r} refused: {exc.reason}{hint}") from None
