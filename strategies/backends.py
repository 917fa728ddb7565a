"""How one training round's updates reach the strategy.

The round loop (:mod:`strategies.loop`) asks the strategy which nodes train
and with what (``configure_train``), hands those messages to an
:class:`AggregationBackend`, and gives what the backend returns to the
strategy's ``aggregate_train``.

- :class:`PlainBackend` sends the messages and returns every reply: plain
  federated learning, the server sees each update.
- Secure backends (secure aggregation, MPC) run their protocol over the Grid
  and return a single synthetic reply that carries the securely computed
  weighted average with the total weight as ``num-examples``. A linear
  strategy (FedAvg, FedProx, FedAdam, ...) then computes exactly what it
  would have computed from the individual replies.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Protocol

from flwr.app import Message
from flwr.serverapp import Grid

from fedsec.errors import AbortError
from fedsec.flower.exchange import send_and_collect
from fedsec.flower.records import content_bytes

_log = logging.getLogger("fedsec")


@dataclass
class RoundOutcome:
    """What a backend produced for one round.

    ``replies`` go to ``strategy.aggregate_train``; an empty list means the
    round produced no aggregate (the global model stays as it was).
    """

    replies: list[Message]
    bytes_up: int
    bytes_down: int
    metrics: dict[str, float] = field(default_factory=dict)


class AggregationBackend(Protocol):
    """Drives one training round over the Grid."""

    name: str

    def train_round(
        self, grid: Grid, server_round: int, messages: list[Message], timeout: float
    ) -> RoundOutcome:
        """Send the training requests and return what the strategy aggregates."""
        ...


class PlainBackend:
    """Plain federated learning: every update travels in the clear."""

    name = "plain"

    def train_round(
        self, grid: Grid, server_round: int, messages: list[Message], timeout: float
    ) -> RoundOutcome:
        """Send the requests, wait for the replies, return them all."""
        bytes_down = sum(content_bytes(m.content) for m in messages)
        replies = send_and_collect(grid, messages, timeout=timeout)
        ok = [r for r in replies if not r.has_error()]
        metrics = {
            "replies": float(len(ok)),
            "failures": float(len(replies) - len(ok)),
            "round_trips": 1.0,
        }
        epsilon = max_epsilon(ok)
        if epsilon is not None:
            metrics["epsilon"] = epsilon
        return RoundOutcome(
            replies=replies,
            bytes_up=sum(content_bytes(r.content) for r in ok),
            bytes_down=bytes_down,
            metrics=metrics,
        )


def max_epsilon(replies: list[Message]) -> float | None:
    """The largest ε(δ) the sites reported, or ``None`` if none did.

    The released model is only as private as its least private site, so the
    server logs the maximum.
    """
    values = [
        float(r.content["metrics"]["epsilon"])
        for r in replies
        if "metrics" in r.content and "epsilon" in r.content["metrics"]
    ]
    return max(values) if values else None


def wait_for_nodes(grid: Grid, least: int, timeout: float) -> int:
    """Wait until ``least`` nodes are connected; how many are.

    SuperNodes join at their own pace, and even the simulation engine
    registers its nodes one by one while the ServerApp already runs: a mode
    that looked only once could start with a part of the federation (and
    account a smaller sampling rate). Logs the count every 10 s while waiting.

    Raises
    ------
    AbortError
        If fewer than ``least`` are connected after ``timeout`` seconds.
    """
    started = time.monotonic()
    said = started
    while (connected := len(list(grid.get_node_ids()))) < least:
        now = time.monotonic()
        if now - started > timeout:
            raise AbortError(
                f"{connected} of the {least} sites needed are connected after "
                f"{timeout:g} s (min-nodes, min-available-nodes)"
            )
        if now - said >= 10.0:
            _log.info("waiting for sites: %d of %d connected", connected, least)
            said = now
        time.sleep(0.05)
    return connected


def client_sample_rate(grid: Grid, sampled: int) -> float:
    """The share of the federation's nodes sampled this round (for accounting)."""
    return sampled / max(len(list(grid.get_node_ids())), sampled)
