"""send_and_collect: replies handed over as they arrive, timeouts, errors.

The Grid here is scripted (each reply becomes pullable at a set time) so that
arrival order and timeouts are exact; the real engines run it in every
simulation and deployment test.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import pytest
from flwr.app import ConfigRecord, Error, Message, RecordDict
from flwr.serverapp import Grid

from fedsec.flower.exchange import send_and_collect

pytestmark = pytest.mark.usefixtures("task_identity")


class ScriptedGrid(Grid):
    """Node ``n`` replies ``delays[n]`` seconds after the push (None: never)."""

    def __init__(self, delays: dict[int, float | None], fail: set[int]) -> None:
        self.delays = delays
        self.fail = fail
        self.pushed: dict[str, tuple[Message, float]] = {}
        self.pulls = 0

    @property
    def run(self) -> Any:  # pragma: no cover - not used
        raise NotImplementedError

    def set_run(self, run_id: int) -> None:  # pragma: no cover - not used
        raise NotImplementedError

    def create_message(self, *args: Any, **kwargs: Any) -> Message:  # pragma: no cover
        raise NotImplementedError

    def get_node_ids(self) -> Iterable[int]:
        return list(self.delays)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        ids = []
        for i, msg in enumerate(messages):
            msg_id = f"m{len(self.pushed) + i}"
            msg.metadata.__dict__["_message_id"] = msg_id
            self.pushed[msg_id] = (msg, time.monotonic())
            ids.append(msg_id)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        self.pulls += 1
        now = time.monotonic()
        out = []
        for msg_id in list(message_ids):
            msg, pushed = self.pushed[msg_id]
            delay = self.delays[msg.metadata.dst_node_id]
            if delay is None or now < pushed + delay:
                continue
            node = msg.metadata.dst_node_id
            if node in self.fail:
                error = Error(code=0, reason=f"node {node} failed")
                reply = Message(error, reply_to=msg)
            else:
                content = RecordDict({"r": ConfigRecord({"node": node})})
                reply = Message(content, reply_to=msg)
            reply.metadata.__dict__["_src_node_id"] = node
            out.append(reply)
            del self.pushed[msg_id]
        return out

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:  # pragma: no cover - the point is not to use it
        raise AssertionError("send_and_collect must not call send_and_receive")


def _requests(nodes: Iterable[int]) -> list[Message]:
    return [
        Message(RecordDict(), dst_node_id=n, message_type="query.test") for n in nodes
    ]


def test_replies_are_handed_over_in_arrival_order() -> None:
    grid = ScriptedGrid({1: 0.06, 2: 0.0, 3: 0.03}, fail=set())
    seen: list[int] = []
    replies = send_and_collect(
        grid,
        _requests([1, 2, 3]),
        timeout=5.0,
        on_reply=lambda r: seen.append(int(r.content["r"]["node"])),
    )
    assert seen == [2, 3, 1]
    assert [int(r.content["r"]["node"]) for r in replies] == [2, 3, 1]


def test_error_replies_are_returned_and_handed_over() -> None:
    grid = ScriptedGrid({1: 0.0, 2: 0.01}, fail={2})
    seen: list[Message] = []
    replies = send_and_collect(
        grid, _requests([1, 2]), timeout=5.0, on_reply=seen.append
    )
    assert len(replies) == 2
    assert seen == replies
    assert [r.has_error() for r in replies] == [False, True]
    assert "node 2 failed" in replies[1].error.reason


def test_a_silent_node_is_missing_after_the_timeout() -> None:
    grid = ScriptedGrid({1: 0.0, 2: None}, fail=set())
    start = time.monotonic()
    replies = send_and_collect(grid, _requests([1, 2]), timeout=0.3)
    elapsed = time.monotonic() - start
    assert [r.metadata.src_node_id for r in replies] == [1]
    assert elapsed >= 0.3
    assert elapsed < 3.0  # it stops at the deadline, not after another long poll


def test_polling_backs_off_while_nothing_arrives() -> None:
    grid = ScriptedGrid({1: 0.5}, fail=set())
    send_and_collect(grid, _requests([1]), timeout=5.0)
    # 5 ms growing ×1.5 up to 100 ms: about 15 pulls in 0.5 s, not 100 (fixed
    # 5 ms) and not 1 (a single long sleep)
    assert 5 <= grid.pulls <= 40


@pytest.mark.parametrize("timeout", [None, 1.0])
def test_no_messages_returns_at_once(timeout: float | None) -> None:
    grid = ScriptedGrid({}, fail=set())
    assert send_and_collect(grid, [], timeout=timeout) == []
    assert grid.pulls == 0


def test_until_ends_the_exchange_without_the_remaining_replies() -> None:
    grid = ScriptedGrid({1: 0.0, 2: 0.02, 3: 2.0}, fail=set())
    seen: list[int] = []
    start = time.monotonic()
    replies = send_and_collect(
        grid,
        _requests([1, 2, 3]),
        timeout=10.0,
        on_reply=lambda r: seen.append(int(r.content["r"]["node"])),
        until=lambda: len(seen) >= 2,
    )
    assert seen == [1, 2]
    assert len(replies) == 2
    assert time.monotonic() - start < 1.5  # did not wait for node 3
