"""Logistic and linear regression by mini-batch gradient descent on shares.

Runs SPMD at the three compute parties (:mod:`fedsec.mpc`) on replicated
shares of the aligned feature matrix ``X`` (``n x d``, ``f`` fractional bits,
columns secret-shared by their holders) and of the labels ``y`` (shared by the
label holder). The intercept is a public column of ones. Per mini-batch ``B``
(a public schedule: a fresh permutation of the rows per epoch from a public
seed):

* ``z = X_B w``: local cross terms, at ``2f`` bits;
* logistic: ``z`` is truncated to ``f`` bits (ABY3's probabilistic
  truncation; a failure, probability ``2^(2f + 4 - 64)`` per row, makes the
  spline output exactly 0 or 1, see :mod:`fedsec.vertical.sigmoid`) and the
  residual is ``e = spline(z) - y`` at ``2f`` bits; linear: ``e = z - y``
  (reshared, no truncation at all);
* ``G = X_B^T e`` (local, ``3f`` bits), optionally plus Gaussian noise shares
  drawn inside the MPC (``noise_multiplier`` z: noise ``z C`` on the sum, C
  the bound on a row's norm, so each step is a Gaussian mechanism on the
  batch; accounted by :mod:`fedsec.dp.accounting`);
* ``w <- w - (lr / |B|) G`` with an exact truncation of ``G``
  (:mod:`fedsec.vertical.step`).

Cost per batch: 26 rounds (logistic) or 14 (linear); between the parties,
O(|B| K + d) words per batch (K = 10 spline knots): the data never moves.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from fedsec.crypto.kdf import hkdf
from fedsec.crypto.prg import keystream_words, permutation_of
from fedsec.errors import ConfigError
from fedsec.mpc.arithmetic import reshare, truncate_additive
from fedsec.mpc.noise import gaussian, party_noise_std
from fedsec.mpc.ring import FixedPoint, Ring
from fedsec.mpc.runtime import Runtime
from fedsec.mpc.shares import Shared, public_component
from fedsec.vertical.sigmoid import secure_sigmoid
from fedsec.vertical.step import scaled_step

NOISE_COLLUDERS = 1  # compute parties that may collude with whoever sees the model


class Model(StrEnum):
    """Which regression."""

    LOGISTIC = "logistic"
    LINEAR = "linear"


@dataclass(frozen=True)
class TrainTerms:
    """The public terms of a training session (every party and holder checks them).

    Attributes
    ----------
    model
        Logistic or linear regression.
    epochs, batch_size, learning_rate
        Mini-batch gradient descent; the step is ``learning_rate / |B|``.
    frac_bits
        Fractional bits ``f`` of features, labels and weights (default 14:
        the gradient at ``3f`` bits keeps 21 bits of headroom).
    noise_multiplier
        DP noise z on every batch gradient sum (0: none; logistic only).
    row_norm
        C, the bound on one row's L2 norm including the intercept (holders
        clip their part of each row so that it holds); the sensitivity of a
        batch gradient sum, since ``|spline - y| <= 1``.
    """

    model: Model = Model.LOGISTIC
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 0.5
    frac_bits: int = 14
    noise_multiplier: float = 0.0
    row_norm: float = 0.0

    def __post_init__(self) -> None:
        Model(self.model)
        if not (self.epochs >= 1 and self.batch_size >= 1):
            raise ConfigError("epochs and batch size must be positive", stage="train")
        if not 0 < self.learning_rate <= 16:
            raise ConfigError("the learning rate must lie in (0, 16]", stage="train")
        if not 8 <= self.frac_bits <= 16:
            raise ConfigError("frac_bits must lie in [8, 16]", stage="train")
        if self.noise_multiplier < 0 or (
            self.noise_multiplier > 0
            and (self.model is not Model.LOGISTIC or not self.row_norm > 0)
        ):
            raise ConfigError(
                "DP noise needs logistic regression and a row norm bound",
                stage="train",
            )

    @property
    def encoder(self) -> FixedPoint:
        """The fixed-point encoding of the session."""
        return FixedPoint(self.frac_bits)

    def steps(self, rows: int) -> int:
        """Gradient steps over the whole training."""
        return self.epochs * -(-rows // self.batch_size)


def schedule(rows: int, terms: TrainTerms, seed: bytes) -> list[npt.NDArray[np.int64]]:
    """The public batch schedule: a permutation per epoch from ``seed``, in slices."""
    key = hkdf(seed, b"fedsec/vertical/schedule/v1")
    out: list[npt.NDArray[np.int64]] = []
    for epoch in range(terms.epochs):
        perm = permutation_of(keystream_words(key, epoch, rows))
        out.extend(
            perm[a : a + terms.batch_size].astype(np.int64)
            for a in range(0, rows, terms.batch_size)
        )
    return out


def with_intercept(rt: Runtime, x: Shared) -> Shared:
    """Append the public column of ones (``f`` bits) to shared features."""
    n = x.shape[0]
    ones = public_component(rt.index, np.full(n, rt.encoder.encode(1.0)), 0)
    return Shared(
        np.column_stack([x.a, ones.a]).astype(np.uint64),
        np.column_stack([x.b, ones.b]).astype(np.uint64),
    )


def _residual(rt: Runtime, xb: Shared, w: Shared, yb: Shared, model: Model) -> Shared:
    f = rt.encoder.frac_bits
    with np.errstate(over="ignore"):
        z = np.asarray(xb.a @ (w.a + w.b) + xb.b @ w.a, dtype=np.uint64)  # 2f bits
        y2 = yb.shift_left(f)
        if model is Model.LINEAR:
            return reshare(rt, z) - y2
        return secure_sigmoid(rt, truncate_additive(rt, z, f)) - y2


def train(rt: Runtime, x: Shared, y: Shared, terms: TrainTerms, seed: bytes) -> Shared:
    """Train at this party; returns its shares of the weights (intercept last).

    ``x`` is ``(n, d)`` and ``y`` ``(n,)``, both at ``f`` bits, rows in the
    common order; ``seed`` (public) fixes the batch schedule.
    """
    if rt.encoder.frac_bits != terms.frac_bits:
        raise ConfigError("runtime and terms disagree on frac_bits", node_id=rt.index)
    x1 = with_intercept(rt, x)
    d = x1.shape[1]
    w = Shared(np.zeros(d, np.uint64), np.zeros(d, np.uint64))
    sigma = party_noise_std(terms.noise_multiplier * terms.row_norm, NOISE_COLLUDERS)
    for rows in schedule(x.shape[0], terms, seed):
        xb = Shared(x1.a[rows], x1.b[rows])
        yb = Shared(y.a[rows], y.b[rows])
        e = _residual(rt, xb, w, yb, terms.model)
        with np.errstate(over="ignore"):
            g: Ring = np.asarray(xb.a.T @ (e.a + e.b) + xb.b.T @ e.a, dtype=np.uint64)
            if sigma > 0:
                g += rt.encoder.encode(
                    gaussian(sigma, d), frac_bits=3 * terms.frac_bits
                )
        w = w - scaled_step(rt, g, terms.learning_rate / len(rows))
    return w


def plaintext_train(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    terms: TrainTerms,
    seed: bytes,
    *,
    exact_sigmoid: bool = False,
) -> npt.NDArray[np.float64]:
    """The same gradient descent in float64 on the joined table (the reference).

    With ``exact_sigmoid`` the logistic function itself instead of the spline.
    """
    from fedsec.vertical.sigmoid import spline

    xx = np.column_stack([np.asarray(x, np.float64), np.ones(len(np.asarray(y)))])
    yy = np.asarray(y, dtype=np.float64)
    w = np.zeros(xx.shape[1])
    for rows in schedule(xx.shape[0], terms, seed):
        z = xx[rows] @ w
        if terms.model is Model.LINEAR:
            p = z
        elif exact_sigmoid:
            p = 1.0 / (1.0 + np.exp(-z))
        else:
            p = spline(z, terms.frac_bits)
        w = w - terms.learning_rate / len(rows) * (xx[rows].T @ (p - yy[rows]))
    return w
