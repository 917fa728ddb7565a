"""Play a server that chooses the MPC sessions: the parties decide, not it.

Found in review (issue 10): the compute parties ran clip-and-sum on a single
client's packages (noise off, the release *is* that site's update), re-ran
the same session as often as asked (20 re-runs averaged the noise from 0.48
to 0.16 RMS, accounted as one release), took the clipping norm, the noise and
the weight bound from the server's request, and the sites and parties took
the parties' CA and TLS folder from the run config.

Each attack is played twice: through the sans-I/O API (``fedsec.mpc.party``)
and through the Flower handlers (``clients.mpc_handlers``: ``compute`` at the
three parties at once over mutual TLS, ``share`` at a site), with Messages
built outside a Flower runtime. Every refusal happens before any output share
(or package) leaves, and the recovery the server attempted fails.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import ConfigRecord, Context, Message, RecordDict

from clients import mpc_handlers
from clients.site_config import SIM_SITES_ENV
from fedsec.errors import FedsecError, MaliciousServerError, PolicyError
from fedsec.flower.mpc import MPC_RECORD, new_session
from fedsec.mpc.client import client_share
from fedsec.mpc.clip_and_sum import OutputShare, combine_outputs
from fedsec.mpc.inproc import InProcessNetwork
from fedsec.mpc.keys import generate_party_keys
from fedsec.mpc.params import ClipSumConfig
from fedsec.mpc.party import Party, SimulatedParties, simulate_clip_and_sum
from fedsec.mpc.sessions import FileSessionLog, MemorySessionLog
from fedsec.mpc.tls import make_throwaway_pki
from fedsec.policy import SitePolicy

CFG = ClipSumConfig(clip_norm=1.0, max_weight=10)
POLICY = SitePolicy(modes=frozenset({"mpc"}))  # the default floors: min-sites 3
D = 24


@pytest.fixture(autouse=True)
def _outside_a_runtime(task_identity: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A site outside any runtime: only the node config it is given counts."""
    monkeypatch.delenv(SIM_SITES_ENV, raising=False)
    monkeypatch.delenv("FLWR_HOME", raising=False)


def _updates(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, D)) * 0.05  # norms < C


def _packages(
    public_keys, x: np.ndarray, session: int, cfg: ClipSumConfig = CFG
) -> list[dict[int, bytes]]:
    """``out[i]`` maps client id to party ``i``'s package."""
    pk = {
        j: client_share(
            x[j],
            1,
            public_keys,
            session=session,
            client_id=j,
            config=cfg,
            clamp=cfg.coordinate_bound(D),
        )
        for j in range(len(x))
    }
    return [{j: p[i] for j, p in pk.items()} for i in range(3)]


