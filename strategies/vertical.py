"""Vertical training driven over the Grid: PSI, sharing, training on shares.

The data holders hold different columns of the same records; the three MPC
compute parties train on secret shares (``docs/vertical.md``). The ServerApp
only relays:

1. ``query.mpc_hello`` finds the three compute parties;
2. ``query.vertical_psi_start`` finds the holders and collects their lists;
   ``k - 1`` rounds of ``query.vertical_psi_relay`` pass every list around the
   ring (in ``shares`` mode the last relay returns the tags only secret-shared
   and sealed to the parties); in ``intersection`` mode
   ``query.vertical_psi_finish`` gives every holder all final lists;
3. ``query.vertical_share``: each holder secret-shares its rows to the
   parties, sealed to each (the server cannot open them);
4. ``query.vertical_train`` to the three parties at once; they shuffle every
   holder's rows with its tags obliviously, open only the tags, keep the
   common rows, train and return the revealed model.

If any holder or party fails at any stage, the run stops there with one line
and nothing further is sent: no partial intersection or model is released.
The model is evaluated on the server's held-out test split (simulation).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np
from flwr.app import ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid

from fedsec.config import RunConfig
from fedsec.errors import AbortError, ConfigError
from fedsec.flower.exchange import send_and_collect
from fedsec.flower.mpc import message_type, new_session
from fedsec.flower.records import content_bytes, weights_to_record
from fedsec.flower.vertical import (
    NOT_A_HOLDER,
    PSI_FINISH,
    PSI_RELAY,
    PSI_START,
    SHARE,
    TRAIN,
    VERTICAL_RECORD,
)
from fedsec.models import EvalResult
from strategies.backends import wait_for_nodes
from strategies.loop import History, RoundRecord
from strategies.mpc_backend import PartyDirectory, discover_parties

log = logging.getLogger("fedsec")


class _Relay:
    """Sends one stage's messages and counts the bytes; every reply must succeed."""

    def __init__(self, grid: Grid, config: ConfigRecord, timeout: float) -> None:
        self.grid, self.config, self.timeout = grid, config, timeout
        self.up = self.down = 0

    def ask(self, action: str, requests: dict[int, dict[str, Any]]) -> dict[int, Any]:
        msgs = [
            Message(
                content=RecordDict(
                    {"config": self.config, VERTICAL_RECORD: ConfigRecord(content)}
                ),
                dst_node_id=node,
                message_type=message_type(action),
            )
            for node, content in requests.items()
        ]
        self.down += sum(content_bytes(m.content) for m in msgs)
        replies = {}
        for reply in send_and_collect(self.grid, msgs, timeout=self.timeout):
            node = reply.metadata.src_node_id
            if reply.has_error():
                raise AbortError(
                    f"{action}: node {node} failed ({reply.error.reason}); "
                    "the run stops, nothing more is released"
                )
            self.up += content_bytes(reply.content)
            replies[node] = reply.content[VERTICAL_RECORD]
        missing = sorted(set(requests) - set(replies))
        if missing:
            raise AbortError(f"{action}: no reply from node(s) {missing}; run stopped")
        return replies


def _psi(
    relay: _Relay, cfg: RunConfig, session: int, parties: PartyDirectory
) -> tuple[dict[int, int], list[Any]]:
    """Holders by index (node ids) and, by holder, the final list.

    In ``shares`` mode a final list is the last relay's three sealed packages
    of the tags (the server never sees a tag), else the tags themselves.
    """
    k = cfg.vertical.holders
    nodes = sorted(relay.grid.get_node_ids())
    started = relay.ask(PSI_START, {n: {"session": session} for n in nodes})
    holders: dict[int, int] = {}
    lists: dict[int, bytes] = {}
    for node, rec in started.items():
        h = int(rec["holder"])
        if h == NOT_A_HOLDER:
            continue
        if h in holders:
            raise ConfigError(f"two nodes claim to be data holder {h}")
        holders[h], lists[h] = node, bytes(rec["points"])
    if sorted(holders) != list(range(k)):
        raise ConfigError(
            f"vertical training needs holders 0..{k - 1}; found {sorted(holders)} "
            "(node config 'vertical-holder')"
        )
    keys = {
        "public-keys": list(parties.public_keys),
        "party-certificates": list(parties.certificates),
        "key-signatures": list(parties.key_signatures),
    }
    shares = cfg.vertical.psi == "shares"
    finals: dict[int, Any] = {}
    for hop in range(1, k):
        relays = {(o + hop) % k: o for o in range(k)}
        last = hop == k - 1
        got = relay.ask(
            PSI_RELAY,
            {
                holders[r]: {
                    "session": session,
                    "origin": o,
                    "hop": hop,
                    "points": lists[o],
                    **(keys if shares and last else {}),
                }
                for r, o in relays.items()
            },
        )
        if shares and last:
            finals = {o: list(got[holders[r]]["tags"]) for r, o in relays.items()}
        else:
            lists = {o: bytes(got[holders[r]]["points"]) for r, o in relays.items()}
    if not shares:
        finals = lists
    return holders, [finals[h] for h in range(k)]


