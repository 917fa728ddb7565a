"""Protocol-specific subclasses of the shared fedsec errors."""

from __future__ import annotations

from fedsec.errors import MaliciousServerError, ProtocolError


class MessageFormatError(ProtocolError):
    """A message record has a missing, unknown, mistyped or malformed field."""


class StageError(ProtocolError):
    """A message arrives in the wrong stage, key set or round (incl. replays)."""


class ServerReplayError(StageError, MaliciousServerError):
    """A client got a request out of stage order, for an old round or key set.

    An honest server never does this, so the client treats it as malicious.
    """
