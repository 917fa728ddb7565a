"""Training on shares against the same gradient descent in float64.

Tolerance: per step the shared run differs from float64 on the quantised
inputs by at most one unit in the last place (``2^-f``) of ``z`` (times the
spline's slope, <= 1/4), one of the floored gradient (times the step) and one
of the truncated update; the differences accumulate at most linearly over
``T`` steps, so ``|w - w_plain| <= 2 T 2^-f``. The observed differences are
far smaller (a random walk, about ``sqrt(T) 2^-f``).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes

from fedsec.mpc.arithmetic import reveal
from fedsec.mpc.local import run_local
from fedsec.mpc.runtime import Runtime
from fedsec.mpc.shares import Shared, split, views
from fedsec.vertical.train import Model, TrainTerms, plaintext_train, train

SEED = b"public schedule seed"


def _standardised(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(0)) / x.std(0)


def _shared_train(x: np.ndarray, y: np.ndarray, terms: TrainTerms) -> np.ndarray:
    enc = terms.encoder
    xs, ys = views(split(enc.encode(x))), views(split(enc.encode(y)))

    def prog(rt: Runtime, parts: tuple[Shared, Shared]) -> np.ndarray:
        out = reveal(rt, train(rt, parts[0], parts[1], terms, SEED))
        assert out is not None
        return out

    run = run_local(prog, list(zip(xs, ys, strict=True)), enc)
    return enc.decode(run.outputs[0])


@pytest.mark.parametrize("model", [Model.LOGISTIC, Model.LINEAR])
def test_shared_training_matches_float64(model: Model) -> None:
    if model is Model.LOGISTIC:
        x, y = load_breast_cancer(return_X_y=True)
        y = y.astype(float)
        lr = 0.5
    else:
        x, y = load_diabetes(return_X_y=True)
        y = (y - y.mean()) / y.std()
        lr = 0.1
    x = _standardised(x)[:240, :12]
    y = y[:240]
    terms = TrainTerms(model=model, epochs=3, batch_size=32, learning_rate=lr)
    enc = terms.encoder
    xq, yq = enc.decode(enc.encode(x)), enc.decode(enc.encode(y))
    got = _shared_train(x, y, terms)
    want = plaintext_train(xq, yq, terms, SEED)
    steps = terms.steps(len(y))
    bound = 2 * steps * 2.0**-terms.frac_bits
    assert np.max(np.abs(got - want)) <= bound
    assert np.max(np.abs(got - want)) <= bound / 4  # the typical case


def test_dp_noise_is_added_inside() -> None:
    x = _standardised(load_breast_cancer(return_X_y=True)[0])[:64, :4]
    y = (x[:, 0] > 0).astype(float)
    quiet = TrainTerms(epochs=1, batch_size=64)
    noisy = TrainTerms(epochs=1, batch_size=64, noise_multiplier=4.0, row_norm=3.0)
    a, b = _shared_train(x, y, quiet), _shared_train(x, y, noisy)
    # one step of lr/|B| * N(0, (z C)^2 * 1.5) per coordinate: clearly visible
    assert np.max(np.abs(a - b)) > 0.02
