"""How the MPC clip-and-sum travels in Flower messages (both sides agree).

- ``query.mpc_hello`` (once): every node answers whether it is compute party
  0, 1 or 2 (``-1`` otherwise), with the party's X25519 public key and the
  address its TLS listener will use.
- ``query.mpc_share`` (every round, to the training sites): the global model
  under ``"arrays"``, the training config under ``"config"`` and, under
  ``"mpc"``, the session (round) and the three public keys; the reply holds
  one AES-GCM package per party (the server relays them but cannot open them).
- ``query.mpc_compute`` (every round, to the three parties at once): a
  party's packages, the parties' addresses and the public clip-and-sum
  parameters; the reply is the party's additive output share.
"""

from __future__ import annotations

MPC_RECORD = "mpc"
HELLO = "mpc_hello"
SHARE = "mpc_share"
COMPUTE = "mpc_compute"
NOT_A_PARTY = -1


def message_type(action: str) -> str:
    """The Flower message type of an MPC action: ``query.<action>``."""
    return f"query.{action}"
