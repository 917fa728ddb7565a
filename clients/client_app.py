"""The fedsec ClientApp: Message-API handlers, one per message type.

``train`` and ``evaluate`` serve plain federated learning; the secure modes
register their own handlers (``query.secagg_*``, ``query.mpc_*``) on the same
app, so one ClientApp serves every mode.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from flwr.app import (
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp

from clients.errors import one_line_errors
from clients.faults import maybe_drop, maybe_poison
from fedsec.config import ClientSettings
from fedsec.flower.records import Weights, record_to_weights, weights_to_record

if TYPE_CHECKING:
    from clients.training import LocalResult
    from fedsec.data import SiteData

# In deployment every message starts a fresh ClientApp process: torch, pandas
# and scikit-learn (about 4 s of imports here) are imported inside the handlers
# that need them, so protocol-only messages (secure-aggregation unmasking, MPC
# relays) are answered without paying for them.

app = ClientApp()
log = logging.getLogger("fedsec.client")
DP_STATE_KEY = "fedsec.dp"


def _settings(msg: Message) -> ClientSettings:
    return ClientSettings.from_mapping(dict(msg.content["config"]))


@app.train()
@one_line_errors
def train(msg: Message, context: Context) -> Message:
    """Train the received global model on the site's rows; reply with the update."""
    from clients.site_data import load_site
    from clients.training import train_locally

    settings = _settings(msg)
    config = msg.content["config"]
    maybe_drop(context.node_config, settings.faults, "train")
    site = load_site(context.node_config, settings.data)
    server_round = int(config.get("server-round", 0))
    start = record_to_weights(msg.content["arrays"])
    seed = settings.data.seed * 1000 + server_round
    epsilon: float | None = None
    if settings.dp.mode == "local_opacus":
        result, epsilon = _train_dp_sgd(start, site, settings, context, config, seed)
    else:
        result = train_locally(
            start,
            site,
            settings,
            proximal_mu=float(config.get("proximal-mu", 0.0)),
            seed=seed,
        )
    weights = maybe_poison(context.node_config, settings.faults, start, result.weights)
    metrics = {
        "num-examples": result.num_examples,
        "train-loss": result.train_loss,
        "val-loss": result.val_loss,
    }
    if not math.isnan(result.val_accuracy):
        metrics["val-accuracy"] = result.val_accuracy
    if epsilon is not None:
        metrics["epsilon"] = epsilon
    content = RecordDict(
        {"arrays": weights_to_record(weights), "metrics": MetricRecord(metrics)}
    )
    return Message(content=content, reply_to=msg)


def _train_dp_sgd(
    start: Weights,
    site: SiteData,
    settings: ClientSettings,
    context: Context,
    config: ConfigRecord,
    seed: int,
) -> tuple[LocalResult, float]:
    """DP-SGD with the accountant kept in ``context.state`` between rounds."""
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
        seed=seed,
    )
    context.state[DP_STATE_KEY] = ConfigRecord(
        {
            "accountant": private.state.accountant or b"",
            "noise-multiplier": private.state.noise_multiplier,
        }
    )
    log.info("fedsec site: DP-SGD epsilon=%.3f so far", private.epsilon)
    return private.local, private.epsilon


@app.evaluate()
@one_line_errors
def evaluate_handler(msg: Message, context: Context) -> Message:
    """Evaluate the received global model on the site's validation rows."""
    from clients.site_data import load_site
    from clients.training import build_site_model
    from fedsec.models import evaluate, set_weights

    settings = _settings(msg)
    site = load_site(context.node_config, settings.data)
    model = build_site_model(settings, site)
    arrays: ArrayRecord = msg.content["arrays"]
    set_weights(model, record_to_weights(arrays))
    result = evaluate(model, site.val)
    metrics = {"num-examples": result.num_examples, "eval-loss": result.loss}
    if not math.isnan(result.accuracy):
        metrics["eval-accuracy"] = result.accuracy
    return Message(content=RecordDict({"metrics": MetricRecord(metrics)}), reply_to=msg)
