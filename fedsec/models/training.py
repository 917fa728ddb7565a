"""Plain local training and evaluation loops (torch, CPU).

The client layer wraps the same model, optimiser and loader with Opacus for
DP-SGD; nothing here knows about privacy or Flower.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from fedsec.data.datasets import Dataset, TaskKind


@dataclass(frozen=True)
class EvalResult:
    """Loss and accuracy (accuracy is ``nan`` for regression) on ``num_examples``."""

    loss: float
    accuracy: float
    num_examples: int


def loss_fn(kind: TaskKind) -> nn.Module:
    """Cross-entropy for classification, MSE for regression."""
    return nn.CrossEntropyLoss() if kind is TaskKind.CLASSIFICATION else nn.MSELoss()


def to_tensors(ds: Dataset) -> TensorDataset:
    """Features and targets as tensors shaped for :func:`loss_fn`."""
    x = torch.from_numpy(ds.x)
    if ds.kind is TaskKind.CLASSIFICATION:
        y = torch.from_numpy(np.asarray(ds.y, dtype=np.int64))
    else:
        y = torch.from_numpy(np.asarray(ds.y, dtype=np.float32)).reshape(-1, 1)
    return TensorDataset(x, y)


def make_loader(
    ds: Dataset, batch_size: int, seed: int
) -> DataLoader[tuple[torch.Tensor, ...]]:
    """A shuffling loader with its own seeded generator."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        to_tensors(ds), batch_size=batch_size, shuffle=True, generator=generator
    )


def train_epochs(
    model: nn.Module,
    loader: DataLoader[tuple[torch.Tensor, ...]],
    optimizer: torch.optim.Optimizer,
    kind: TaskKind,
    epochs: int,
    proximal_mu: float = 0.0,
) -> float:
    """Run ``epochs`` of minibatch training; returns the mean training loss.

    With ``proximal_mu > 0`` the FedProx term (μ/2)·‖w − w_global‖² is added,
    ``w_global`` being the weights the model held on entry.
    """
    criterion = loss_fn(kind)
    anchor = [p.detach().clone() for p in model.parameters()] if proximal_mu else []
    model.train()
    total, count = 0.0, 0
    for _ in range(epochs):
        for xb, yb in loader:
            if len(xb) == 0:  # Poisson sampling (Opacus) may draw an empty batch
                continue
            optimizer.zero_grad()
            loss = criterion(model(xb), yb)
            if proximal_mu:
                prox = sum(
                    ((p - a) ** 2).sum()
                    for p, a in zip(model.parameters(), anchor, strict=True)
                )
                loss = loss + 0.5 * proximal_mu * prox
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(xb)
            count += len(xb)
    return total / max(count, 1)


@torch.no_grad()
def evaluate(model: nn.Module, ds: Dataset) -> EvalResult:
    """Loss and accuracy of ``model`` on the whole data set."""
    model.eval()
    x, y = to_tensors(ds).tensors
    out = model(x)
    loss = float(loss_fn(ds.kind)(out, y))
    accuracy = (
        float((out.argmax(dim=1) == y).float().mean())
        if ds.kind is TaskKind.CLASSIFICATION
        else float("nan")
    )
    return EvalResult(loss=loss, accuracy=accuracy, num_examples=len(ds))
