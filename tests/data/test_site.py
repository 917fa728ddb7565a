"""Site files checked by column name: good files load, each problem is one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clients.check_data import EXIT_DATA, EXIT_OK, EXIT_SCHEMA
from clients.check_data import main as check_data
from fedsec.data import Scaling, Schema, load_site_table, site_split, to_dataset
from fedsec.data.table import check_frame, find_problems
from fedsec.errors import DataError
from tests.data.test_schema import clinic

SCHEMA = Schema.from_mapping(clinic())


def _frame(rows: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "outcome": rng.choice(["no", "yes"], rows),
            "smoker": rng.choice(["never", "former", "current"], rows),
            "age": rng.uniform(20, 90, rows).round(1),
            "diabetic": rng.integers(0, 2, rows),
            "hospital_id": np.arange(rows),  # not in the schema: ignored
        }
    )


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_good_file_in_any_column_order_loads_by_name(
    tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"site{suffix}"
    frame = _frame()
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    table = load_site_table(path, SCHEMA)
    assert len(table) == 40
    assert table.ignored == ("hospital_id",)
    np.testing.assert_array_equal(table.values[:, 0], frame["age"].to_numpy())
    levels = {"never": 0, "former": 1, "current": 2}
    np.testing.assert_array_equal(table.values[:, 2], frame["smoker"].map(levels))
    np.testing.assert_array_equal(table.y, (frame["outcome"] == "yes").astype(int))
    site = site_split(table, seed=0)
    assert site.train.x.shape[1] == SCHEMA.input_dim == 5
    np.testing.assert_allclose(site.train.x[:, 0].mean(), 0.0, atol=1e-5)


def _bad(frame: pd.DataFrame, column: str, row: int, value: object) -> pd.DataFrame:
    frame = frame.astype({column: object})
    frame.loc[row, column] = value
    return frame


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda f: f.drop(columns=["age"]), "column 'age': missing from the table"),
        (
            lambda f: f.drop(columns=["outcome"]),
            "column 'outcome': missing from the table (the target)",
        ),
        (
            lambda f: _bad(f, "age", 3, "old"),
            "column 'age': not numeric ('old' in row 4)",
        ),
        (
            lambda f: _bad(f, "smoker", 5, "sometimes"),
            "column 'smoker': unknown level 'sometimes' in row 6 "
            "(levels: never, former, current)",
        ),
        (
            lambda f: _bad(f, "diabetic", 0, 2),
            "column 'diabetic': unknown binary value '2' in row 1",
        ),
        (
            lambda f: _bad(f, "outcome", 7, "maybe"),
            "column 'outcome': unknown class 'maybe' in row 8 (classes: no, yes)",
        ),
        (
            lambda f: _bad(f, "age", 16, 250),
            "column 'age': a value outside the range [0, 120] (250 in row 17)",
        ),
        (lambda f: f.assign(age=np.nan), "column 'age': all values missing"),
        (lambda f: f.assign(smoker=""), "column 'smoker': all values missing"),
        (
            lambda f: _bad(f, "outcome", 2, None),
            "column 'outcome': 1 missing target value(s), and the schema refuses them",
        ),
    ],
)
def test_each_problem_is_one_line_naming_file_and_column(
    tmp_path: Path, make, problem: str
) -> None:
    path = tmp_path / "site.csv"
    make(_frame()).to_csv(path, index=False)
    with pytest.raises(DataError) as info:
        load_site_table(path, SCHEMA)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert problem in message


def test_refused_missing_values_and_every_problem_listed() -> None:
    schema = Schema.from_mapping(
        clinic(
            features=[
                {
                    "name": "age",
                    "kind": "numeric",
                    "range": [0, 120],
                    "missing": "refuse",
                }
            ]
        )
    )
    frame = _frame()
    frame.loc[[1, 2], "age"] = np.nan
    frame.loc[0, "outcome"] = "maybe"
    problems = find_problems(frame, schema, "f.csv")
    assert problems == [
        "f.csv: column 'age': 2 missing values, and the schema refuses missing values",
        "f.csv: column 'outcome': unknown class 'maybe' in row 1 (classes: no, yes)",
    ]
    with pytest.raises(
        DataError, match=r"refuses missing values \(and 1 more problems\)"
    ):
        check_frame(frame, schema, "f.csv")


def test_drop_and_impute_policies() -> None:
    frame = _frame()
    frame.loc[[0, 1], "diabetic"] = np.nan  # missing: drop
    frame.loc[[2, 3], "age"] = np.nan  # missing: impute (median)
    frame.loc[4, "smoker"] = np.nan  # missing: impute (all-zero one-hot)
    table = check_frame(frame, SCHEMA, "f.csv")
    assert (len(table), table.dropped) == (38, 2)
    scaling = Scaling.fit(table)
    x = to_dataset(table, scaling).x
    present = table.values[~np.isnan(table.values[:, 0]), 0]
    median_z = (np.median(present) - present.mean()) / present.std()
    np.testing.assert_allclose(x[[0, 1], 0], median_z, rtol=1e-5)  # rows 2, 3
    np.testing.assert_array_equal(x[2, 2:], 0.0)  # row 4: no level
    assert np.all(x[3:, 2:].sum(axis=1) == 1.0)
    drop_target = Schema.from_mapping(
        clinic(target={**clinic()["target"], "missing": "drop"})
    )
    halves = _frame().astype({"outcome": object})
    halves.loc[:19, "diabetic"] = np.nan
    halves.loc[20:, "outcome"] = None
    with pytest.raises(DataError, match="no rows left after dropping"):
        check_frame(halves, drop_target, "f.csv")


def test_global_scaling_is_used_instead_of_the_sites_own() -> None:
    table = check_frame(_frame(), SCHEMA, "f.csv")
    scaling = Scaling.from_global(SCHEMA, [50.0, 0, 0], [10.0, 1, 1], [55.0, 0.7, 0])
    x = to_dataset(table, scaling).x
    np.testing.assert_allclose(x[:, 0], (table.values[:, 0] - 50.0) / 10.0, rtol=1e-6)
    assert scaling.fill[1] == 1.0  # binary: the more frequent value
    back = Scaling.from_config(scaling.to_config(), SCHEMA)
    assert back == scaling
    assert Scaling.from_config({}, SCHEMA) is None


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda d: d / "missing.csv", "file not found"),
        (lambda d: _write(d, "empty.csv", ""), "file is empty"),
        (lambda d: _write(d, "header.csv", "age,target\n"), "no data rows"),
        (lambda d: _write(d, "data.xlsx", "x"), "unsupported file type"),
        (
            lambda d: _write(d, "bad.parquet", "not parquet"),
            "cannot be read as parquet",
        ),
    ],
)
def test_unreadable_file_gives_one_line(tmp_path: Path, make, problem: str) -> None:
    path = make(tmp_path)
    with pytest.raises(DataError) as info:
        load_site_table(path, SCHEMA)
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)
    assert problem in str(info.value)


def test_check_data_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schema = _write(tmp_path, "fed.yaml", SCHEMA.to_json())  # JSON is YAML
    good = tmp_path / "good.csv"
    _frame().to_csv(good, index=False)
    assert check_data([str(good), "--schema", str(schema)]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("ok: ")
    assert "ignored columns: hospital_id" in out
    bad = tmp_path / "bad.csv"
    _bad(_frame(), "age", 0, 999).drop(columns=["smoker"]).to_csv(bad, index=False)
    assert check_data([str(bad), "--schema", str(schema)]) == EXIT_DATA
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    assert "column 'age'" in err[0]
    assert "column 'smoker'" in err[1]
    broken = _write(tmp_path, "broken.yaml", "features: [")
    assert check_data([str(good), "--schema", str(broken)]) == EXIT_SCHEMA
    assert "not valid YAML" in capsys.readouterr().err
    assert check_data([str(good), "--task", "breast_cancer"]) == EXIT_DATA
    with pytest.raises(SystemExit) as usage:
        check_data([str(good), "--schema", str(schema), "--task", "digits"])
    assert usage.value.code == 2
