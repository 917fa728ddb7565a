"""The federation schema: shipped ones, parsing, and a one-line error per problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from fedsec.config import TASKS
from fedsec.data import Schema, load_schema, resolve_schema, shipped_schema
from fedsec.data.embedded import embedded_frame, embedded_table
from fedsec.data.schema import MAX_SCHEMA_BYTES, FeatureKind, shipped_names
from fedsec.data.table import find_problems
from fedsec.errors import SchemaError


def clinic(**changes: Any) -> dict[str, Any]:
    """A small schema document with each feature kind."""
    doc: dict[str, Any] = {
        "name": "clinic",
        "target": {
            "column": "outcome",
            "kind": "classification",
            "classes": ["no", "yes"],
        },
        "features": [
            {"name": "age", "kind": "numeric", "range": [0, 120], "bins": 12},
            {"name": "diabetic", "kind": "binary", "missing": "drop"},
            {
                "name": "smoker",
                "kind": "categorical",
                "levels": ["never", "former", "current"],
            },
        ],
    }
    doc.update(changes)
    return doc


def test_the_embedded_tasks_ship_as_schemas() -> None:
    assert shipped_names() == tuple(sorted(TASKS))
    expected = {"breast_cancer": (30, 2), "digits": (64, 10), "diabetes": (10, 1)}
    for task, (dim, outputs) in expected.items():
        schema = shipped_schema(task)
        assert (schema.input_dim, schema.num_outputs) == (dim, outputs)
        assert find_problems(embedded_frame(schema), schema, task) == []
        assert len(embedded_table(schema)) == len(embedded_frame(schema))


def test_input_size_counts_one_hot_levels() -> None:
    schema = Schema.from_mapping(clinic())
    assert schema.input_dim == 1 + 1 + 3
    assert [f.kind for f in schema.features] == list(FeatureKind)
    assert schema.features[1].categories == ("0", "1")
    assert schema.target.classes == ("no", "yes")


def test_json_round_trip_and_digest(tmp_path: Path) -> None:
    schema = Schema.from_mapping(clinic())
    assert Schema.from_json(schema.to_json()) == schema
    path = tmp_path / "clinic.yaml"
    path.write_text(yaml.safe_dump(clinic()))
    assert load_schema(path).digest == schema.digest
    assert resolve_schema("breast_cancer", str(path)) == schema
    other = Schema.from_mapping(clinic(name="other"))
    assert other.digest != schema.digest


def _feature(**changes: Any) -> dict[str, Any]:
    return clinic(
        features=[{"name": "age", "kind": "numeric", "range": [0, 120], **changes}]
    )


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        (clinic(colour="red"), "unknown key(s) colour"),
        (clinic(features=[]), "features must be a non-empty list"),
        (_feature(kind="text"), "kind must be numeric, binary or categorical"),
        (_feature(range=[5, 1]), "range low 5 must be below high"),
        (_feature(range=[0]), "range must be [low, high]"),
        (_feature(range=[0, "x"]), "must be a number"),
        (_feature(bins=0), "bins must be a positive integer"),
        (_feature(bins=5000), "at most 1000 bins"),
        (_feature(missing="guess"), "missing must be one of impute, drop, refuse"),
        (_feature(levels=["a"]), "unknown key(s) levels"),
        (
            clinic(features=[{"name": "s", "kind": "categorical", "levels": []}]),
            "levels must be a non-empty list",
        ),
        (
            clinic(features=[{"name": "s", "kind": "categorical", "levels": [1, "1"]}]),
            "levels are not distinct",
        ),
        (
            clinic(features=[*clinic()["features"], {"name": "age", "kind": "binary"}]),
            "feature 'age' is listed twice",
        ),
        (
            clinic(features=[{"name": "outcome", "kind": "binary"}]),
            "target column 'outcome' is also a feature",
        ),
        (
            clinic(target={"kind": "survival"}),
            "kind must be classification or regression",
        ),
        (
            clinic(target={"kind": "classification", "classes": ["a"]}),
            "needs >= 2 classes",
        ),
        (
            clinic(target={"kind": "regression", "range": [0, 1], "scale": 0}),
            "scale must be positive",
        ),
        (
            clinic(
                target={
                    "kind": "classification",
                    "classes": [0, 1],
                    "missing": "impute",
                }
            ),
            "missing must be one of refuse, drop",
        ),
        ([1, 2], "the document must be a mapping"),
    ],
)
def test_bad_schema_gives_one_line_naming_the_key(doc: Any, problem: str) -> None:
    with pytest.raises(SchemaError) as info:
        Schema.from_mapping(doc, "fed.yaml")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("fed.yaml: ")
    assert problem in message


def test_schema_files_are_bounded_and_parsed_safely(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("#" * (MAX_SCHEMA_BYTES + 1))
    with pytest.raises(SchemaError, match="at most"):
        load_schema(big)
    unsafe = tmp_path / "unsafe.yaml"
    unsafe.write_text("!!python/object/apply:os.system ['true']\n")
    with pytest.raises(SchemaError, match="not valid YAML"):
        load_schema(unsafe)
    with pytest.raises(SchemaError, match="cannot read the schema"):
        load_schema(tmp_path / "absent.yaml")
    with pytest.raises(SchemaError, match="no shipped schema 'mnist'"):
        shipped_schema("mnist")
    with pytest.raises(SchemaError, match="not JSON"):
        Schema.from_json("{")


def test_a_dataset_must_match_the_features() -> None:
    schema = Schema.from_mapping(clinic(dataset="breast_cancer"))
    with pytest.raises(SchemaError, match="has 30 columns, the schema names 3"):
        embedded_frame(schema)
    with pytest.raises(SchemaError, match="not embedded"):
        embedded_frame(Schema.from_mapping(clinic(dataset="mnist")))
