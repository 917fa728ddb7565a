"""ECDH-PSI against a plain set intersection, every output mode, bad inputs."""

from __future__ import annotations

import pytest

from fedsec.errors import AbortError, DataError, ProtocolError
from fedsec.psi import OutputMode, PsiHolder, PsiTerms, match_tags, run_psi
from fedsec.psi.group import Exponentiator, hash_ids, new_key
from fedsec.psi.local import final_lists


def _sets(k: int) -> list[list[str]]:
    base = [f"patient-{i:05d}" for i in range(60)]
    out = []
    for h in range(k):
        own = [x for j, x in enumerate(base) if (j + h) % (h + 2) != 0]
        out.append(own + [f"only-{h}-{j}" for j in range(5)])
    return out


def _expected(sets: list[list[str]]) -> list[str]:
    common = set(sets[0])
    for s in sets[1:]:
        common &= set(s)
    return sorted(common)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_intersection_mode_matches_set_intersection(k: int) -> None:
    sets = _sets(k)
    got = run_psi(sets, OutputMode.INTERSECTION)
    want = _expected(sets)
    orders = []
    for h, res in enumerate(got.results):
        assert res.size == len(want)
        assert res.rows is not None
        ids = [sets[h][int(r)] for r in res.rows]
        assert sorted(ids) == want
        orders.append(ids)
    assert all(o == orders[0] for o in orders)  # one common order


@pytest.mark.parametrize("k", [2, 3])
def test_size_mode_reveals_only_the_size(k: int) -> None:
    sets = _sets(k)
    got = run_psi(sets, OutputMode.SIZE)
    assert all(r.size == len(_expected(sets)) and r.rows is None for r in got.results)


@pytest.mark.parametrize("k", [2, 3])
def test_shares_mode_aligns_rows_for_the_parties(k: int) -> None:
    sets = _sets(k)
    got = run_psi(sets, OutputMode.SHARES)
    aligned = [[sets[h][int(r)] for r in rows] for h, rows in enumerate(got.rows)]
    assert sorted(aligned[0]) == _expected(sets)
    assert all(a == aligned[0] for a in aligned)


def test_size_mode_relays_shuffle_and_intersection_mode_keeps_order() -> None:
    sets = _sets(2)
    for mode, same in ((OutputMode.INTERSECTION, True), (OutputMode.SIZE, False)):
        terms = PsiTerms(7, 2, mode)
        holders = [PsiHolder(i, sets[i], terms) for i in range(2)]
        own = holders[0].start()
        once = holders[1].relay(0, 1, own)
        # the owner's view: raising its own first-hop points again in its order
        again = holders[1].relay(0, 1, own)
        assert (once == again) is same


def test_exponentiation_commutes_and_parallel_equals_serial() -> None:
    a, b = new_key(), new_key()
    pts = hash_ids([str(i).encode() for i in range(5000)], 3)
    ea, eb = Exponentiator(a), Exponentiator(b, workers=2)
    try:
        ab = eb.raise_points(ea.raise_points(pts))
        ba = ea.raise_points(eb.raise_points(pts))
        assert ab == ba
        assert Exponentiator(b).raise_points(pts) == eb.raise_points(pts)
    finally:
        eb.close()


def test_session_binds_the_hash() -> None:
    assert hash_ids([b"x"], 1) != hash_ids([b"x"], 2)


def test_duplicate_ids_refused_in_one_line_without_the_id() -> None:
    with pytest.raises(DataError) as err:
        PsiHolder(
            0, ["a", "b", "secret-id", "secret-id"], PsiTerms(1, 2, OutputMode.SIZE)
        )
    assert "1 duplicate" in str(err.value)
    assert "secret-id" not in str(err.value)
    assert "\n" not in str(err.value)


def test_empty_ids_refused() -> None:
    with pytest.raises(DataError):
        PsiHolder(0, [], PsiTerms(1, 2, OutputMode.SIZE))
    with pytest.raises(DataError):
        PsiHolder(0, ["a", ""], PsiTerms(1, 2, OutputMode.SIZE))


def test_empty_intersection_releases_nothing() -> None:
    with pytest.raises(AbortError, match="intersection is empty"):
        run_psi([["a", "b"], ["c", "d"]], OutputMode.INTERSECTION)


def test_dropped_holder_releases_nothing() -> None:
    sets = _sets(3)
    terms = PsiTerms(5, 3, OutputMode.INTERSECTION)
    holders = [PsiHolder(i, sets[i], terms) for i in range(3)]
    finals = final_lists(holders, terms)
    del finals[2]
    with pytest.raises(AbortError, match="holder"):
        holders[0].finish(finals)
    with pytest.raises(AbortError):
        match_tags(finals, 3)


def test_a_cheating_relay_is_caught_by_lengths_and_repeats() -> None:
    sets = _sets(2)
    terms = PsiTerms(5, 2, OutputMode.INTERSECTION)
    holders = [PsiHolder(i, sets[i], terms) for i in range(2)]
    finals = final_lists(holders, terms)
    with pytest.raises(ProtocolError, match="length"):
        holders[0].finish({0: finals[0][32:], 1: finals[1]})
    dup = finals[1][:32] + finals[1][32:]
    dup = finals[1][:32] + finals[1][:32] + finals[1][64:]
    with pytest.raises(ProtocolError, match="repeats"):
        holders[0].finish({0: finals[0], 1: dup})


def test_wrong_relay_refused() -> None:
    terms = PsiTerms(5, 3, OutputMode.SIZE)
    h = PsiHolder(1, ["a"], terms)
    with pytest.raises(ProtocolError):
        h.relay(0, 2, b"\x09" * 32)  # list 0 at hop 2 goes to holder 2
