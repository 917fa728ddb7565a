"""Secure aggregation (Bonawitz et al., CCS 2017; SecAgg+ graph of Bell et al.,
CCS 2020), sans-I/O: typed messages and client/server state machines.

See ``docs/secagg.md`` for the protocol, threat models and how to drive it.
"""

from fedsec.secagg.client import SecAggClient
from fedsec.secagg.config import GraphKind, SecAggConfig, Variant
from fedsec.secagg.errors import MessageFormatError, ServerReplayError, StageError
from fedsec.secagg.messages import (
    ClientMessage,
    ServerMessage,
    parse_client_message,
    parse_server_message,
)
from fedsec.secagg.server import SecAggServer
from fedsec.secagg.server_state import AggregateResult, StageMetrics
from fedsec.secagg.stages import Stage

__all__ = [
    "AggregateResult",
    "ClientMessage",
    "GraphKind",
    "MessageFormatError",
    "SecAggClient",
    "SecAggConfig",
    "SecAggServer",
    "ServerMessage",
    "ServerReplayError",
    "Stage",
    "StageError",
    "StageMetrics",
    "Variant",
    "parse_client_message",
    "parse_server_message",
]
