"""The binary client-state encoding: exact round trips, strict refusal, size."""

from __future__ import annotations

import base64
import contextlib
import struct
import tracemalloc
from dataclasses import fields, replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedsec.secagg.client_state import ClientState, dump_state, load_state
from fedsec.secagg.config import GraphKind, SecAggConfig, Variant
from fedsec.secagg.errors import MessageFormatError
from fedsec.secagg.peers import PeerState
from fedsec.secagg.stages import Stage
from tests.secagg.util import federation, make_updates

U64_MAX = 2**64 - 1
I64_MIN, I64_MAX = -(2**63), 2**63 - 1
PK, MASKS, SHARE = b"P" * 32, b"M" * 160, b"S" * 48


def _mid_protocol_state(n: int) -> ClientState:
    """A client's state after one full round of an active, complete federation."""
    config = SecAggConfig(
        variant=Variant.ACTIVE, graph=GraphKind.COMPLETE, threshold=0.6, max_weight=4
    )
    fed = federation(config, n, wire=False)
    fed.setup()
    updates, weights = make_updates(list(fed.node_ids))
    fed.round(1, updates, weights)
    return next(iter(fed.clients.values())).s


@pytest.fixture(scope="module")
def small_state() -> ClientState:
    return _mid_protocol_state(5)


@pytest.fixture(scope="module")
def large_state() -> ClientState:
    return _mid_protocol_state(50)


def _full_state() -> ClientState:
    """A hand-built state with every field away from its default."""
    config = SecAggConfig(
        variant=Variant.ACTIVE,
        graph=GraphKind.SPARSE,
        degree=6,
        threshold=0.75,
        bits=31,
        clip=0.125,
        max_weight=2**32 - 1,
        rounds_per_key_set=1000,
        graph_seed=b"seed\x00\xff",
    )
    return ClientState(
        node_id=U64_MAX,
        config=config,
        signing_key=b"k" * 32,
        verify_keys={U64_MAX: b"v" * 32, 0: b"w" * 32, 7: b""},
        stage=Stage.CONSISTENCY_CHECK,
        key_set=I64_MAX,
        nodes=(U64_MAX, 0, 7, 3),
        neighbours=(0, 7),
        threshold=3,
        cipher_sk=b"c" * 32,
        mask_sks=[b"m1" * 16, b"", b"m3" * 16],
        seeds=[b"s1" * 16, b"s2" * 16],
        own_advert=(PK, MASKS),
        graph_nonce=b"n" * 32,
        commitments_digest=b"d" * 32,
        peers={
            7: PeerState(PK, MASKS, SHARE, {0: 1, I64_MIN: 0, 5: -1}),
            0: PeerState(b"", b"", None, {}),
            U64_MAX: PeerState(PK, b"", b"", {3: 0}),
        },
        round=I64_MIN,
        slot=-1,
        participants=(7, 0),
        survivors=(0,),
        bytes_sent={"unmask": 12, "advertise_keys": 0, "ünïcode ✓": I64_MAX},
    )


def _assert_same(again: ClientState, state: ClientState) -> None:
    """Equal, with the same types and the same order of every collection."""
    assert again == state
    for f in fields(ClientState):
        mine, theirs = getattr(again, f.name), getattr(state, f.name)
        assert type(mine) is type(theirs), f.name
        if isinstance(mine, dict):
            assert list(mine) == list(theirs), f.name
    for tup in (again.nodes, again.neighbours, again.participants, again.survivors):
        assert all(type(x) is int for x in tup)
    for node, peer in again.peers.items():
        assert list(peer.revealed) == list(state.peers[node].revealed)
    assert again.stage is state.stage
    assert again.config.variant is state.config.variant
    assert again.config.graph is state.config.graph


def _refused(data: object) -> None:
    with pytest.raises(MessageFormatError, match=r"^malformed client state$"):
        load_state(data)  # type: ignore[arg-type]


# ----------------------------------------------------------------- round trips
def test_encoding_covers_every_field() -> None:
    # A new field needs a new version of the encoding: this is the reminder.
    assert [f.name for f in fields(ClientState)] == [
        "node_id", "config", "signing_key", "verify_keys", "stage", "key_set",
        "nodes", "neighbours", "threshold", "cipher_sk", "mask_sks", "seeds",
        "own_advert", "graph_nonce", "commitments_digest", "peers", "round",
        "slot", "participants", "survivors",
        "bytes_sent",
    ]  # fmt: skip
    assert [f.name for f in fields(SecAggConfig)] == [
        "variant", "graph", "degree", "threshold", "bits", "clip", "max_weight",
        "rounds_per_key_set", "graph_seed",
    ]  # fmt: skip
    assert [f.name for f in fields(PeerState)] == [
        "cipher_pk", "mask_pks", "share", "revealed",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"signing_key": None},
        {"verify_keys": {}, "peers": {}, "bytes_sent": {}, "mask_sks": []},
        {"nodes": (), "neighbours": (), "participants": (), "survivors": ()},
        {"config": SecAggConfig()},
        {"config": SecAggConfig(graph=GraphKind.SPARSE, degree=None)},
        {"stage": Stage.IDLE, "key_set": -1, "round": -1, "slot": -1},
    ],
)
def test_hand_built_state_round_trips(variant: dict[str, object]) -> None:
    state = replace(_full_state(), **variant)
    data = dump_state(state)
    again = load_state(data)
    _assert_same(again, state)
    assert dump_state(again) == data


