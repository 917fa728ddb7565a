"""Issue 10, attack 6: a server regenerates a site's DP-SGD noise from public values.

The site used to seed torch with ``data seed * 1000 + round`` (both sent by
the server) before DP-SGD, and Opacus drew its Gaussian noise from torch's
global generator and its Poisson batches from the loader's generator seeded
with the same value. A malicious server replayed ``torch.manual_seed`` and
Opacus's ``torch.normal`` calls, regenerated every noise tensor bit for bit
and subtracted it from the released update (residual 2e-8): ε meant nothing.

Here the attacker knows every public value (data seed, round, the code,
the global weights, the hyper-parameters) and tries every seed the old code
path could have used. A spy on ``DPOptimizer.scale_grad``, which Opacus calls
right after adding the noise, records the noise tensors the site actually
added (``p.grad - p.summed_grad``), in the old code as in the new, so the
regenerated noise is compared with the truth. A second attacker even knows
the site's rows and replays the whole old training: had the noise or the
batches come from a public seed, the replay would hit the released weights.
Against the old code both attacks succeed (noise residual 2.4e-7, replay
residual 0.0, at seed 42003 = 42 * 1000 + 3) and the three attack tests below
fail; the control passes in both.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flwr.app import ConfigRecord, Context, RecordDict
from opacus import PrivacyEngine
from opacus.optimizers import DPOptimizer

from clients.local_update import local_update
from clients.site_config import SIM_SITES_ENV
from clients.site_data import load_site
from clients.training import build_site_model
from fedsec.config import ClientSettings
from fedsec.flower.records import Weights
from fedsec.models import get_weights, make_loader, set_weights
from fedsec.models.training import train_epochs

DATA_SEED = 42
ROUND = 3
ROUNDS = 5
NODE = {"partition-id": 0, "num-partitions": 4}
SETTINGS = ClientSettings.from_mapping(
    {
        "seed": DATA_SEED,
        "dp-mode": "local_opacus",
        "dp-noise-multiplier": 1.0,
        "dp-max-grad-norm": 1.0,
        "dp-accountant": "rdp",
        "local-epochs": 1,
    }
)
STD = SETTINGS.dp.noise_multiplier * SETTINGS.dp.max_grad_norm
# Every public value a seed could have been built from, and what the old code used.
PUBLIC_SEEDS = sorted(
    {
        DATA_SEED * 1000 + ROUND,  # the old code's seed
        DATA_SEED * 1000,
        DATA_SEED + ROUND,
        DATA_SEED,
        ROUND,
        0,  # build_model's default seed, torch's usual seed
    }
)
# The old code was reconstructed to 2.4e-7 (noise) and 0.0 (replay); the noise's
# own scale is STD = 1, so a miss is of order 1.
FAR = 1e-3


@pytest.fixture(autouse=True)
def _no_simulated_sites(monkeypatch: pytest.MonkeyPatch) -> None:
    """The site's policy comes from its node config only (the default here)."""
    monkeypatch.delenv(SIM_SITES_ENV, raising=False)


@pytest.fixture
def noise_spy(monkeypatch: pytest.MonkeyPatch) -> list[list[torch.Tensor]]:
    """Record the noise each DP-SGD step added, one tensor per parameter."""
    steps: list[list[torch.Tensor]] = []
    scale_grad = DPOptimizer.scale_grad

    def spy(self: DPOptimizer) -> None:
        # pre_step: clip_and_accumulate, add_noise, then scale_grad
        steps.append(
            [(p.grad - p.summed_grad.view_as(p)).detach().clone() for p in self.params]
        )
        scale_grad(self)

    monkeypatch.setattr(DPOptimizer, "scale_grad", spy)
    return steps


def global_weights() -> Weights:
    site = load_site(NODE, SETTINGS.data)
    return get_weights(build_site_model(SETTINGS, site))


def site_round(start: Weights) -> Weights:
    """The site's round, through the entry point every handler calls."""
    context = Context(
        run_id=1, node_id=1, node_config=dict(NODE), state=RecordDict(), run_config={}
    )
    config = ConfigRecord({"server-round": ROUND, "num-server-rounds": ROUNDS})
    return local_update(start, config, SETTINGS, context).weights


def regenerate_noise(seed: int, shapes: list[list[torch.Size]]) -> list[torch.Tensor]:
    """Opacus's noise without secure_mode: torch.normal on the global generator."""
    torch.manual_seed(seed)
    return [
        torch.normal(mean=0.0, std=STD, size=shape) for step in shapes for shape in step
    ]


def replay_old_code(start: Weights, seed: int) -> Weights:
    """The old private path, verbatim, with the site's own rows (a strong attacker)."""
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    site = load_site(NODE, SETTINGS.data)
    model = build_site_model(SETTINGS, site)
    set_weights(model, start)
    loader = make_loader(site.train, SETTINGS.train.batch_size, seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=SETTINGS.train.learning_rate)
    engine = PrivacyEngine(accountant=SETTINGS.dp.accountant, secure_mode=False)
    wrapped, dp_optimizer, dp_loader = engine.make_private(
        module=model,
        optimizer=optimizer,
        data_loader=loader,
        noise_multiplier=SETTINGS.dp.noise_multiplier,
        max_grad_norm=SETTINGS.dp.max_grad_norm,
        poisson_sampling=True,
    )
    train_epochs(
        wrapped, dp_loader, dp_optimizer, site.train.kind, SETTINGS.train.local_epochs
    )
    return get_weights(model)


def residual(a: Weights, b: Weights) -> float:
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)


@pytest.mark.filterwarnings("ignore")
def test_the_noise_cannot_be_regenerated_from_public_values(
    noise_spy: list[list[torch.Tensor]],
) -> None:
    site_round(global_weights())
    assert noise_spy, "the spy saw no DP-SGD step"
    actual = [t for step in noise_spy for t in step]
    # the recorded noise is the mechanism's: mean 0, standard deviation z * C
    flat = torch.cat([t.flatten() for t in actual])
    assert abs(float(flat.mean())) < 0.5 * STD
    assert 0.7 * STD < float(flat.std()) < 1.3 * STD
    shapes = [[t.shape for t in step] for step in noise_spy]
    for seed in PUBLIC_SEEDS:
        guess = regenerate_noise(seed, shapes)
        worst = max(
            float((a - g).abs().max()) for a, g in zip(actual, guess, strict=True)
        )
        assert worst > FAR, f"the noise was regenerated from public seed {seed}"


@pytest.mark.filterwarnings("ignore")
def test_replaying_the_old_code_with_the_sites_rows_misses_the_release() -> None:
    start = global_weights()
    released = site_round(start)
    for seed in PUBLIC_SEEDS:
        assert residual(released, replay_old_code(start, seed)) > FAR, seed


@pytest.mark.filterwarnings("ignore")
def test_the_replay_is_exact_when_the_seed_is_known() -> None:
    """Control: the replay is deterministic, so a miss above means a secret seed."""
    start = global_weights()
    seed = DATA_SEED * 1000 + ROUND
    assert residual(replay_old_code(start, seed), replay_old_code(start, seed)) == 0
    assert residual(replay_old_code(start, seed), replay_old_code(start, 0)) > FAR


@pytest.mark.filterwarnings("ignore")
def test_identical_public_inputs_give_different_updates() -> None:
    start = global_weights()
    first, second = site_round(start), site_round(start)
    assert residual(first, second) > FAR
    assert residual(first, start) > FAR
