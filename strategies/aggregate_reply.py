"""The single reply a secure backend hands to a linear strategy.

A linear strategy (FedAvg, FedProx, FedAdam, ...) computes its new model from
the weighted average of the replies' arrays. Giving it one reply that holds
the securely computed average, weighted by the total weight, makes it compute
exactly what it would have computed from the individual replies, while the
individual updates never exist on the server.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from flwr.app import ArrayRecord, Message, MessageType, MetricRecord, RecordDict

from fedsec.flower.records import (
    flatten,
    record_to_weights,
    unflatten,
    weights_to_record,
)


def global_vector(
    messages: list[Message],
) -> tuple[npt.NDArray[np.float32], ArrayRecord]:
    """The flat global model the training requests carry, and its record."""
    arrays: ArrayRecord = messages[0].content["arrays"]
    return flatten(record_to_weights(arrays)), arrays


def aggregate_reply(
    like: ArrayRecord,
    average: npt.NDArray[np.floating],
    total_weight: float,
    metrics: dict[str, float] | None = None,
) -> Message:
    """A reply-shaped message carrying ``average`` with weight ``total_weight``."""
    weights = unflatten(np.asarray(average, dtype=np.float32), record_to_weights(like))
    content = RecordDict(
        {
            "arrays": weights_to_record(weights),
            "metrics": MetricRecord(
                {"num-examples": float(total_weight), **(metrics or {})}
            ),
        }
    )
    # dst 0 is never a SuperNode: the message only travels into the strategy
    return Message(content=content, dst_node_id=0, message_type=MessageType.TRAIN)
