"""How vertical training travels in Flower messages (both sides agree).

All under the record ``"vertical"``; the run config under ``"config"``.

- ``query.mpc_hello`` (once, :mod:`fedsec.flower.mpc`): finds the three
  compute parties, their keys, attestations and addresses.
- ``query.vertical_psi_start``: every node answers whether it is a data
  holder (``holder`` = its index, ``-1`` otherwise) and, if so, its list
  ``H(x)^{k_i}`` (``points``) for the session.
- ``query.vertical_psi_relay`` (``k - 1`` rounds): ``origin``, ``hop`` and
  ``points``; the reply holds the raised ``points``, except at the last hop
  in ``shares`` mode: the request then also carries the parties' keys with
  their attestations and the reply holds ``tags``, the final tags
  secret-shared and sealed to each party (the server never sees a tag).
- ``query.vertical_psi_finish`` (``intersection`` mode): every final list
  (``finals``, indexed by holder); the reply holds the ``size``.
- ``query.vertical_share``: the parties' keys with their attestations; the
  reply holds the holder's ``features`` packages (one per party) and, at the
  label holder, its ``labels`` packages.
- ``query.vertical_train`` (to the three parties at once): every holder's
  package for this party, every list's sealed ``tags`` (``shares`` mode), the
  parties' addresses and keys; the reply holds the revealed ``weights`` and
  costs.
"""

from __future__ import annotations

VERTICAL_RECORD = "vertical"
PSI_START = "vertical_psi_start"
PSI_RELAY = "vertical_psi_relay"
PSI_FINISH = "vertical_psi_finish"
SHARE = "vertical_share"
TRAIN = "vertical_train"
NOT_A_HOLDER = -1


def schedule_seed(session: int) -> bytes:
    """The public seed of the batch schedule of a session."""
    return b"fedsec/vertical/schedule|" + session.to_bytes(8, "little")
