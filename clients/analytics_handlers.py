"""Statistics handlers of the ClientApp: a site's integers, masked or in the clear.

``query.analytics_masked_input`` is the masked-input stage of secure
aggregation with a statistics vector in place of a model update: the site
reads its table (checked against the request's schema, or its pinned one),
computes its integers (:func:`fedsec.analytics.local.site_quantities`), adds
its own discrete noise when the request asks for distributed DP, writes them
as digits in the ring (:mod:`fedsec.analytics.digits`) and masks them with
:meth:`~fedsec.secagg.client.SecAggClient.masked_ring_input`. Key set-up and
unmasking are the ``query.secagg_*`` handlers of :mod:`clients.secagg_handlers`.

The site's policy applies as in training: its modes and ``min-sites`` for
the key set (checked by the protocol client), the noise of the round before
it masks and again, for the survivors, before it unmasks, where it also
refuses a sum over fewer than ``policy-min-sites`` sites.
``query.analytics_plain`` answers with the integers in the clear, only if the
site's policy takes part in ``plain`` mode and does not require DP.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp

from clients import secagg_handlers
from clients.errors import one_line_errors
from clients.faults import maybe_drop
from clients.site_config import node_config, site_policy
from fedsec.analytics.digits import DigitLayout
from fedsec.analytics.noise import StatsNoise, magnitudes
from fedsec.config import ClientSettings
from fedsec.errors import MaliciousServerError
from fedsec.flower.analytics import (
    ANALYTICS_RECORD,
    MASKED_ACTION,
    PLAIN_ACTION,
    STATISTICS_RECORD,
    AnalyticsRequest,
)
from fedsec.policy import SitePolicy
from fedsec.secagg.messages import MaskedInputRequest
from fedsec.secagg.stages import Stage

if TYPE_CHECKING:
    from fedsec.analytics.layout import Layout


def _quantities(
    msg: Message, context: Context, settings: ClientSettings
) -> tuple[Layout, npt.NDArray[np.int64]]:
    """The site's table, checked, as the schema's integers (pandas imported here)."""
    from clients.site_data import request_schema, site_table
    from fedsec.analytics.layout import Layout
    from fedsec.analytics.local import site_quantities

    config = msg.content["config"]
    node = node_config(context)
    schema = request_schema(config, node, settings.data)
    layout = Layout.of(
        schema, settings.analytics.frac_bits, settings.analytics.max_rows
    )
    table = site_table(node, settings.data, schema)
    return layout, site_quantities(table, layout)


def _check_noise(
    settings: ClientSettings, noise: StatsNoise, participants: int, policy: SitePolicy
) -> None:
    """The round's noise against the site's policy, before anything is masked."""
    if not noise.enabled:
        if settings.dp.mode == "distributed":
            # an honest server never drops the noise the run config asks for
            raise MaliciousServerError(
                "distributed DP is on but the statistics request carries no noise",
                stage=Stage.MASKED_INPUT.value,
            )
        policy.require_dp_noise(None)
        return
    policy.require_dp_noise(noise.effective(participants - policy.colluders))


@one_line_errors
def masked_statistics(msg: Message, context: Context) -> Message:
    """Mask the site's (noised) statistics as digits in the ring."""
    settings, client, record, policy = secagg_handlers.prepare(
        msg, context, Stage.MASKED_INPUT
    )
    request = MaskedInputRequest.from_record(record)
    ask = AnalyticsRequest.from_config(dict(msg.content[ANALYTICS_RECORD]))
    if ask.bits != client.s.config.bits or ask.summands < len(request.participants):
        raise MaliciousServerError(
            "statistics request does not match the round (bits or summands)",
            stage=Stage.MASKED_INPUT.value,
        )
    _check_noise(settings, ask.noise, len(request.participants), policy)
    layout, values = _quantities(msg, context, settings)
    digits = DigitLayout.of(magnitudes(layout, ask.noise), ask.bits, ask.summands)
    if digits.dim != request.dim:
        raise MaliciousServerError(
            f"the round asks for {request.dim} values, the schema's statistics "
            f"take {digits.dim}",
            stage=Stage.MASKED_INPUT.value,
        )
    ring = digits.encode(values + ask.noise.sample(layout))
    context.state.pop(secagg_handlers.DDP_STATE_KEY, None)
    context.state[secagg_handlers.STATS_STATE_KEY] = ConfigRecord(ask.noise.to_config())
    out = client.masked_ring_input(request, ring, 1)
    return secagg_handlers.reply(msg, context, client, out)


@one_line_errors
def plain_statistics(msg: Message, context: Context) -> Message:
    """Reply with the site's integers in the clear (plain mode)."""
    settings = ClientSettings.from_mapping(dict(msg.content["config"]))
    policy = site_policy(context)
    policy.require_mode("plain")
    policy.require_dp_noise(None)
    maybe_drop(context.node_config, settings.faults, Stage.MASKED_INPUT.value)
    _, values = _quantities(msg, context, settings)
    content = RecordDict(
        {STATISTICS_RECORD: ConfigRecord({"values": [int(v) for v in values]})}
    )
    return Message(content=content, reply_to=msg)


def register(app: ClientApp) -> None:
    """Register the two statistics handlers on ``app``."""
    app.query(MASKED_ACTION)(masked_statistics)
    app.query(PLAIN_ACTION)(plain_statistics)
