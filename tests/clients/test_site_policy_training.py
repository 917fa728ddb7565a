"""A site's own policy refuses weak training requests, from its node config only.

Local DP-SGD: the noise multiplier Opacus actually uses (given, or derived
from a target ε) is checked against ``policy-min-noise-multiplier`` before the
first step, whichever handler called :func:`clients.local_update.local_update`.
The ``train`` handler (the model travels in the clear) needs ``plain`` among
the site's modes, and with ``policy-require-dp`` it refuses every run without
local DP-SGD. The request cannot lower a floor: policy keys in the run config
are ignored.
"""

from __future__ import annotations

from typing import Any

import pytest
from flwr.app import ConfigRecord, Context, Message, RecordDict

from clients.client_app import train
from clients.local_update import DP_STATE_KEY, local_update
from clients.site_config import SIM_SITES_ENV
from clients.site_data import load_site
from clients.training import build_site_model
from fedsec.config import ClientSettings
from fedsec.errors import PolicyError
from fedsec.flower.records import Weights, weights_to_record
from fedsec.models import get_weights

NODE: dict[str, Any] = {"partition-id": 1, "num-partitions": 4}
LOCAL_DP = {
    "dp-mode": "local_opacus",
    "dp-noise-multiplier": 0.6,
    "dp-accountant": "rdp",
    "local-epochs": 1,
}


@pytest.fixture(autouse=True)
def _no_simulated_sites(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SIM_SITES_ENV, raising=False)


def context(**policy: Any) -> Context:
    node = NODE | {f"policy-{k.replace('_', '-')}": v for k, v in policy.items()}
    return Context(
        run_id=1, node_id=1, node_config=node, state=RecordDict(), run_config={}
    )


def start(config: dict[str, Any]) -> Weights:
    settings = ClientSettings.from_mapping(config)
    return get_weights(build_site_model(settings, load_site(NODE, settings.data)))


def run_local(config: dict[str, Any], ctx: Context) -> dict[str, float]:
    record = ConfigRecord({"server-round": 1, "num-server-rounds": 3, **config})
    settings = ClientSettings.from_mapping(config)
    return local_update(start(config), record, settings, ctx).metrics


def handle(config: dict[str, Any], ctx: Context) -> Message:
    content = RecordDict(
        {
            "arrays": weights_to_record(start(config)),
            "config": ConfigRecord(
                {"server-round": 1, "num-server-rounds": 3, **config}
            ),
        }
    )
    return train(Message(content, dst_node_id=1, message_type="train"), ctx)


# ------------------------------------------------------------ local DP-SGD
@pytest.mark.filterwarnings("ignore")
def test_a_noise_multiplier_below_the_floor_is_refused_before_training() -> None:
    ctx = context(min_noise_multiplier=1.0)
    with pytest.raises(PolicyError, match="min-noise-multiplier") as refused:
        run_local(LOCAL_DP, ctx)
    assert refused.value.key == "min-noise-multiplier"
    assert "noise multiplier 0.6" in str(refused.value)
    assert DP_STATE_KEY not in ctx.state  # nothing trained, no ε spent


@pytest.mark.filterwarnings("ignore")
def test_a_derived_noise_multiplier_is_checked() -> None:
    """A generous target ε derives a small z; the floor applies to that z."""
    config = LOCAL_DP | {"dp-target-epsilon": 50.0}
    with pytest.raises(PolicyError, match="min-noise-multiplier"):
        run_local(config, context(min_noise_multiplier=1.0))
    metrics = run_local(config, context(min_noise_multiplier=0.1))
    assert 0 < metrics["epsilon"] <= 50.0


@pytest.mark.filterwarnings("ignore")
def test_enough_noise_trains_and_satisfies_require_dp() -> None:
    metrics = run_local(LOCAL_DP, context(min_noise_multiplier=0.6, require_dp=True))
    assert metrics["epsilon"] > 0


@pytest.mark.filterwarnings("ignore")
def test_policy_keys_in_the_request_are_ignored() -> None:
    """Only the node config sets floors: a lower one in the request changes nothing."""
    ctx = context(min_noise_multiplier=1.0)
    with pytest.raises(PolicyError, match="min-noise-multiplier"):
        run_local(LOCAL_DP | {"policy-min-noise-multiplier": 0.0}, ctx)


# ------------------------------------------------------- the train handler
@pytest.mark.usefixtures("task_identity")
@pytest.mark.parametrize("dp_mode", ["none", "central"])
def test_require_dp_refuses_training_in_the_clear(dp_mode: str) -> None:
    reply = handle({"dp-mode": dp_mode, "local-epochs": 1}, context(require_dp=True))
    assert reply.has_error()
    assert "PolicyError" in reply.error.reason
    assert "policy-require-dp" in reply.error.reason


@pytest.mark.usefixtures("task_identity")
def test_a_site_not_in_plain_mode_refuses_train() -> None:
    reply = handle({"local-epochs": 1}, context(modes="semi_honest"))
    assert reply.has_error()
    assert "policy-modes" in reply.error.reason


@pytest.mark.usefixtures("task_identity")
@pytest.mark.filterwarnings("ignore")
def test_the_handler_refuses_too_little_local_noise() -> None:
    reply = handle(LOCAL_DP, context(require_dp=True, min_noise_multiplier=1.0))
    assert reply.has_error()
    assert "policy-min-noise-multiplier" in reply.error.reason


@pytest.mark.usefixtures("task_identity")
@pytest.mark.filterwarnings("ignore")
def test_the_handler_trains_when_the_policy_allows() -> None:
    plain = handle({"local-epochs": 1}, context())
    assert not plain.has_error()
    assert "arrays" in plain.content
    private = handle(LOCAL_DP, context(require_dp=True, min_noise_multiplier=0.5))
    assert not private.has_error()
    assert private.content["metrics"]["epsilon"] > 0
