"""Central differential privacy with a trusted server (the reference for DP modes).

Each site trains and sends its model in the clear; the server clips every
update ``Δ_i = w_i − w`` to L2 norm ``C``, adds Gaussian noise ``z·C`` to the
sum from a cryptographic source (:func:`fedsec.dp.central.central_aggregate`)
and divides by the expected number of sampled sites. One round is a Gaussian
mechanism with sensitivity ``C``: ε(δ) is accounted over rounds with the
client sampling rate ``q``, by the same accountant as the distributed mode.
"""

from __future__ import annotations

import numpy as np
from flwr.app import Message
from flwr.serverapp import Grid

from fedsec.config import DPSettings
from fedsec.dp.accounting import epsilon
from fedsec.dp.central import central_aggregate
from fedsec.flower.exchange import send_and_collect
from fedsec.flower.records import content_bytes, flatten, record_to_weights
from strategies.aggregate_reply import aggregate_reply, global_vector
from strategies.backends import RoundOutcome, client_sample_rate


class CentralDPBackend:
    """Clip, sum and noise at the server; report ε after every round."""

    name = "central_dp"

    def __init__(self, dp: DPSettings) -> None:
        self.dp = dp
        self.rounds_done = 0

    def train_round(
        self, grid: Grid, server_round: int, messages: list[Message], timeout: float
    ) -> RoundOutcome:
        """Collect the updates, release only their clipped, noised average."""
        bytes_down = sum(content_bytes(m.content) for m in messages)
        replies = send_and_collect(grid, messages, timeout=timeout)
        ok = [r for r in replies if not r.has_error()]
        metrics = {
            "replies": float(len(ok)),
            "failures": float(len(replies) - len(ok)),
            "round_trips": 1.0,
        }
        if not ok or not messages:
            return RoundOutcome([], 0, bytes_down, metrics)
        start, like = global_vector(messages)
        deltas = np.stack(
            [flatten(record_to_weights(r.content["arrays"])) - start for r in ok]
        )
        noisy_delta = central_aggregate(
            deltas,
            clip_norm=self.dp.clip_norm,
            noise_multiplier=self.dp.noise_multiplier,
            denominator=float(len(messages)),  # expected count: q·N sampled sites
        )
        self.rounds_done += 1
        metrics["epsilon"] = epsilon(
            self.rounds_done,
            self.dp.noise_multiplier,
            client_sample_rate(grid, len(messages)),
            self.dp.delta,
            self.dp.accountant,
        )
        reply = aggregate_reply(like, start + noisy_delta, float(len(ok)))
        return RoundOutcome(
            replies=[reply],
            bytes_up=sum(content_bytes(r.content) for r in ok),
            bytes_down=bytes_down,
            metrics=metrics,
        )
