"""How secure-aggregation messages travel in Flower messages (both sides agree).

A stage's request is a Flower message of type ``query.secagg_<stage>`` whose
content holds the protocol message as a ConfigRecord under ``"secagg"``
(built by the protocol's ``to_record`` and read back by its strict
``from_record``), the training config under ``"config"``, the global model
under ``"arrays"`` (masked-input stage only) and, for the active variant's
share-keys stage, the node → site-name map under ``"sites"``. With
distributed DP the masked-input request also carries the round's public
noise parameters and rotation seed under ``"ddp"``. A sparse graph adds the
``query.secagg_seed_reveal`` stage to key set-up; a masked-input reply may be
a share complaint instead of a masked input.
"""

from __future__ import annotations

from fedsec.secagg.stages import Stage

PROTOCOL_RECORD = "secagg"
SITES_RECORD = "sites"
SITE_RECORD = "site"
# distributed DP: the round's public noise parameters and rotation seed
DP_RECORD = "ddp"


def message_type(stage: Stage) -> str:
    """The Flower message type of a stage's request: ``query.secagg_<stage>``."""
    return f"query.secagg_{stage.value}"


def handler_action(stage: Stage) -> str:
    """The action a ClientApp registers with ``@app.query(action)``."""
    return f"secagg_{stage.value}"
