"""Injected failures for experiments and tests (``faults-*`` run-config keys).

A dropping site raises :class:`InjectedDropout` at the named stage; the
handler turns it into an error reply, which the server treats exactly like a
site that went silent. A poisoning site scales its model update. A corrupting
site sends garbage share ciphertexts in secure-aggregation set-up, signed with
its own key in the active variant: a malicious site, not a broken network.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from fedsec.config import FaultSettings
from fedsec.crypto import signatures
from fedsec.errors import FedsecError
from fedsec.flower.records import Weights
from fedsec.secagg.keyschedule import share_statement
from fedsec.secagg.messages import ShareKeys


class InjectedDropout(FedsecError):
    """This site was configured to drop out at this stage."""


def partition_of(node_config: Mapping[str, Any]) -> int | None:
    """The site's partition id in simulation, ``None`` in deployment."""
    value = node_config.get("partition-id")
    return None if value is None else int(value)


def maybe_drop(
    node_config: Mapping[str, Any], faults: FaultSettings, stage: str
) -> None:
    """Raise :class:`InjectedDropout` if this site drops at ``stage``."""
    pid = partition_of(node_config)
    if pid is not None and faults.drops().get(pid) == stage:
        raise InjectedDropout(f"injected dropout of partition {pid}", stage=stage)


def maybe_poison(
    node_config: Mapping[str, Any],
    faults: FaultSettings,
    start: Weights,
    trained: Weights,
) -> Weights:
    """A poisoning site sends ``start + scale · (trained − start)``."""
    pid = partition_of(node_config)
    if pid is None or pid not in faults.poisoned():
        return trained
    scale = np.float32(faults.poison_scale)
    return type(trained)(
        (k, start[k] + scale * (v - start[k])) for k, v in trained.items()
    )


def maybe_corrupt_shares(
    node_config: Mapping[str, Any],
    faults: FaultSettings,
    out: ShareKeys,
    node_id: int,
    signing_key: bytes | None,
) -> ShareKeys:
    """A corrupting site replaces its share ciphertexts with random bytes.

    With a signing key (active variant) it signs the garbage, as a malicious
    site would: its signatures are what prove it sent it.
    """
    pid = partition_of(node_config)
    if pid is None or pid not in faults.corrupting():
        return out
    blobs = tuple(os.urandom(len(b)) for b in out.ciphertexts)
    sigs: tuple[bytes, ...] = ()
    if signing_key is not None and out.signatures:
        sigs = tuple(
            signatures.sign(signing_key, share_statement(out.key_set, node_id, v, b))
            for v, b in zip(out.recipients, blobs, strict=True)
        )
    return ShareKeys(out.key_set, out.recipients, blobs, sigs)
