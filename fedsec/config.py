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
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from fedsec.errors import ConfigError

TASKS = ("breast_cancer", "digits", "diabetes")
PARTITIONS = ("iid", "dirichlet")
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
    partition: str = "iid"
    dirichlet_alpha: float = 0.5
    test_fraction: float = 0.2
    seed: int = 42

    def __post_init__(self) -> None:
        _one_of("task", self.task, TASKS)
        _one_of("partition", self.partition, PARTITIONS)
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


@dataclass(frozen=True)
class RunConfig:
    """Everything the ServerApp needs, in typed sections."""

    num_rounds: int = 5
    round_timeout: float = 600.0
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    strategy: StrategyConfig = dataclasses.field(default_factory=StrategyConfig)

    def __post_init__(self) -> None:
        _positive("num-server-rounds", self.num_rounds)
        _positive("round-timeout", self.round_timeout)

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
        )

    def to_mapping(self) -> dict[str, Scalar]:
        """The flat run config that :meth:`from_mapping` turns back into ``self``."""
        out: dict[str, Scalar] = {}
        for key, (section, name) in _FLAT_KEYS.items():
            holder = self if section == "" else getattr(self, section)
            out[key] = getattr(holder, name)
        return out

    def client_mapping(self) -> dict[str, Scalar]:
        """The flat keys a site needs (data and training), sent with each request."""
        return {
            key: value
            for key, value in self.to_mapping().items()
            if _FLAT_KEYS[key][0] in ("data", "train")
        }


@dataclass(frozen=True)
class ClientSettings:
    """What a site reads from a training request: data and training sections."""

    data: DataConfig
    train: TrainConfig

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> ClientSettings:
        """Parse the data/train keys of a request; other keys are ignored."""
        relevant = {
            k: v
            for k, v in mapping.items()
            if _FLAT_KEYS.get(k, ("", ""))[0] in ("data", "train")
        }
        sections = _parse_sections(relevant)
        return cls(
            data=DataConfig(**sections["data"]), train=TrainConfig(**sections["train"])
        )


def _parse_sections(mapping: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    sections: dict[str, dict[str, Any]] = {
        "": {},
        "data": {},
        "train": {},
        "strategy": {},
    }
    for key, value in mapping.items():
        section, name = _FLAT_KEYS[key]
        sections[section][name] = _coerce(key, value, _field_type(section, name))
    return sections


# flat kebab-case key -> (section, field name)
_FLAT_KEYS: dict[str, tuple[str, str]] = {
    "num-server-rounds": ("", "num_rounds"),
    "round-timeout": ("", "round_timeout"),
    "seed": ("data", "seed"),
    "task": ("data", "task"),
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
    "proximal-mu": ("strategy", "proximal_mu"),
    "server-learning-rate": ("strategy", "server_learning_rate"),
    "server-momentum": ("strategy", "server_momentum"),
}

_SECTION_CLASSES: dict[str, type] = {
    "data": DataConfig,
    "train": TrainConfig,
    "strategy": StrategyConfig,
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
