"""The federation schema: which columns a site's table holds, by name and type.

A schema is a YAML file the federation agrees on (``fedsec/data/schemas/``
ships one per embedded task; run config ``task-schema`` names any other)::

    name: clinic
    dataset: breast_cancer     # optional: the embedded data these columns come from
    target:
      column: target
      kind: classification     # or regression (with center, scale, range, bins)
      classes: [0, 1]          # labels as they appear; model output i = classes[i]
      missing: refuse          # refuse | drop
    features:
      - {name: age, kind: numeric, range: [0, 120], bins: 12, missing: impute}
      - {name: smoker, kind: categorical, levels: [never, former, current]}
      - {name: diabetic, kind: binary, missing: drop}

Feature kinds: ``numeric`` (a plausible ``range`` that every value must lie in,
and ``bins`` equal-width histogram bins over it), ``binary`` (0 or 1) and
``categorical`` (one of ``levels``). Missing-value policies: ``impute`` (the
default: numeric and binary values by the median, categorical ones as an
all-zero one-hot), ``drop`` (the row is left out) and ``refuse`` (any missing
value is an error). The model's input is one column per numeric or binary
feature and one per level of a categorical feature, in schema order.

The schema is public: the server sends its canonical JSON form with every
request, and a site that pins its own copy (node config ``data-schema``)
refuses any other (:func:`pinned_schema` in :mod:`clients.site_data`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fedsec.data.datasets import TaskKind
from fedsec.errors import SchemaError
from fedsec.files import read_bounded

SHIPPED_DIR = Path(__file__).resolve().parent / "schemas"
MAX_SCHEMA_BYTES = 1 << 20
MAX_FEATURES = 10_000
MAX_BINS = 1000
MAX_LEVELS = 1000


class FeatureKind(StrEnum):
    """What a feature column holds."""

    NUMERIC = "numeric"
    BINARY = "binary"
    CATEGORICAL = "categorical"


class Missing(StrEnum):
    """What a site does with a missing value of a column."""

    IMPUTE = "impute"
    DROP = "drop"
    REFUSE = "refuse"


BINARY_LEVELS = ("0", "1")


@dataclass(frozen=True)
class Feature:
    """One feature column.

    ``low``/``high``/``bins`` apply to numeric features, ``levels`` to
    categorical ones (binary features have the levels ``0`` and ``1``).
    """

    name: str
    kind: FeatureKind
    missing: Missing = Missing.IMPUTE
    low: float = 0.0
    high: float = 1.0
    bins: int = 10
    levels: tuple[str, ...] = ()

    @property
    def numeric(self) -> bool:
        """True for a numeric feature."""
        return self.kind is FeatureKind.NUMERIC

    @property
    def categories(self) -> tuple[str, ...]:
        """The levels of a binary or categorical feature (empty if numeric)."""
        if self.kind is FeatureKind.BINARY:
            return BINARY_LEVELS
        return self.levels

    @property
    def width(self) -> int:
        """Model input columns: one, or one per level of a categorical feature."""
        return len(self.levels) if self.kind is FeatureKind.CATEGORICAL else 1

    def edges(self) -> npt.NDArray[np.float64]:
        """Histogram bin edges of a numeric feature (``bins + 1`` values)."""
        return np.linspace(self.low, self.high, self.bins + 1)

    def to_mapping(self) -> dict[str, Any]:
        """The YAML/JSON form of the feature."""
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind.value,
            "missing": self.missing.value,
        }
        if self.numeric:
            out["range"] = [self.low, self.high]
            out["bins"] = self.bins
        elif self.kind is FeatureKind.CATEGORICAL:
            out["levels"] = list(self.levels)
        return out


@dataclass(frozen=True)
class Target:
    """The target column: class labels, or a regression value and its scaling.

    Classification: ``classes`` are the labels as they appear in the column
    (compared as text, so ``1`` and ``1.0`` match); the model predicts the
    index into ``classes``. Regression: the model predicts
    ``(y - center) / scale``; ``low``/``high``/``bins`` are the plausible range
    and the histogram of the federation's statistics.
    """

    kind: TaskKind
    column: str = "target"
    classes: tuple[str, ...] = ()
    center: float = 0.0
    scale: float = 1.0
    low: float = 0.0
    high: float = 1.0
    bins: int = 10
    missing: Missing = Missing.REFUSE

    @property
    def num_outputs(self) -> int:
        """Output units of the model: one per class, or one."""
        return len(self.classes) if self.kind is TaskKind.CLASSIFICATION else 1

    def as_feature(self) -> Feature:
        """A regression target seen as a numeric feature (statistics, checks)."""
        return Feature(
            self.column,
            FeatureKind.NUMERIC,
            self.missing,
            self.low,
            self.high,
            self.bins,
        )

    def to_mapping(self) -> dict[str, Any]:
        """The YAML/JSON form of the target."""
        out: dict[str, Any] = {
            "column": self.column,
            "kind": self.kind.value,
            "missing": self.missing.value,
        }
        if self.kind is TaskKind.CLASSIFICATION:
            out["classes"] = list(self.classes)
        else:
            out.update(
                center=self.center,
                scale=self.scale,
                range=[self.low, self.high],
                bins=self.bins,
            )
        return out


@dataclass(frozen=True)
class Schema:
    """The federation's table: a target and named, typed features."""

    name: str
    target: Target
    features: tuple[Feature, ...]
    dataset: str = ""

    @property
    def kind(self) -> TaskKind:
        """Classification or regression."""
        return self.target.kind

    @property
    def num_outputs(self) -> int:
        """Output units of the model."""
        return self.target.num_outputs

    @property
    def input_dim(self) -> int:
        """Model input size: numeric and binary features one column, one-hot levels."""
        return sum(f.width for f in self.features)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column a site's table must hold: the features, then the target."""
        return (*(f.name for f in self.features), self.target.column)

    def to_mapping(self) -> dict[str, Any]:
        """The YAML/JSON form (what :meth:`from_mapping` reads back)."""
        out: dict[str, Any] = {"name": self.name}
        if self.dataset:
            out["dataset"] = self.dataset
        out["target"] = self.target.to_mapping()
        out["features"] = [f.to_mapping() for f in self.features]
        return out

    def to_json(self) -> str:
        """Canonical JSON text: what the server sends and sites compare."""
        return json.dumps(self.to_mapping(), sort_keys=True, separators=(",", ":"))

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical JSON (hex), to compare two schemas."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    @classmethod
    def from_mapping(cls, data: Any, source: str = "schema") -> Schema:
        """Validate a parsed YAML/JSON document; every problem names its key.

        Raises
        ------
        SchemaError
            One line naming ``source``, the key and the problem.
        """
        root = _mapping(data, source, "the document")
        _known(root, {"name", "dataset", "target", "features"}, source, "the schema")
        name = _text(root.get("name", "federation"), source, "name")
        dataset = _text(root.get("dataset", ""), source, "dataset", empty=True)
        target = _target(root.get("target"), source)
        raw = root.get("features")
        if not isinstance(raw, list) or not raw:
            raise SchemaError(f"{source}: features must be a non-empty list")
        if len(raw) > MAX_FEATURES:
            raise SchemaError(f"{source}: at most {MAX_FEATURES} features")
        features = tuple(_feature(item, source, i) for i, item in enumerate(raw))
        seen: set[str] = set()
        for f in features:
            if f.name in seen:
                raise SchemaError(f"{source}: feature {f.name!r} is listed twice")
            seen.add(f.name)
        if target.column in seen:
            raise SchemaError(
                f"{source}: target column {target.column!r} is also a feature"
            )
        return cls(name, target, features, dataset)

    @classmethod
    def from_json(cls, text: str, source: str = "request") -> Schema:
        """Parse the canonical JSON form (as sent with a request)."""
        if len(text) > MAX_SCHEMA_BYTES:
            raise SchemaError(f"{source}: a schema is at most {MAX_SCHEMA_BYTES} bytes")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SchemaError(f"{source}: schema is not JSON ({exc.msg})") from None
        return cls.from_mapping(data, source)


