"""Models (logistic regression, small MLP) and plain training loops."""

from fedsec.models.nets import build_model, get_weights, set_weights
from fedsec.models.training import EvalResult, evaluate, make_loader, train_epochs

__all__ = [
    "EvalResult",
    "build_model",
    "evaluate",
    "get_weights",
    "make_loader",
    "set_weights",
    "train_epochs",
]
