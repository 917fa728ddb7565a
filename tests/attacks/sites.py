"""Sites as a SuperNode runs them, driven by a malicious ServerApp's messages.

:class:`HandlerSite` holds a Flower ``Context`` with the site's own node
config and calls the real ClientApp handlers with the Flower ``Message`` a
ServerApp would send: the protocol request under ``"secagg"``, any run config
the attacker likes under ``"config"``. The update to mask is synthetic (no
training), so the attacks are about the protocol, not the data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from flwr.app import ConfigRecord, Context, Message, RecordDict

from clients import secagg_handlers as h
from fedsec.errors import AbortError
from fedsec.flower.secagg import DP_RECORD, PROTOCOL_RECORD, SITES_RECORD, message_type
from fedsec.secagg.messages import ClientMessage, ServerMessage, parse_client_message
from fedsec.secagg.stages import Stage


class Refused(Exception):
    """The site replied with a Flower error (its one-line reason)."""


@dataclass
class Run:
    """What a driven round left: the sites' refusals and the server's abort."""

    refusals: dict[int, str]
    aborted: AbortError | None


class HandlerSite:
    """One site: its node config, its node-local state, the real handlers.

    Parameters
    ----------
    node_id
        The SuperNode's node id.
    node_config
        What its operator passed with ``--node-config`` (policy, key folders).
    update
        The flat float32 update it masks, and its weight.
    """

    def __init__(
        self,
        node_id: int,
        node_config: Mapping[str, Any],
        update: np.ndarray,
        weight: int = 1,
    ) -> None:
        self.context = Context(
            run_id=1,
            node_id=node_id,
            node_config=dict(node_config),
            state=RecordDict(),
            run_config={},
        )
        self.update = update.astype(np.float32)
        self.weight = weight

    def ask(
        self,
        request: ServerMessage,
        run_config: Mapping[str, Any],
        *,
        sites: Mapping[int, str] | None = None,
        ddp: Mapping[str, Any] | None = None,
    ) -> ClientMessage:
        """Send ``request`` as a ServerApp would; return the parsed reply.

        Raises
        ------
        Refused
            With the site's one-line reason if it replied with an error.
        """
        content = RecordDict(
            {
                PROTOCOL_RECORD: ConfigRecord(request.to_record()),
                "config": ConfigRecord(dict(run_config)),
            }
        )
        if sites is not None:
            content[SITES_RECORD] = ConfigRecord(
                {"nodes": list(sites), "names": list(sites.values())}
            )
        if ddp is not None:
            content[DP_RECORD] = ConfigRecord(dict(ddp))
        msg = Message(
            content=content,
            dst_node_id=self.context.node_id,
            message_type=message_type(request.STAGE),
        )
        reply = self._handler(request.STAGE)(msg, self.context)
        if reply.has_error():
            raise Refused(reply.error.reason)
        return parse_client_message(dict(reply.content[PROTOCOL_RECORD]))

    def _handler(self, stage: Stage) -> h.Handler:
        if stage is Stage.MASKED_INPUT:
            return h.make_masked_input(self._update)
        return {
            Stage.ADVERTISE_KEYS: h.advertise_keys,
            Stage.SEED_REVEAL: h.seed_reveal,
            Stage.SHARE_KEYS: h.share_keys,
            Stage.CONSISTENCY_CHECK: h.consistency_check,
            Stage.UNMASK: h.unmask,
        }[stage]

    def _update(self, msg: Message, context: Context, settings: Any) -> h.Update:
        return h.Update(self.update, self.weight, {})


def run_protocol(
    server: Any,
    sites: Mapping[int, HandlerSite],
    run_config: Mapping[str, Any],
    *,
    rnd: int = 1,
    dim: int | None = None,
    ddp: Mapping[str, Any] | None = None,
    silent: Mapping[Stage, set[int]] | None = None,
    names: Mapping[int, str] | None = None,
) -> Run:
    """Drive set-up (if needed) and one round of ``server`` over handler sites.

    The server is fedsec's own (an honest one, or one a test tampers with);
    sites in ``silent[stage]`` do not answer that stage. Returns the sites'
    refusals and the abort, if any; the result is ``server.result()``.
    """
    silent = silent or {}
    refusals: dict[int, str] = {}
    dim = dim or next(iter(sites.values())).update.size

    def exchange(requests: Mapping[int, ServerMessage]) -> None:
        for node, req in requests.items():
            if node in silent.get(req.STAGE, set()):
                continue
            try:
                reply = sites[node].ask(
                    req,
                    run_config,
                    sites=names if req.STAGE is Stage.SHARE_KEYS else None,
                    ddp=ddp if req.STAGE is Stage.MASKED_INPUT else None,
                )
            except Refused as exc:
                refusals[node] = str(exc)
                continue
            server.handle(node, reply)

    try:
        if server.needs_setup():
            out: Mapping[int, ServerMessage] = server.begin_setup(list(sites))
            while out:
                exchange(out)
                out = server.advance()
        out = server.begin_round(rnd, dim)
        while out:
            exchange(out)
            out = server.advance()
    except AbortError as exc:
        return Run(refusals, exc)
    return Run(refusals, None)
