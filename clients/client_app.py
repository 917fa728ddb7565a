"""The fedsec ClientApp: Message-API handlers, one per message type.

``train`` and ``evaluate`` serve plain federated learning (and central DP);
secure aggregation (``query.secagg_*``), MPC (``query.mpc_*``), the
federation's statistics (``query.analytics_*``) and vertical training
(``query.vertical_*``) register their handlers on the same app, so one
ClientApp serves every mode.

``train`` sends the site's model in the clear, so the site first checks its
own policy (node config, never the request): it must take part in ``plain``
mode, and unless it trains with local DP-SGD (whose noise multiplier
:func:`clients.local_update.local_update` checks) its policy must not require
DP (``policy-require-dp``; central DP's noise is the server's, not the site's).

In deployment every message starts a fresh ClientApp process: torch, pandas
and scikit-learn (about 4 s of imports here) are imported inside the handlers
that need them, so protocol-only messages (secure-aggregation unmasking, MPC
hello) are answered without paying for them.
"""

from __future__ import annotations

import math

from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from clients import (
    analytics_handlers,
    mpc_handlers,
    secagg_handlers,
    vertical_handlers,
)
from clients.errors import one_line_errors
from clients.faults import maybe_drop
from clients.site_config import site_policy
from fedsec.config import ClientSettings
from fedsec.flower.records import record_to_weights, weights_to_record

app = ClientApp()


def _settings(msg: Message) -> ClientSettings:
    return ClientSettings.from_mapping(dict(msg.content["config"]))


@app.train()
@one_line_errors
def train(msg: Message, context: Context) -> Message:
    """Train the received global model on the site's rows; reply with the weights.

    Refused with one line (``PolicyError``) when the site's policy does not
    take part in ``plain`` mode, or requires DP and the run has no local DP-SGD.
    """
    from clients.local_update import local_update

    settings = _settings(msg)
    policy = site_policy(context)
    policy.require_mode("plain")
    if settings.dp.mode != "local_opacus":
        policy.require_dp_noise(None)
    maybe_drop(context.node_config, settings.faults, "train")
    update = local_update(
        record_to_weights(msg.content["arrays"]),
        msg.content["config"],
        settings,
        context,
    )
    metrics = MetricRecord({"num-examples": update.num_examples, **update.metrics})
    content = RecordDict(
        {"arrays": weights_to_record(update.weights), "metrics": metrics}
    )
    return Message(content=content, reply_to=msg)


@app.evaluate()
@one_line_errors
def evaluate_handler(msg: Message, context: Context) -> Message:
    """Evaluate the received global model on the site's validation rows."""
    from clients.site_data import request_site
    from clients.training import build_site_model
    from fedsec.models import evaluate, set_weights

    settings = _settings(msg)
    site = request_site(msg.content["config"], context, settings)
    model = build_site_model(settings, site)
    arrays: ArrayRecord = msg.content["arrays"]
    set_weights(model, record_to_weights(arrays))
    result = evaluate(model, site.val)
    metrics = {"num-examples": result.num_examples, "eval-loss": result.loss}
    if not math.isnan(result.accuracy):
        metrics["eval-accuracy"] = result.accuracy
    return Message(content=RecordDict({"metrics": MetricRecord(metrics)}), reply_to=msg)


secagg_handlers.register(app)
mpc_handlers.register(app)
analytics_handlers.register(app)
vertical_handlers.register(app)
