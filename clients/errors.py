"""Turn a site's expected failures into one-line error replies.

A bad data file, a bad config value or a refused protocol message is an
operational fact, not a bug: the site logs one line and replies with a Flower
error whose reason is that same line (never secret material, see
:mod:`fedsec.errors`). The server logs it per node and carries on with the
other sites. Unexpected exceptions still propagate with their traceback.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from flwr.app import Context, Error, Message
from flwr.common.constant import ErrorCode

from fedsec.errors import FedsecError

log = logging.getLogger("fedsec.client")

Handler = Callable[[Message, Context], Message]


def one_line_errors(handler: Handler) -> Handler:
    """Decorate a ClientApp handler so a :class:`FedsecError` becomes an error reply."""

    @functools.wraps(handler)
    def wrapped(msg: Message, context: Context) -> Message:
        try:
            return handler(msg, context)
        except FedsecError as exc:
            reason = f"{type(exc).__name__}: {exc}"
            log.error("fedsec site: %s", reason)
            return Message(
                Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=reason),
                reply_to=msg,
            )

    return wrapped