def test_mid_protocol_state_round_trips(large_state: ClientState) -> None:
    assert large_state.stage is Stage.UNMASK
    assert any(p.share is not None for p in large_state.peers.values())
    assert any(p.revealed for p in large_state.peers.values())
    data = dump_state(large_state)
    _assert_same(load_state(data), large_state)


_ids = st.integers(0, U64_MAX)
_i64 = st.integers(I64_MIN, I64_MAX)
_blob = st.binary(max_size=48)
_id_tuples = st.lists(_ids, max_size=12).map(tuple)
_configs = st.builds(
    SecAggConfig,
    variant=st.sampled_from(Variant),
    graph=st.sampled_from(GraphKind),
    degree=st.none() | st.integers(1, 500).map(lambda k: 2 * k),
    threshold=st.floats(0.51, 1.0),
    bits=st.integers(2, 32),
    clip=st.floats(1e-9, 1e9),
    max_weight=st.integers(1, 2**32 - 1),
    rounds_per_key_set=st.integers(1, 1000),
    graph_seed=_blob,
)
_peers = st.builds(
    PeerState,
    cipher_pk=_blob,
    mask_pks=_blob,
    share=st.none() | _blob,
    revealed=st.dictionaries(_i64, _i64, max_size=4),
)
_states = st.builds(
    ClientState,
    node_id=_ids,
    config=_configs,
    signing_key=st.none() | _blob,
    verify_keys=st.dictionaries(_ids, _blob, max_size=6),
    stage=st.sampled_from(Stage),
    key_set=_i64,
    nodes=_id_tuples,
    neighbours=_id_tuples,
    threshold=_i64,
    cipher_sk=_blob,
    mask_sks=st.lists(_blob, max_size=4),
    seeds=st.lists(_blob, max_size=4),
    own_advert=st.tuples(_blob, _blob),
    graph_nonce=_blob,
    commitments_digest=_blob,
    peers=st.dictionaries(_ids, _peers, max_size=5),
    round=_i64,
    slot=_i64,
    participants=_id_tuples,
    survivors=_id_tuples,
    bytes_sent=st.dictionaries(st.text(max_size=16), _i64, max_size=5),
)


@settings(max_examples=150, deadline=None)
@given(_states)
def test_any_state_round_trips(state: ClientState) -> None:
    data = dump_state(state)
    again = load_state(data)
    _assert_same(again, state)
    assert dump_state(again) == data


def test_out_of_range_field_is_a_value_error_without_the_secret() -> None:
    state = replace(_full_state(), node_id=-1)
    with pytest.raises(ValueError, match="out of range") as info:
        dump_state(state)
    assert "kkkk" not in str(info.value)


# -------------------------------------------------------------------- refusal
def test_every_truncation_is_refused(small_state: ClientState) -> None:
    data = dump_state(small_state)
    for end in range(len(data)):
        _refused(data[:end])


@pytest.mark.parametrize("tail", [b"\x00", b"garbage", b"\x00" * 64])
def test_trailing_bytes_are_refused(small_state: ClientState, tail: bytes) -> None:
    _refused(dump_state(small_state) + tail)


@pytest.mark.parametrize("version", [0, 1, 2, 255])
def test_wrong_version_is_refused(version: int) -> None:
    data = dump_state(_full_state())
    assert data[4] == 3
    _refused(data[:4] + bytes([version]) + data[5:])


@pytest.mark.parametrize(
    "data",
    [
        b"FSCx\x02",
        b"fscs\x02",
        b'{"v": 1, "state": {}}',  # the former JSON encoding
        b"FSCS",
        b"FSCS\x03",
    ],
)
def test_wrong_magic_and_bare_headers_are_refused(data: bytes) -> None:
    _refused(data)


