"""Typed errors shared by every fedsec layer.

Every error carries the protocol stage and the node id it concerns, when known,
and never any secret material: messages are built from public facts only
(stage names, node ids, counts, lengths).
"""

from __future__ import annotations


class FedsecError(Exception):
    """Base class of every error raised by fedsec."""

    def __init__(
        self, message: str, *, stage: str | None = None, node_id: int | None = None
    ) -> None:
        self.stage = stage
        self.node_id = node_id
        where = []
        if stage is not None:
            where.append(f"stage={stage}")
        if node_id is not None:
            where.append(f"node={node_id}")
        prefix = f"[{' '.join(where)}] " if where else ""
        super().__init__(prefix + message)
        self.reason = message


class ConfigError(FedsecError):
    """A configuration value is missing, of the wrong type or out of range."""


class DataError(FedsecError):
    """A data file or data set cannot be used (missing, empty, malformed)."""


class SchemaError(ConfigError):
    """A federation schema cannot be used (unreadable, malformed, inconsistent)."""


class CryptoError(FedsecError):
    """A cryptographic check failed (bad tag, bad signature, bad key)."""


class ProtocolError(FedsecError):
    """A protocol message is malformed or arrives in the wrong stage or round."""


class MaliciousServerError(ProtocolError):
    """The server asked for something an honest server never asks for.

    Raised by clients when the honest-client checks fail (a peer listed both as
    survivor and as dropout, an unknown node id, a survivor set below the
    threshold, a swapped or unsigned public key, a replayed round).
    """


class AbortError(FedsecError):
    """A protocol round cannot complete (too few survivors); nothing was revealed."""


class PrivacyBudgetExhausted(FedsecError):
    """A differential-privacy budget is spent; the party stops training."""


class PolicyError(FedsecError):
    """A request is weaker than the site's own policy; the site refuses it.

    The message names the policy key, the site's value and what was asked, in
    one line, so that the server's log says which site refused what and why.
    """

    def __init__(
        self,
        key: str,
        value: object,
        asked: object,
        *,
        stage: str | None = None,
        node_id: int | None = None,
    ) -> None:
        self.key = key
        self.value = value
        self.asked = asked
        super().__init__(
            f"site policy policy-{key}={value} refuses {asked}",
            stage=stage,
            node_id=node_id,
        )
