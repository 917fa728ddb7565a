"""Protocol-specific subclasses of the shared fedsec errors."""

from __future__ import annotations

from fedsec.errors import ProtocolError


class MessageFormatError(ProtocolError):
    """A message record has a missing, unknown, mistyped or malformed field."""


class StageError(ProtocolError):
    """A message arrives in the wrong stage, key set or round (incl. replays)."""