@pytest.mark.parametrize("data", [None, "FSCS\x02", 12, [1, 2]])
def test_non_bytes_are_refused(data: object) -> None:
    _refused(data)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"\x11\x00\x00\x00consistency_check", b"\x11\x00\x00\x00consistency_chekk"),
        (b"\x06\x00\x00\x00active", b"\x06\x00\x00\x00ACTIVE"),
        (b"\x06\x00\x00\x00sparse", b"\x06\x00\x00\x00\xff\xfe\xfdrse"),
        (struct.pack("<d", 0.75), struct.pack("<d", float("nan"))),  # ConfigError
        (struct.pack("<d", 0.125), struct.pack("<d", -1.0)),  # clip: ConfigError
        (  # a duplicate key in verify_keys
            struct.pack("<QI", U64_MAX, 32) + b"v" * 32,
            struct.pack("<QI", 0, 32) + b"v" * 32,
        ),
    ],
)
def test_bad_values_are_refused(old: bytes, new: bytes) -> None:
    data = dump_state(_full_state())
    assert data.count(old) == 1
    _refused(data.replace(old, new))


def test_bad_flags_are_refused() -> None:
    state = replace(_full_state(), signing_key=None, verify_keys={}, stage=Stage.IDLE)
    data = dump_state(state)
    # signing-key flag, then an empty verify_keys, then the stage "idle"
    flag = data.index(b"\x00" + b"\x00" * 4 + b"\x04\x00\x00\x00idle")
    _refused(data[:flag] + b"\x02" + data[flag + 1 :])
    # a peer header: node 7, len(PK), len(MASKS), share flag, share length, slots
    head = struct.pack("<QIIBII", 7, len(PK), len(MASKS), 1, len(SHARE), 3)
    at = data.index(head) + 16
    _refused(data[:at] + b"\x02" + data[at + 1 :])
    _refused(data[:at] + b"\x00" + data[at + 1 :])  # no share, but a length


def _peak_bytes_of_load(data: bytes) -> int:
    tracemalloc.start()
    try:
        with contextlib.suppress(MessageFormatError):
            load_state(data)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


def test_forged_huge_counts_are_refused_without_allocating() -> None:
    empty = ClientState(node_id=1, config=SecAggConfig())
    data = dump_state(empty)
    huge = b"\xff\xff\xff\xff"
    # the tail is: peers count, round, slot, participants, survivors, bytes_sent
    for end in (4, 8, 12, 32):
        forged = data[:-end] + huge + data[len(data) - end + 4 :]
        _refused(forged)
        assert _peak_bytes_of_load(forged) < 64_000
    # a forged u32 anywhere (a count, a length or part of another field) either
    # loads or is refused, and never allocates by the forged value
    for base in (data, dump_state(_full_state())):
        for at in range(len(base) - 3):
            forged = base[:at] + huge + base[at + 4 :]
            assert _peak_bytes_of_load(forged) < 64_000, at


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_corrupted_states_load_or_are_refused(data: st.DataObject) -> None:
    good = dump_state(_full_state())
    at = data.draw(st.integers(0, len(good) - 1))
    chunk = data.draw(st.binary(min_size=1, max_size=8))
    bad = good[:at] + chunk + good[at + len(chunk) :]
    with contextlib.suppress(MessageFormatError):  # any other exception fails
        load_state(bad)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=256))
def test_random_bodies_after_a_valid_header_are_refused(body: bytes) -> None:
    try:
        again = load_state(b"FSCS\x03" + body)
    except MessageFormatError:
        return
    assert dump_state(again) == b"FSCS\x03" + body


# ----------------------------------------------------------------------- size
def _payload_bound(s: ClientState) -> tuple[int, int]:
    """(raw bytes in the state, a bound on the encoding from the field sizes)."""
    blobs = [s.signing_key or b"", s.cipher_sk, *s.mask_sks, *s.seeds, *s.own_advert]
    blobs += [s.graph_nonce, s.commitments_digest]
    blobs += [*s.verify_keys.values(), s.config.graph_seed]
    for peer in s.peers.values():
        blobs += [peer.cipher_pk, peer.mask_pks, peer.share or b""]
    raw = sum(map(len, blobs))
    ids = len(s.nodes) + len(s.neighbours) + len(s.participants) + len(s.survivors)
    keys = len(s.verify_keys) + len(s.peers)
    slots = sum(len(p.revealed) for p in s.peers.values())
    counters = sum(len(k.encode()) + 12 for k in s.bytes_sent)
    # each blob: <= 5 bytes of length/flag; each key: 8; each slot: 16;
    # each peer: <= 9 more bytes of header; 256 bytes for fixed fields.
    bound = raw + 5 * len(blobs) + 8 * (ids + keys) + 16 * slots + counters
    return raw, bound + 9 * len(s.peers) + 256


def test_state_of_50_clients_is_compact(large_state: ClientState) -> None:
    data = dump_state(large_state)
    raw, bound = _payload_bound(large_state)
    assert raw > 30_000  # the state is dominated by keys and shares
    assert len(data) <= bound
    # any text encoding with base64 bytes (the former JSON one: 53.5 kB here)
    # is at least the base64 of the raw bytes
    base64_of_raw = len(base64.b64encode(b"\x00" * raw))
    assert len(data) < 0.9 * base64_of_raw