def _run(parties: list[Party], session: int, packages) -> tuple[dict, dict]:
    """Run the three parties at once; their output shares and their errors."""
    outputs: dict[int, OutputShare] = {}
    errors: dict[int, BaseException] = {}

    def target(i: int) -> None:
        try:
            outputs[i] = parties[i].run_clip_and_sum(session, packages[i], D)
        except FedsecError as exc:
            errors[i] = exc

    threads = [threading.Thread(target=target, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outputs, errors


def _parties(keys, logs, policy: SitePolicy = POLICY, timeout: float = 10.0):
    net = InProcessNetwork(timeout=timeout)
    return [
        Party(keys[i], net.channel(i), CFG, sessions=logs[i], policy=policy)
        for i in range(3)
    ]


# ------------------------------------------------------ (a) one client only
def test_a_session_over_one_clients_packages_is_refused() -> None:
    keys = generate_party_keys()
    x = _updates(1)
    session = new_session()
    parties = _parties(keys, [MemorySessionLog(node_id=i) for i in range(3)])
    outputs, errors = _run(parties, session, _packages(keys[0].public_keys, x, session))
    # the release would be client 0's update (noise off): no output share exists
    assert outputs == {}
    assert sorted(errors) == [0, 1, 2]
    for exc in errors.values():
        assert isinstance(exc, PolicyError)
        assert exc.key == "min-sites"
        assert "policy-min-sites=3" in str(exc)
    # the simulation shortcut refuses as well
    with pytest.raises(PolicyError, match="min-sites"):
        simulate_clip_and_sum(
            keys, 1, _packages(keys[0].public_keys, x, 1), D, CFG, policy=POLICY
        )


def test_colluding_sites_raise_the_least_session() -> None:
    """Two colluders of three clients leave one honest input: refused."""
    keys = generate_party_keys()
    x = _updates(3)
    session = new_session()
    policy = SitePolicy(modes=frozenset({"mpc"}), colluders=2)  # 2 + 2 = 4 inputs
    parties = _parties(keys, [MemorySessionLog(node_id=i) for i in range(3)], policy)
    outputs, errors = _run(parties, session, _packages(keys[0].public_keys, x, session))
    assert outputs == {}
    assert all(
        isinstance(e, PolicyError) and "a session of 3" in str(e)
        for e in errors.values()
    )
    assert sorted(errors) == [0, 1, 2]


def test_the_count_is_of_clients_that_pass_agreement_and_the_range_check() -> None:
    """Padding with clients that the parties then leave out does not help.

    Two of the three packages are from clients that break the range check
    (a coordinate far beyond the public bound): what remains is one client.
    """
    keys = generate_party_keys()
    x = _updates(3)
    x[1, 0] = x[2, 0] = 1e6  # not clamped: left out by the range check
    session = new_session()
    pk = _packages(keys[0].public_keys, x[:1], session)
    for j in (1, 2):
        raw = client_share(
            x[j], 1, keys[0].public_keys, session=session, client_id=j, config=CFG
        )
        for i in range(3):
            pk[i][j] = raw[i]
    parties = _parties(keys, [MemorySessionLog(node_id=i) for i in range(3)])
    outputs, errors = _run(parties, session, pk)
    assert outputs == {}
    assert {type(e) for e in errors.values()} == {PolicyError}
    assert all(e.stage == "range" for e in errors.values())


def test_parties_with_different_floors_refuse_together_at_once() -> None:
    """Party 1 wants five clients, the others three: four are too few for all.

    The least sizes travel in the agreement round, so no party waits for a
    peer that refused (the channel timeout here is 10 s).
    """
    keys = generate_party_keys()
    x = _updates(4)
    session = new_session()
    net = InProcessNetwork(timeout=10.0)
    strict = SitePolicy(modes=frozenset({"mpc"}), min_sites=5)
    parties = [
        Party(
            keys[i],
            net.channel(i),
            CFG,
            sessions=MemorySessionLog(node_id=i),
            policy=strict if i == 1 else POLICY,
        )
        for i in range(3)
    ]
    import time

    start = time.monotonic()
    outputs, errors = _run(parties, session, _packages(keys[0].public_keys, x, session))
    assert time.monotonic() - start < 5.0
    assert outputs == {}
    assert all(isinstance(e, PolicyError) and e.value == 5 for e in errors.values())


# ---------------------------------------------------- (b) re-running a session
def test_a_session_is_computed_once_also_after_a_restart(tmp_path: Path) -> None:
    keys = generate_party_keys()
    x = _updates(3)
    session = new_session()
    packages = _packages(keys[0].public_keys, x, session)
    paths = [tmp_path / f"sessions-party{i}.log" for i in range(3)]
    logs = [FileSessionLog(paths[i], node_id=i) for i in range(3)]
    first = SimulatedParties(keys, CFG, policy=POLICY, sessions=logs)
    released = first.run(session, packages, D)
    assert released.clients == (0, 1, 2)
    # the attack: the same session again, to average the fresh noise away
    with pytest.raises(MaliciousServerError, match="already computed"):
        first.run(session, packages, D)
    # the parties restart: new objects reading the same logs
    restarted = [FileSessionLog(paths[i], node_id=i) for i in range(3)]
    outputs, errors = _run(_parties(keys, restarted), session, packages)
    assert outputs == {}
    assert sorted(errors) == [0, 1, 2]
    assert all(isinstance(e, MaliciousServerError) for e in errors.values())
    # a fresh session (fresh packages, bound to it) is computed as usual
    fresh = new_session()
    again = SimulatedParties(keys, CFG, policy=POLICY, sessions=restarted)
    assert again.run(fresh, _packages(keys[0].public_keys, x, fresh), D).clients == (
        0,
        1,
        2,
    )


def test_old_packages_under_a_new_session_id_are_left_out() -> None:
    """Renaming the session does not re-run it: packages are bound to theirs."""
    keys = generate_party_keys()
    session = new_session()
    packages = _packages(keys[0].public_keys, _updates(3), session)
    sim = SimulatedParties(keys, CFG, policy=POLICY)
    sim.run(session, packages, D)
    with pytest.raises(PolicyError, match="0 usable client"):
        sim.run(session ^ 1, packages, D)


# ------------------------------------------------------- (c) weaker terms
WEAKER = [
    ("max-clip-norm", ClipSumConfig(clip_norm=2.0, max_weight=10), POLICY),
    ("max-weight", ClipSumConfig(clip_norm=1.0, max_weight=5000), POLICY),
    (
        "min-noise-multiplier",
        ClipSumConfig(clip_norm=1.0, noise_std=0.5),
        SitePolicy(modes=frozenset({"mpc"}), min_noise_multiplier=1.0),
    ),
    (
        # sigma = 2 looks like z = 2, but one client moves the sum by W_max C = 10
        "min-noise-multiplier",
        ClipSumConfig(clip_norm=1.0, max_weight=10, noise_std=2.0),
        SitePolicy(modes=frozenset({"mpc"}), min_noise_multiplier=1.0),
    ),
    (
        "require-dp",
        ClipSumConfig(clip_norm=1.0),
        SitePolicy(modes=frozenset({"mpc"}), require_dp=True),
    ),
    ("modes", ClipSumConfig(clip_norm=1.0), SitePolicy()),
]


@pytest.mark.parametrize(("key", "asked", "policy"), WEAKER)
def test_terms_weaker_than_the_partys_policy_are_refused(key, asked, policy) -> None:
    keys = generate_party_keys()
    net = InProcessNetwork()
    with pytest.raises(PolicyError) as info:
        Party(
            keys[0], net.channel(0), asked, sessions=MemorySessionLog(), policy=policy
        )
    assert info.value.key == key
    assert f"policy-{key}=" in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(PolicyError, match=f"policy-{key}="):
        simulate_clip_and_sum(keys, 1, [{}, {}, {}], D, asked, policy=policy)


# ============================================ through the Flower handlers
RUN = {"mpc-mode": "clip_and_sum", "mpc-timeout": 20.0}


class Parties:
    """Three compute-party nodes: contexts set up by ``hello``, as in a run."""

    def __init__(
        self,
        folder: Path,
        node: dict[str, Any] | None = None,
        logs: list[Path] | None = None,
    ) -> None:
        make_throwaway_pki(folder)
        self.folder = folder
        self.node = {"mpc-tls-dir": str(folder), **(node or {})}
        self.logs = logs
        self.contexts = [self.context(i) for i in range(3)]
        hellos = [
            mpc_handlers.hello(_message("mpc_hello", {}, i), c)
            for i, c in enumerate(self.contexts)
        ]
        assert not any(h.has_error() for h in hellos)
        records = [h.content[MPC_RECORD] for h in hellos]
        self.public_keys = [bytes(r["public-key"]) for r in records]
        self.addresses = [str(r["address"]) for r in records]
        self.certificates = [bytes(r["certificate"]) for r in records]
        self.key_signatures = [bytes(r["key-signature"]) for r in records]

    def context(self, i: int, state: RecordDict | None = None) -> Context:
        node = {**self.node, "mpc-party": i}
        if self.logs:
            node["mpc-session-log"] = str(self.logs[i])
        return Context(1, i + 1, node, state or RecordDict(), dict(RUN))

    def restart(self) -> None:
        """New contexts that keep the parties' keys (their node-local state)."""
        self.contexts = [self.context(i, c.state) for i, c in enumerate(self.contexts)]

    def compute(
        self,
        session: int,
        packages: list[dict[int, bytes]],
        terms: ClipSumConfig,
        origins: list[dict[int, tuple[str, bytes]]] | None = None,
    ) -> list[Message]:
        """``query.mpc_compute`` at the three parties at once; their replies.

        ``origins[i]`` maps client id to the site name and signature relayed
        with its package to party ``i`` (as the server's backend relays them).
        """
        replies: list[Message | None] = [None] * 3

        def target(i: int) -> None:
            ids = sorted(packages[i])
            relayed = origins[i] if origins is not None else {}
            record = {
                "session": session,
                "dim": D,
                "client-ids": ids,
                "packages": [packages[i][c] for c in ids],
                "public-keys": self.public_keys,
                "addresses": self.addresses,
                "clip-norm": terms.clip_norm,
                "max-weight": terms.max_weight,
                "noise-std": terms.noise_std,
                "frac-bits": terms.frac_bits,
            }
            if relayed:
                record["sites"] = [relayed.get(c, ("", b""))[0] for c in ids]
                record["signatures"] = [relayed.get(c, ("", b""))[1] for c in ids]
            msg = _message("mpc_compute", record, i)
            replies[i] = mpc_handlers.compute(msg, self.contexts[i])

        threads = [threading.Thread(target=target, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(r is not None for r in replies)
        return replies  # type: ignore[return-value]


def _message(action: str, record: dict[str, Any], node: int) -> Message:
    content = RecordDict(
        {"config": ConfigRecord(dict(RUN)), MPC_RECORD: ConfigRecord(record)}
    )
    return Message(content, dst_node_id=node + 1, message_type=f"query.{action}")


def _released(replies: list[Message]) -> np.ndarray:
    shares = [
        OutputShare.from_arrays(
            {
                k: np.asarray(v.numpy(), dtype=np.uint64)
                for k, v in r.content["share"].items()
            }
        )
        for r in replies
    ]
    return combine_outputs(shares, CFG.encoder).total


def _refusals(replies: list[Message]) -> list[str]:
    assert all(r.has_error() for r in replies), "an output share left a party"
    assert not any("share" in r.content for r in replies if not r.has_error())
    return [r.error.reason for r in replies]


def test_handler_parties_refuse_one_clients_session(tmp_path: Path) -> None:
    parties = Parties(tmp_path / "tls")
    x = _updates(1)
    session = new_session()
    replies = parties.compute(session, _packages(parties.public_keys, x, session), CFG)
    reasons = _refusals(replies)
    assert all("policy-min-sites=3" in r for r in reasons), reasons


def test_handler_parties_compute_a_session_once_across_restarts(
    tmp_path: Path,
) -> None:
    parties = Parties(tmp_path / "tls")
    x = _updates(3)
    session = new_session()
    packages = _packages(parties.public_keys, x, session)
    first = parties.compute(session, packages, CFG)
    assert not any(r.has_error() for r in first), [r.error.reason for r in first]
    np.testing.assert_allclose(_released(first), x.sum(axis=0), atol=1e-3)
    logs = [tmp_path / "tls" / f"sessions-party{i}.log" for i in range(3)]
    assert all(session in FileSessionLog(p) for p in logs)
    parties.restart()  # new ClientApp processes, same node state and logs
    reasons = _refusals(parties.compute(session, packages, CFG))
    assert all("already computed" in r for r in reasons), reasons


def test_handler_session_log_comes_from_the_node_config(tmp_path: Path) -> None:
    logs = [tmp_path / f"elsewhere-{i}.log" for i in range(3)]
    parties = Parties(tmp_path / "tls", logs=logs)
    session = new_session()
    replies = parties.compute(
        session, _packages(parties.public_keys, _updates(3), session), CFG
    )
    assert not any(r.has_error() for r in replies)
    assert all(session in FileSessionLog(p) for p in logs)
    assert not list((tmp_path / "tls").glob("sessions-*.log"))


@pytest.mark.parametrize(
    ("key", "asked", "node"),
    [
        ("max-clip-norm", ClipSumConfig(clip_norm=2.0, max_weight=10), {}),
        (
            "min-noise-multiplier",
            ClipSumConfig(clip_norm=1.0, noise_std=0.5),
            {"policy-min-noise-multiplier": 1.0},
        ),
        ("max-weight", ClipSumConfig(clip_norm=1.0, max_weight=5000), {}),
    ],
)
def test_handler_parties_refuse_weaker_terms(
    tmp_path: Path, key: str, asked: ClipSumConfig, node: dict[str, Any]
) -> None:
    parties = Parties(tmp_path / "tls", node)
    session = new_session()
    # the server even has clients share under the weaker terms
    packages = _packages(parties.public_keys, _updates(3), session, asked)
    reasons = _refusals(parties.compute(session, packages, asked))
    assert all(f"policy-{key}=" in r and "\n" not in r for r in reasons), reasons


# ------------------------------------------------------ (d) the parties' CA
def _share_request(folder: Path, run: dict[str, Any]) -> tuple[Message, list]:
    from fedsec.flower.records import weights_to_record
    from fedsec.mpc.tls import attest_party_key
    from fedsec.mpc.tls import make_throwaway_pki as pki

    identities = pki(folder)
    keys = list(generate_party_keys()[0].public_keys)
    attested = [attest_party_key(identities[i], i, keys[i]) for i in range(3)]
    record = {
        "session": new_session(),
        "client-id": 7,
        "public-keys": keys,
        "party-certificates": [c for c, _ in attested],
        "key-signatures": [s for _, s in attested],
    }
    content = RecordDict(
        {
            "arrays": weights_to_record({"w": np.zeros(D, np.float32)}),
            "config": ConfigRecord({**RUN, **run}),
            MPC_RECORD: ConfigRecord(record),
        }
    )
    return Message(content, dst_node_id=8, message_type="query.mpc_share"), keys


@pytest.fixture
def trained(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Local training replaced by a stub that counts its calls."""
    from collections import OrderedDict

    import clients.local_update as lu

    calls: list[int] = []

    def fake(start, config, settings, context):
        calls.append(1)
        weights = OrderedDict((k, v + 0.01) for k, v in start.items())
        return lu.LocalUpdate(start, weights, 5, {"epsilon": 1.5, "train-loss": 0.3})

    monkeypatch.setattr(lu, "local_update", fake)
    return calls


def test_a_site_without_the_ca_in_its_node_config_refuses_to_share(
    tmp_path: Path, trained: list[int]
) -> None:
    folder = tmp_path / "tls"
    # the server points the run config at a folder with "the parties' CA"
    msg, _ = _share_request(folder, {"mpc-tls-dir": str(folder)})
    # a site that takes part in MPC but was given no CA by its operator
    node = {"policy-modes": "mpc"}
    reply = mpc_handlers.share(msg, Context(1, 8, node, RecordDict(), {}))
    assert reply.has_error()
    assert "node config 'mpc-ca-file'" in reply.error.reason
    # a site provisioned for nothing does not even take part in MPC
    reply = mpc_handlers.share(msg, Context(1, 8, {}, RecordDict(), {}))
    assert "policy-modes=plain,semi_honest refuses mpc" in reply.error.reason
    assert trained == []  # refused before training, nothing encrypted
    # the same site with its operator's CA shares, and reports its epsilon
    site = Context(1, 8, {"mpc-ca-file": str(folder / "ca.pem")}, RecordDict(), {})
    ok = mpc_handlers.share(msg, site)
    assert not ok.has_error(), ok.error.reason
    assert len(ok.content[MPC_RECORD]["packages"]) == 3
    assert dict(ok.content["metrics"]) == {"epsilon": 1.5}


def test_a_site_refuses_terms_weaker_than_its_policy(
    tmp_path: Path, trained: list[int]
) -> None:
    folder = tmp_path / "tls"
    msg, _ = _share_request(folder, {"mpc-clip-norm": 4.0})
    site = {"mpc-ca-file": str(folder / "ca.pem"), "policy-max-clip-norm": 2.0}
    reply = mpc_handlers.share(msg, Context(1, 8, site, RecordDict(), {}))
    assert reply.has_error()
    assert "policy-max-clip-norm=2.0" in reply.error.reason
    msg, _ = _share_request(folder, {"mpc-noise-multiplier": 0.5})
    site = {"mpc-ca-file": str(folder / "ca.pem"), "policy-min-noise-multiplier": 1}
    reply = mpc_handlers.share(msg, Context(1, 8, site, RecordDict(), {}))
    assert "policy-min-noise-multiplier=1.0" in reply.error.reason
    site = {"mpc-ca-file": str(folder / "ca.pem"), "policy-modes": "semi_honest"}
    reply = mpc_handlers.share(msg, Context(1, 8, site, RecordDict(), {}))
    assert "policy-modes=semi_honest refuses mpc" in reply.error.reason
    assert trained == []


def test_a_party_takes_its_tls_folder_only_from_its_node_config(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "tls"
    make_throwaway_pki(folder)
    content = RecordDict({"config": ConfigRecord({**RUN, "mpc-tls-dir": str(folder)})})
    msg = Message(content, dst_node_id=1, message_type="query.mpc_hello")
    node = {"mpc-party": 0, "policy-modes": "mpc"}
    reply = mpc_handlers.hello(msg, Context(1, 1, node, RecordDict(), {}))
    assert reply.has_error()
    assert "mpc-tls-dir" in reply.error.reason
