"""Three-party MPC on replicated secret shares over Z_2^64, and clip-and-sum.

Araki et al. (CCS 2016) and ABY3 (Mohassel and Rindal, CCS 2018); semi-honest
security with an honest majority. See ``docs/mpc.md``. Never imports Flower.
"""

from fedsec.mpc.channel import Channel, ChannelStats
from fedsec.mpc.client import ClientInputs, ShareBatch, client_share, open_client_share
from fedsec.mpc.clip_and_sum import (
    ClipSumResult,
    OutputShare,
    clip_and_sum,
    combine_outputs,
)
from fedsec.mpc.inproc import InProcessNetwork
from fedsec.mpc.keys import PartyKeys, generate_party_keys
from fedsec.mpc.origin import Origin, authenticate, sign_packages
from fedsec.mpc.params import ClipSumConfig, require_terms
from fedsec.mpc.party import Party, PartyReport, SimulatedParties, simulate_clip_and_sum
from fedsec.mpc.ring import FixedPoint
from fedsec.mpc.runtime import Runtime
from fedsec.mpc.sessions import FileSessionLog, MemorySessionLog, SessionLog

__all__ = [
    "Channel",
    "ChannelStats",
    "ClientInputs",
    "ClipSumConfig",
    "ClipSumResult",
    "FileSessionLog",
    "FixedPoint",
    "InProcessNetwork",
    "MemorySessionLog",
    "Origin",
    "OutputShare",
    "Party",
    "PartyKeys",
    "PartyReport",
    "Runtime",
    "SessionLog",
    "ShareBatch",
    "SimulatedParties",
    "authenticate",
    "client_share",
    "clip_and_sum",
    "combine_outputs",
    "generate_party_keys",
    "open_client_share",
    "require_terms",
    "sign_packages",
    "simulate_clip_and_sum",
]
