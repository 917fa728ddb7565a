"""The two models of fedsec: logistic regression and a small MLP.

The task decides the head: ``num_outputs`` logits for classification (two for
a binary task, trained with cross-entropy), one output for regression (MSE).
No BatchNorm anywhere, so Opacus can wrap every model.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from fedsec.errors import ConfigError


def build_model(
    name: str, num_features: int, num_outputs: int, hidden_dim: int = 32, seed: int = 0
) -> nn.Module:
    """Build a freshly initialised model; the same seed gives the same weights."""
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        if name == "logreg":
            return nn.Sequential(nn.Linear(num_features, num_outputs))
        if name == "mlp":
            return nn.Sequential(
                nn.Linear(num_features, hidden_dim),
                nn.ReLU(),
                nn.Linear(hidden_dim, num_outputs),
            )
    finally:
        torch.random.set_rng_state(generator_state)
    raise ConfigError(f"unknown model {name!r}; use logreg or mlp")


def get_weights(model: nn.Module) -> OrderedDict[str, npt.NDArray[np.float32]]:
    """The model's parameters as float32 numpy arrays, in a stable order."""
    return OrderedDict(
        (key, value.detach().cpu().numpy().astype(np.float32, copy=True))
        for key, value in model.state_dict().items()
    )


def set_weights(model: nn.Module, weights: dict[str, npt.NDArray[np.float32]]) -> None:
    """Load numpy arrays into the model; keys and shapes must match exactly."""
    expected = model.state_dict()
    if set(expected) != set(weights):
        raise ConfigError(
            f"weights have keys {sorted(weights)}, model expects {sorted(expected)}"
        )
    for key, value in weights.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise ConfigError(
                f"weight {key!r} has shape {value.shape}, "
                f"model expects {tuple(expected[key].shape)}"
            )
    model.load_state_dict(
        OrderedDict((k, torch.from_numpy(np.asarray(v))) for k, v in weights.items())
    )
