"""Bonawitz et al.'s expansion factors from fedsec's measured message sizes."""

from __future__ import annotations

import pytest

from experiments import expansion


def test_the_size_model_predicts_a_run_it_was_not_fitted_on() -> None:
    models = expansion.fit()  # raises if the held-out run differs by > 1 byte
    measured = expansion.measure(6, 1500)
    for stage, model in models.items():
        assert model.bytes(6, 1500) == pytest.approx(measured[stage], abs=1.0)


def test_the_papers_expansion_factors_are_reproduced() -> None:
    rows = expansion.main([])
    for row in rows:
        # within 2 %: Bonawitz et al. count slightly larger key and share messages
        assert row["expansion"] == pytest.approx(row["paper"], rel=0.02)
    assert rows[0]["expansion"] < rows[1]["expansion"]  # more users, more bits
