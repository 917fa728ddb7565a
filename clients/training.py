"""Local training of one site, shared by every client handler."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fedsec.config import ClientSettings
from fedsec.data import SiteData
from fedsec.flower.records import Weights
from fedsec.models import build_model, evaluate, get_weights, make_loader, set_weights
from fedsec.models.training import train_epochs


@dataclass(frozen=True)
class LocalResult:
    """Updated weights, the number of training examples and the local metrics."""

    weights: Weights
    num_examples: int
    train_loss: float
    val_loss: float
    val_accuracy: float


def build_site_model(settings: ClientSettings, site: SiteData) -> torch.nn.Module:
    """The federation's model for this site's feature and output sizes."""
    return build_model(
        settings.train.model,
        site.train.num_features,
        site.train.num_outputs,
        settings.train.hidden_dim,
    )


def train_locally(
    global_weights: Weights,
    site: SiteData,
    settings: ClientSettings,
    *,
    proximal_mu: float = 0.0,
    seed: int = 0,
) -> LocalResult:
    """Start from the global weights, train the local epochs, evaluate locally."""
    torch.set_num_threads(1)
    model = build_site_model(settings, site)
    set_weights(model, global_weights)
    loader = make_loader(site.train, settings.train.batch_size, seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=settings.train.learning_rate)
    train_loss = train_epochs(
        model,
        loader,
        optimizer,
        site.train.kind,
        settings.train.local_epochs,
        proximal_mu=proximal_mu,
    )
    val = evaluate(model, site.val)
    return LocalResult(
        weights=get_weights(model),
        num_examples=len(site.train),
        train_loss=train_loss,
        val_loss=val.loss,
        val_accuracy=val.accuracy,
    )
