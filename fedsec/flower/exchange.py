"""Send messages over a Flower Grid and collect the replies as they arrive.

``Grid.send_and_receive`` returns only when every reply is in and sleeps a
fixed interval between pulls: 0.1 s in the simulation engine's
``InMemoryGrid`` and 3 s in the ``HttpGrid`` a ServerApp uses in deployment.
:func:`send_and_collect` pushes the same messages and pulls with a short,
growing interval instead (5 ms, ×1.5 per empty pull, at most 0.1 s, back to
5 ms after a reply), and hands each reply to a callback as soon as it is
pulled. Servers use it so that a reply is processed (e.g. a masked input
added to the running sum) while the others are still on their way, and so
that a short stage does not wait for a long poll.

Every backend (plain ones included) goes through this function, so
comparisons between them are fair.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from flwr.app import Message
from flwr.serverapp import Grid

FIRST_INTERVAL = 0.005
MAX_INTERVAL = float(__import__("os").environ.get("FEDSEC_MAXI", "0.1"))
GROWTH = 1.5

OnReply = Callable[[Message], None]


def send_and_collect(
    grid: Grid,
    messages: Iterable[Message],
    *,
    timeout: float | None,
    on_reply: OnReply | None = None,
    until: Callable[[], bool] | None = None,
) -> list[Message]:
    """Push ``messages``; pull replies until all arrived or ``timeout`` passed.

    Parameters
    ----------
    grid
        The ServerApp's Grid (any implementation).
    messages
        Requests, at most one per destination node.
    timeout
        Seconds to wait for the replies (``None``: wait for all of them).
        A node that has not replied by then is missing from the result.
    on_reply
        Called with each reply (error replies included) as it is pulled, in
        arrival order, before the next pull.
    until
        Checked after each pull that brought replies: once it returns true the
        exchange ends without waiting for the other replies (they are never
        pulled), e.g. when enough shares arrived to unmask.

    Returns
    -------
    list[Message]
        The replies in arrival order.
    """
    pending = set(grid.push_messages(messages))
    deadline = None if timeout is None else time.monotonic() + timeout
    interval = FIRST_INTERVAL
    replies: list[Message] = []
    while pending:
        pulled = list(grid.pull_messages(pending))
        for reply in pulled:
            pending.discard(reply.metadata.reply_to_message_id)
            replies.append(reply)
            if on_reply is not None:
                on_reply(reply)
        if not pending or (pulled and until is not None and until()):
            break
        interval = FIRST_INTERVAL if pulled else min(interval * GROWTH, MAX_INTERVAL)
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            interval = min(interval, left)
        time.sleep(interval)
    return replies


def reply_node(reply: Message, requests: Iterable[Message]) -> int:
    """The node a reply stands for.

    Its sender, except for the error reply the SuperLink makes itself when
    the destination went offline (its heartbeat lapsed, e.g. a SuperNode
    killed while it held the request): that one comes from the SuperLink's
    own node id, so the node is the destination of the request it answers.
    """
    for request in requests:
        if request.metadata.message_id == reply.metadata.reply_to_message_id:
            return int(request.metadata.dst_node_id)
    return int(reply.metadata.src_node_id)
