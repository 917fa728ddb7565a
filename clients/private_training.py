"""Sample-level DP-SGD at a site (Opacus), with ε carried across rounds.

The accountant's history and the noise multiplier live in the site's
``context.state`` (node-local memory), so ε accumulates over rounds. With a
budget (``dp-epsilon-budget``) the site refuses a round whose steps would
exceed it and says so in a one-line error reply; it then takes no further part.

No public value seeds anything here: :func:`fedsec.dp.opacus_glue.make_private`
draws the noise and the Poisson batches from a secret the site alone holds
(fresh every round), and the model's initial weights are the global ones.
With a site policy, the noise multiplier in use (given, cached or derived from
a target ε) is checked against it before the first step.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from clients.training import LocalResult, build_site_model
from fedsec.config import ClientSettings
from fedsec.data import SiteData
from fedsec.dp.accounting import PrivacyBudget, accountant_from_bytes, make_accountant
from fedsec.dp.opacus_glue import make_private
from fedsec.flower.records import Weights
from fedsec.models import evaluate, get_weights, set_weights
from fedsec.models.training import to_tensors, train_epochs
from fedsec.policy import SitePolicy


@dataclass(frozen=True)
class PrivateState:
    """What a site keeps between rounds: the accountant and the noise in use."""

    accountant: bytes | None = None
    noise_multiplier: float = 0.0


@dataclass(frozen=True)
class PrivateResult:
    """The local result, ε(δ) spent so far, and the state for the next round."""

    local: LocalResult
    epsilon: float
    state: PrivateState


def train_privately(
    global_weights: Weights,
    site: SiteData,
    settings: ClientSettings,
    state: PrivateState,
    *,
    planned_rounds: int,
    policy: SitePolicy | None = None,
) -> PrivateResult:
    """One round of DP-SGD from the global weights.

    Raises
    ------
    PolicyError
        If ``policy`` refuses the noise multiplier in use
        (``min-noise-multiplier``); nothing has been trained or spent.
    PrivacyBudgetExhausted
        If the round's steps would exceed ``dp-epsilon-budget``.
    """
    dp = settings.dp
    torch.set_num_threads(1)
    model = build_site_model(settings, site)
    set_weights(model, global_weights)
    # Only the rows and the batch size matter: Opacus re-samples the batches.
    loader = DataLoader(to_tensors(site.train), batch_size=settings.train.batch_size)
    optimizer = torch.optim.SGD(model.parameters(), lr=settings.train.learning_rate)
    fixed_noise = state.noise_multiplier or None
    derive = fixed_noise is None and dp.target_epsilon > 0
    private = make_private(
        model,
        optimizer,
        loader,
        max_grad_norm=dp.max_grad_norm,
        noise_multiplier=None if derive else (fixed_noise or dp.noise_multiplier),
        target_epsilon=dp.target_epsilon if derive else None,
        delta=dp.delta,
        epochs=settings.train.local_epochs * planned_rounds if derive else None,
        accountant=dp.accountant,
        accountant_state=state.accountant,
    )
    if policy is not None:
        policy.require_dp_noise(private.noise_multiplier)
    if dp.epsilon_budget > 0:
        history = (
            accountant_from_bytes(state.accountant)
            if state.accountant
            else make_accountant(dp.accountant)
        )
        budget = PrivacyBudget(dp.epsilon_budget, dp.delta, history)
        budget.check(
            private.noise_multiplier,
            private.sample_rate,
            steps=settings.train.local_epochs * len(private.data_loader),
        )
    with warnings.catch_warnings():
        # Opacus's hooks fire on the first layer, whose inputs need no gradient.
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        train_loss = train_epochs(
            private.model,
            private.data_loader,
            private.optimizer,
            site.train.kind,
            settings.train.local_epochs,
        )
    plain = build_site_model(settings, site)
    plain.load_state_dict(private.state_dict())
    val = evaluate(plain, site.val)
    local = LocalResult(
        weights=get_weights(plain),
        num_examples=len(site.train),
        train_loss=train_loss,
        val_loss=val.loss,
        val_accuracy=val.accuracy,
    )
    return PrivateResult(
        local=local,
        epsilon=private.epsilon(dp.delta),
        state=PrivateState(private.accountant_state(), private.noise_multiplier),
    )
