"""Message records: round trips, strict validation, fuzzing, server robustness."""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedsec.errors import ProtocolError
from fedsec.secagg.config import SecAggConfig
from fedsec.secagg.errors import MessageFormatError, StageError
from fedsec.secagg.messages import (
    AdvertiseKeys,
    AdvertiseKeysRequest,
    ConsistencyRequest,
    ConsistencyResponse,
    MaskedInput,
    MaskedInputRequest,
    SeedReveal,
    SeedRevealRequest,
    ShareComplaint,
    ShareKeys,
    ShareKeysRequest,
    UnmaskRequest,
    UnmaskResponse,
    parse_client_message,
    parse_server_message,
)
from fedsec.secagg.records import record_nbytes
from fedsec.secagg.stages import Stage
from tests.secagg.util import DIM, federation, make_updates, plaintext_ring_sum

K, C, SIG = b"k" * 32, b"c" * 32, b"s" * 64
SAMPLES = [
    AdvertiseKeysRequest(1, (3, 9, 2**64 - 1)),
    AdvertiseKeys(1, K, K * 3, C, SIG),
    AdvertiseKeys(1, K, K, C, b""),
    SeedRevealRequest(1, (3, 9), (C, K)),
    SeedReveal(1, K),
    ShareKeysRequest(1, (3, 9), (K, K), (K * 2, K * 2), (C, C), (SIG, b"")),
    ShareKeysRequest(
        1, (3, 9), (K, K), (K * 2, K * 2), (C, C), (SIG, SIG), (3, 5, 9), (K, C, K)
    ),
    ShareKeys(1, (3, 9), (b"c1", b"c2")),
    ShareKeys(1, (3, 9), (b"c1", b"c2"), (SIG, SIG)),
    MaskedInputRequest(1, 5, 0, 10, (3, 9), (9,), (b"ct",)),
    MaskedInputRequest(1, 5, 0, 10, (3, 9), (9,), (b"ct",), (SIG,)),
    MaskedInput(1, 5, 0, b"\x00" * 30, 2**32 - 1),
    ShareComplaint(1, 5, 0, (3, 9), K),
    ShareComplaint(1, 5, 0, (9,), b""),
    ConsistencyRequest(1, 5, 0, (3, 9)),
    ConsistencyResponse(1, 5, 0, SIG),
    UnmaskRequest(1, 5, 0, (3,), (9,), (3,), (SIG,)),
    UnmaskResponse(1, 5, 0, (3,), (b"a" * 44,), (9,), (b"b" * 44,)),
]
ALLOWED = (int, float, str, bytes, bool)


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip_and_record_types(msg) -> None:
    record = msg.to_record()
    for value in record.values():
        items = value if isinstance(value, list) else [value]
        assert all(isinstance(v, ALLOWED) for v in items)
        assert len({type(v) for v in items}) <= 1  # lists hold one type
    assert type(msg).from_record(record) == msg
    assert record_nbytes(record) > 0


def _mutations(record: dict) -> list[dict]:
    out = []
    for key, value in record.items():
        out.append({k: v for k, v in record.items() if k != key})  # missing
        out.append({**record, key: None})  # wrong type
        out.append({**record, key: True})  # bool is not an int
        if isinstance(value, bytes) and value:
            out.append({**record, key: value[:-1]})  # truncated
        if isinstance(value, list) and value:
            out.append({**record, key: value[::-1] + value[:1]})  # unsorted / dup
            out.append({**record, key: value[:-1]})  # one short
            out.append({**record, key: [*value[:-1], "x"]})  # mixed types
        if isinstance(value, int) and key != "msg":
            out.append({**record, key: -1})  # out of range
    out.append({**record, "extra": 1})
    out.append({**record, "msg": "secagg.other"})
    return out


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).__name__)
def test_every_mutation_gives_a_typed_error(msg) -> None:
    record = msg.to_record()
    changed = 0
    for bad in _mutations(record):
        try:
            parsed = type(msg).from_record(bad)
        except MessageFormatError:
            changed += 1
            continue
        assert parsed != msg or bad == record  # accepted only if harmless
    assert changed >= len(record)


values = st.one_of(
    st.integers(-(2**65), 2**65),
    st.floats(),
    st.text(max_size=5),
    st.binary(max_size=70),
    st.booleans(),
    st.none(),
    st.lists(st.integers(-5, 2**64 + 5), max_size=6),
    st.lists(st.binary(max_size=70), max_size=4),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), index=st.integers(0, len(SAMPLES) - 1))
def test_fuzzed_records_only_raise_message_format_error(
    data: st.DataObject, index: int
) -> None:
    msg = SAMPLES[index]
    base = msg.to_record()
    keys = [*list(base), "junk"]
    record = dict(base)
    for key in data.draw(st.lists(st.sampled_from(keys), min_size=1, max_size=3)):
        record[key] = data.draw(values)
    with contextlib.suppress(MessageFormatError):
        type(msg).from_record(record)