def _evaluate(cfg: RunConfig, weights: np.ndarray) -> EvalResult:
    from fedsec.data.vertical import vertical_test_set

    x, y = vertical_test_set(cfg.data.task, cfg.data.test_fraction, cfg.data.seed)
    z = x @ weights[:-1] + weights[-1]
    if cfg.vertical.model == "linear":
        return EvalResult(float(np.mean((z - y) ** 2)), math.nan, len(y))
    p = np.clip(1.0 / (1.0 + np.exp(-z)), 1e-12, 1 - 1e-12)
    loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    return EvalResult(loss, float(np.mean((z > 0) == y)), len(y))


def run_vertical(grid: Grid, cfg: RunConfig) -> History:
    """Run one vertical training session over ``grid``; its history."""
    v = cfg.vertical
    started = time.perf_counter()
    # the parties and the holders (a node may be both)
    wait_for_nodes(
        grid, max(3, v.holders, cfg.strategy.available_nodes), cfg.round_timeout
    )
    config = ConfigRecord(cfg.client_mapping())  # type: ignore[arg-type]
    relay = _Relay(grid, config, cfg.round_timeout)
    parties, down, up = discover_parties(grid, config, cfg.round_timeout)
    relay.down += down
    relay.up += up
    session = new_session()
    holders, finals = _psi(relay, cfg, session, parties)
    size = None
    if v.psi == "intersection":
        got = relay.ask(
            PSI_FINISH,
            {n: {"session": session, "finals": finals} for n in holders.values()},
        )
        size = int(next(iter(got.values()))["size"])
    shared = relay.ask(
        SHARE,
        {
            n: {
                "session": session,
                "public-keys": list(parties.public_keys),
                "party-certificates": list(parties.certificates),
                "key-signatures": list(parties.key_signatures),
            }
            for n in holders.values()
        },
    )
    labels = shared[holders[v.label_holder]].get("labels")
    if labels is None:
        raise AbortError(f"holder {v.label_holder} sent no labels; run stopped")
    outcome = relay.ask(
        TRAIN, _train_requests(parties, holders, shared, labels, finals, cfg, session)
    )
    weights = [
        np.frombuffer(bytes(r["weights"]), dtype="<f8") for r in outcome.values()
    ]
    if any(not np.array_equal(weights[0], w) for w in weights):
        raise AbortError("the parties revealed different models; run stopped")
    result = _evaluate(cfg, weights[0])
    metrics = {
        "rows": float(next(iter(outcome.values()))["rows"]),
        "mpc_seconds": max(float(r["seconds"]) for r in outcome.values()),
        "mpc_bytes_between_parties": float(
            sum(int(r["bytes-between-parties"]) for r in outcome.values())
        ),
        "mpc_rounds": float(max(int(r["rounds"]) for r in outcome.values())),
    }
    if size is not None:
        metrics["intersection"] = float(size)
    if v.noise_multiplier > 0:
        from fedsec.dp.accounting import epsilon

        rows = int(metrics["rows"])
        metrics["epsilon"] = epsilon(
            v.train_terms().steps(rows),
            v.noise_multiplier,
            min(1.0, v.batch_size / rows),
            cfg.dp.delta,
            cfg.dp.accountant,
        )
    record = RoundRecord(
        1, result.accuracy, result.loss, time.perf_counter() - started,
        relay.up, relay.down, metrics,
    )  # fmt: skip
    log.info(
        "round 1/1 [vertical]: accuracy=%.4f loss=%.4f seconds=%.2f "
        "bytes_down=%d bytes_up=%d%s",
        record.accuracy, record.loss, record.seconds, record.bytes_down,
        record.bytes_up, "".join(f" {k}={x:g}" for k, x in sorted(metrics.items())),
    )  # fmt: skip
    arrays = weights_to_record({"weights": weights[0].astype(np.float32)})
    initial = _evaluate(cfg, np.zeros_like(weights[0]))
    return History(initial=initial, rounds=[record], arrays=arrays)


def _train_requests(
    parties: PartyDirectory,
    holders: dict[int, int],
    shared: dict[int, Any],
    labels: Any,
    finals: list[Any],
    cfg: RunConfig,
    session: int,
) -> dict[int, dict[str, Any]]:
    k = cfg.vertical.holders
    return {
        node: {
            "session": session,
            "features": [bytes(shared[holders[h]]["features"][i]) for h in range(k)],
            "labels": bytes(labels[i]),
            "label-holder": cfg.vertical.label_holder,
            "tags": [bytes(f[i]) for f in finals]
            if cfg.vertical.psi == "shares"
            else [],
            "public-keys": list(parties.public_keys),
            "addresses": list(parties.addresses),
        }
        for i, node in enumerate(parties.nodes)
    }
