"""Site-local files: good files load, every bad file gives one line naming it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clients.check_data import main as check_data
from fedsec.data import TaskKind, load_site_table, site_split
from fedsec.errors import DataError


def _frame(rows: int = 40, features: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        rng.normal(size=(rows, features)), columns=[f"f{i}" for i in range(features)]
    )
    frame["target"] = rng.integers(0, 2, rows)
    return frame


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_good_file_loads(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"site{suffix}"
    frame = _frame()
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    ds = load_site_table(path, TaskKind.CLASSIFICATION, 2, num_features=3)
    assert ds.x.shape == (40, 3)
    np.testing.assert_array_equal(ds.y, frame["target"].to_numpy())
    site = site_split(ds, seed=0)
    np.testing.assert_allclose(site.train.x.mean(axis=0), 0.0, atol=1e-5)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda d: d / "missing.csv", "file not found"),
        (lambda d: _write(d, "empty.csv", ""), "file is empty"),
        (lambda d: _write(d, "header.csv", "a,b,target\n"), "no data rows"),
        (lambda d: _write(d, "notarget.csv", "a,b\n1,2\n3,4\n"), "no 'target' column"),
        (
            lambda d: _write(d, "text.csv", "a,b,target\n1,x,0\n2,y,1\n"),
            "non-numeric column(s): b",
        ),
        (
            lambda d: _write(d, "nan.csv", "a,b,target\n1,,0\n2,3,1\n"),
            "missing or infinite",
        ),
        (
            lambda d: _write(d, "labels.csv", "a,b,target\n1,2,0\n2,3,7\n"),
            "class labels 0..1",
        ),
        (lambda d: _write(d, "cols.csv", "a,target\n1,0\n2,1\n"), "1 feature columns"),
        (lambda d: _write(d, "data.xlsx", "x"), "unsupported file type"),
        (
            lambda d: _write(d, "bad.parquet", "not parquet"),
            "cannot be read as parquet",
        ),
    ],
)
def test_bad_file_gives_one_line_naming_file_and_problem(
    tmp_path: Path, make, problem: str
) -> None:
    path = make(tmp_path)
    with pytest.raises(DataError) as info:
        load_site_table(path, TaskKind.CLASSIFICATION, 2, num_features=2)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    assert problem in message


def test_check_data_cli_prints_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _write(tmp_path, "bad.csv", "a,b\n1,2\n")
    assert check_data([str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no 'target' column" in err
    good = tmp_path / "good.csv"
    frame = _frame(features=30)
    frame.to_csv(good, index=False)
    assert check_data([str(good)]) == 0
    assert capsys.readouterr().out.startswith("ok: ")