def load_schema(path: str | Path) -> Schema:
    """Read and validate a schema YAML file (at most 1 MiB, ``yaml.safe_load``)."""
    import yaml

    path = Path(path)
    raw = read_bounded(path, MAX_SCHEMA_BYTES, "the schema", SchemaError)
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise SchemaError(f"{path}: a schema file is UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SchemaError(f"{path}: not valid YAML{where}") from None
    return Schema.from_mapping(data, str(path))


def shipped_names() -> tuple[str, ...]:
    """Names of the schemas that ship with fedsec (the embedded tasks)."""
    return tuple(sorted(p.stem for p in SHIPPED_DIR.glob("*.yaml")))


@lru_cache(maxsize=16)
def shipped_schema(name: str) -> Schema:
    """A schema that ships with fedsec, by name (``breast_cancer``, ...)."""
    path = SHIPPED_DIR / f"{name}.yaml"
    if not path.is_file():
        raise SchemaError(
            f"no shipped schema {name!r}; choose one of {', '.join(shipped_names())}"
        )
    return load_schema(path)


def resolve_schema(task: str, task_schema: str = "") -> Schema:
    """The run's schema: the file ``task_schema`` names, else the shipped ``task``."""
    if task_schema:
        return _load_cached(str(Path(task_schema).resolve()))
    return shipped_schema(task)


@lru_cache(maxsize=16)
def _load_cached(path: str) -> Schema:
    return load_schema(path)


# ----------------------------------------------------------------- parsing
def _mapping(value: Any, source: str, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SchemaError(f"{source}: {what} must be a mapping")
    return value


def _known(
    mapping: Mapping[str, Any], allowed: set[str], source: str, where: str
) -> None:
    unknown = sorted(str(k) for k in set(mapping) - allowed)
    if unknown:
        raise SchemaError(f"{source}: {where}: unknown key(s) {', '.join(unknown)}")


def _text(value: Any, source: str, key: str, *, empty: bool = False) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SchemaError(f"{source}: {key} must be text")
    text = str(value)
    if (not text and not empty) or len(text) > 200 or "\n" in text:
        raise SchemaError(f"{source}: {key} must be one line of 1-200 characters")
    return text


def _number(value: Any, source: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SchemaError(f"{source}: {key} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise SchemaError(f"{source}: {key} must be finite")
    return float(value)


def _range(value: Any, source: str, key: str) -> tuple[float, float]:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise SchemaError(f"{source}: {key}: range must be [low, high]")
    low, high = (_number(v, source, f"{key}: range") for v in value)
    if not low < high:
        raise SchemaError(f"{source}: {key}: range low {low:g} must be below high")
    return low, high


def _bins(value: Any, source: str, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SchemaError(f"{source}: {key}: bins must be a positive integer")
    if value > MAX_BINS:
        raise SchemaError(f"{source}: {key}: at most {MAX_BINS} bins")
    return value


def _labels(value: Any, source: str, key: str, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise SchemaError(f"{source}: {key}: {what} must be a non-empty list")
    if len(value) > MAX_LEVELS:
        raise SchemaError(f"{source}: {key}: at most {MAX_LEVELS} {what}")
    labels = tuple(label_text(_label(v, source, key, what)) for v in value)
    if len(set(labels)) != len(labels):
        raise SchemaError(f"{source}: {key}: {what} are not distinct")
    return labels


def _label(value: Any, source: str, key: str, what: str) -> str | int | float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SchemaError(f"{source}: {key}: {what} must be text or numbers")
    if isinstance(value, str) and not value.strip():
        raise SchemaError(f"{source}: {key}: {what} must not be blank")
    return value


def label_text(value: str | int | float) -> str:
    """How a label is compared: integral numbers without ``.0``, text stripped."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _missing(
    value: Any, source: str, key: str, allowed: tuple[Missing, ...]
) -> Missing:
    try:
        policy = Missing(value)
    except ValueError:
        policy = None
    if policy is None or policy not in allowed:
        names = ", ".join(m.value for m in allowed)
        raise SchemaError(f"{source}: {key}: missing must be one of {names}")
    return policy


def _target(value: Any, source: str) -> Target:
    data = _mapping(value, source, "target")
    kind_text = data.get("kind")
    try:
        kind = TaskKind(kind_text)
    except ValueError:
        raise SchemaError(
            f"{source}: target: kind must be classification or regression"
        ) from None
    column = _text(data.get("column", "target"), source, "target: column")
    missing = _missing(
        data.get("missing", "refuse"), source, "target", (Missing.REFUSE, Missing.DROP)
    )
    if kind is TaskKind.CLASSIFICATION:
        _known(data, {"kind", "column", "classes", "missing"}, source, "target")
        classes = _labels(data.get("classes"), source, "target", "classes")
        if len(classes) < 2:
            raise SchemaError(f"{source}: target: classification needs >= 2 classes")
        return Target(kind, column, classes=classes, missing=missing)
    allowed = {"kind", "column", "center", "scale", "range", "bins", "missing"}
    _known(data, allowed, source, "target")
    low, high = _range(data.get("range"), source, "target")
    scale = _number(data.get("scale", 1.0), source, "target: scale")
    if scale <= 0:
        raise SchemaError(f"{source}: target: scale must be positive")
    return Target(
        kind,
        column,
        center=_number(data.get("center", 0.0), source, "target: center"),
        scale=scale,
        low=low,
        high=high,
        bins=_bins(data.get("bins", 10), source, "target"),
        missing=missing,
    )


_FEATURE_KEYS = {
    FeatureKind.NUMERIC: {"name", "kind", "missing", "range", "bins"},
    FeatureKind.BINARY: {"name", "kind", "missing"},
    FeatureKind.CATEGORICAL: {"name", "kind", "missing", "levels"},
}


def _feature(value: Any, source: str, index: int) -> Feature:
    data = _mapping(value, source, f"features[{index}]")
    name = _text(data.get("name"), source, f"features[{index}]: name")
    key = f"feature {name!r}"
    try:
        kind = FeatureKind(str(data.get("kind")))
    except ValueError:
        raise SchemaError(
            f"{source}: {key}: kind must be numeric, binary or categorical"
        ) from None
    _known(data, _FEATURE_KEYS[kind], source, key)
    missing = _missing(data.get("missing", "impute"), source, key, tuple(Missing))
    if kind is FeatureKind.NUMERIC:
        low, high = _range(data.get("range"), source, key)
        bins = _bins(data.get("bins", 10), source, key)
        return Feature(name, kind, missing, low, high, bins)
    if kind is FeatureKind.CATEGORICAL:
        levels = _labels(data.get("levels"), source, key, "levels")
        return Feature(name, kind, missing, levels=levels)
    return Feature(name, kind, missing)