@settings(max_examples=50, deadline=None)
@given(junk=st.one_of(st.none(), st.integers(), st.binary(), st.lists(st.integers())))
def test_non_mapping_records_are_refused(junk: object) -> None:
    with pytest.raises(MessageFormatError):
        MaskedInput.from_record(junk)


def test_server_survives_bad_replies_and_still_aggregates(monkeypatch) -> None:
    config = SecAggConfig(threshold=0.5, max_weight=4)
    fed = federation(config, 6)
    fed.setup()
    server = fed.server
    ids = list(fed.node_ids)
    updates, weights = make_updates(ids)
    from tests.secagg.util import record_quantized

    with record_quantized(monkeypatch) as seen:
        requests = server.begin_round(1, DIM)
        replies = {
            u: fed.clients[u].masked_input(r, updates[u], weights[u])
            for u, r in requests.items()
        }
    bad_node, good = ids[0], ids[1:]
    good_reply = replies[bad_node]
    attacks = [
        dataclasses.replace(good_reply, data=good_reply.data[:-1]),  # truncated
        dataclasses.replace(good_reply, round=0),  # stale round
        dataclasses.replace(good_reply, key_set=9),  # other key set
        ConsistencyResponse(good_reply.key_set, 1, 0, SIG),  # wrong stage
    ]
    for attack in attacks:
        with pytest.raises(ProtocolError):
            server.handle(bad_node, attack)
    with pytest.raises(StageError):
        server.handle(12345, replies[ids[1]])  # not a participant
    for u in good:
        server.handle(u, replies[u])
    with pytest.raises(StageError):
        server.handle(ids[1], replies[ids[1]])  # duplicate
    assert server.waiting_for == {bad_node}
    unmask = server.advance()  # the bad node counts as dropped
    for u, req in unmask.items():
        reply = fed.clients[u].unmask(req)
        if u == ids[1]:
            with pytest.raises(MessageFormatError):
                server.handle(u, dataclasses.replace(reply, seed_peers=()))
        server.handle(u, reply)
    assert server.advance() == {}
    res = server.result()
    assert res.dropped == (bad_node,)
    assert np.array_equal(
        res.ring_sum, plaintext_ring_sum(seen, updates, tuple(good), config.bits)
    )
    assert server.metrics.dropouts[Stage.MASKED_INPUT.value] == 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzzed_replies_never_crash_the_server(data: st.DataObject) -> None:
    fed = _FUZZ_FED
    node = data.draw(st.sampled_from([*fed.node_ids, 0, 2**64 - 1]))
    head = {
        "key_set": st.sampled_from([1, 0, 2]),
        "round": st.sampled_from([1, 0, 7]),
        "slot": st.sampled_from([0, 1]),
    }
    ids = st.lists(st.sampled_from([*fed.node_ids, 5]), unique=True).map(
        lambda v: tuple(sorted(v))
    )
    reply = data.draw(
        st.one_of(
            st.builds(
                MaskedInput,
                data=st.binary(max_size=80),
                masked_weight=st.integers(0, 2**32 - 1),
                **head,
            ),
            st.builds(
                ConsistencyResponse,
                signature=st.binary(min_size=64, max_size=64),
                **head,
            ),
            ids.flatmap(
                lambda s: ids.flatmap(
                    lambda k: st.builds(
                        UnmaskResponse,
                        seed_peers=st.just(s),
                        key_peers=st.just(k),
                        seed_shares=st.lists(
                            st.binary(min_size=44, max_size=44),
                            min_size=len(s),
                            max_size=len(s),
                        ).map(tuple),
                        key_shares=st.lists(
                            st.binary(min_size=44, max_size=44),
                            min_size=len(k),
                            max_size=len(k),
                        ).map(tuple),
                        **head,
                    )
                )
            ),
        )
    )
    with contextlib.suppress(ProtocolError):
        fed.server.handle(node, type(reply).from_record(reply.to_record()))


def _fuzz_federation():  # one server waiting for masked inputs of round 1
    fed = federation(SecAggConfig(threshold=0.5, max_weight=4), 5, wire=False)
    fed.setup()
    fed.server.begin_round(1, 8)
    return fed


_FUZZ_FED = _fuzz_federation()


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).__name__)
def test_parse_dispatches_on_the_tag(msg) -> None:
    record = msg.to_record()
    from_server = type(msg).TAG.endswith(".request")
    right, wrong = (
        (parse_server_message, parse_client_message)
        if from_server
        else (parse_client_message, parse_server_message)
    )
    assert right(record) == msg
    with pytest.raises(MessageFormatError):
        wrong(record)
    with pytest.raises(MessageFormatError):
        right({**record, "msg": "nope"})
