"""One site's contribution to a round: train from the global model, measure it.

Shared by every mode: plain FedAvg replies with the trained weights; secure
aggregation and MPC hide the update ``trained − start`` instead. With local
DP-SGD the site checks the noise multiplier in use against its own policy
(node config, never the request) before it trains, whichever handler asked.
Heavy modules (torch, scikit-learn, pandas) are imported here, not by the
ClientApp module, so protocol-only messages do not pay for them; Opacus only
when the site trains with DP-SGD.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from flwr.app import ConfigRecord, Context

from clients.faults import maybe_poison
from clients.site_config import site_policy
from clients.site_data import request_site
from clients.training import train_locally
from fedsec.config import ClientSettings
from fedsec.flower.records import Weights

log = logging.getLogger("fedsec.client")
DP_STATE_KEY = "fedsec.dp"


@dataclass(frozen=True)
class LocalUpdate:
    """The global weights received, the weights to send, and public metrics."""

    start: Weights
    weights: Weights
    num_examples: int
    metrics: dict[str, float]


def local_update(
    start: Weights, config: ConfigRecord, settings: ClientSettings, context: Context
) -> LocalUpdate:
    """Train on the site's rows (DP-SGD if configured); apply injected poisoning.

    Raises
    ------
    PolicyError
        With local DP-SGD, if the noise multiplier in use is below the site's
        ``policy-min-noise-multiplier``.
    """
    site = request_site(config, context, settings)
    server_round = int(config.get("server-round", 0))
    metrics: dict[str, float] = {}
    if settings.dp.mode == "local_opacus":
        # Opacus only for DP-SGD: ~3 s of imports a fresh ClientApp process
        # (one per message in deployment) need not pay otherwise
        from clients.private_training import PrivateState, train_privately

        saved = context.state.get(DP_STATE_KEY)
        state = (
            PrivateState(bytes(saved["accountant"]), float(saved["noise-multiplier"]))
            if isinstance(saved, ConfigRecord)
            else PrivateState()
        )
        private = train_privately(
            start,
            site,
            settings,
            state,
            planned_rounds=int(config.get("num-server-rounds", 1)),
            policy=site_policy(context),
        )
        context.state[DP_STATE_KEY] = ConfigRecord(
            {
                "accountant": private.state.accountant or b"",
                "noise-multiplier": private.state.noise_multiplier,
            }
        )
        log.info("fedsec site: DP-SGD epsilon=%.3f so far", private.epsilon)
        result = private.local
        metrics["epsilon"] = private.epsilon
    else:
        result = train_locally(
            start,
            site,
            settings,
            proximal_mu=float(config.get("proximal-mu", 0.0)),
            # plain training has no noise to hide: reproducible from public values
            seed=settings.data.seed * 1000 + server_round,
        )
    metrics["train-loss"] = result.train_loss
    metrics["val-loss"] = result.val_loss
    if not math.isnan(result.val_accuracy):
        metrics["val-accuracy"] = result.val_accuracy
    weights = maybe_poison(context.node_config, settings.faults, start, result.weights)
    return LocalUpdate(start, weights, result.num_examples, metrics)
