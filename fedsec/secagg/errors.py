"""Protocol-specific subclasses of the shared fedsec errors."""

from __future__ import annotations

from fedsec.errors import AbortError, MaliciousServerError, ProtocolError


class MessageFormatError(ProtocolError):
    """A message record has a missing, unknown, mistyped or malformed field."""


class StageError(ProtocolError):
    """A message arrives in the wrong stage, key set or round (incl. replays)."""


class ServerReplayError(StageError, MaliciousServerError):
    """A client got a request out of stage order, for an old round or key set.

    An honest server never does this, so the client treats it as malicious.
    """


class ImplausibleSumError(AbortError):
    """The unmasked result cannot come from honest survivors; nothing is released.

    Raised when the recovered total weight exceeds ``survivors × max_weight``:
    a client revealed a crafted share, so the reconstructed masks and hence
    the whole sum are wrong.
    """
