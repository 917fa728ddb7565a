"""Play a server that makes up clients (a Sybil attack) against the MPC parties.

The parties refuse a session of fewer than ``policy-min-sites`` clients, but
they counted *packages*, and their public keys are public: a server could
encrypt packages of zeros to them itself and pad one real site's package up
to ``min-sites``. With noise off the release is then that site's update.

A party with the site registry (its own node config ``secagg-keys-dir``)
now counts only packages signed by a registered site, each site once per
session (``fedsec.mpc.origin``). Each attack is played through the sans-I/O
API (``fedsec.mpc.party``) and through the Flower handlers
(``clients.mpc_handlers``: ``share`` at real sites, ``compute`` at the three
parties at once over mutual TLS), with the packages a malicious server would
relay; no output share leaves a party.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import ConfigRecord, Context, Message, RecordDict

from clients import mpc_handlers
from clients.site_config import SIM_SITES_ENV
from fedsec.config import ClientSettings
from fedsec.crypto.signatures import generate_signing_key
from fedsec.errors import FedsecError, PolicyError
from fedsec.flower.mpc import MPC_RECORD, clip_sum_config, new_session
from fedsec.identity import create_identities, load_registry, load_signing_key
from fedsec.mpc.client import client_share
from fedsec.mpc.clip_and_sum import OutputShare
from fedsec.mpc.inproc import InProcessNetwork
from fedsec.mpc.keys import generate_party_keys
from fedsec.mpc.origin import Origin, sign_packages
from fedsec.mpc.params import ClipSumConfig
from fedsec.mpc.party import Party, SimulatedParties
from fedsec.mpc.sessions import MemorySessionLog
from fedsec.policy import SitePolicy
from tests.attacks.test_mpc_sessions import RUN, Parties, _refusals, _released

CFG = ClipSumConfig(clip_norm=1.0, max_weight=10)
POLICY = SitePolicy(modes=frozenset({"mpc"}))  # the default floors: min-sites 3
D = 24
SITES = [f"site{i}" for i in range(6)]


@pytest.fixture(autouse=True)
def _outside_a_runtime(task_identity: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A site outside any runtime: only the node config it is given counts."""
    monkeypatch.delenv(SIM_SITES_ENV, raising=False)
    monkeypatch.delenv("FLWR_HOME", raising=False)


@pytest.fixture(scope="module")
def site_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The consortium's key folder: a signing key per site and the registry."""
    folder = tmp_path_factory.mktemp("site-keys")
    create_identities(folder, SITES)
    return folder


def _updates(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, D)) * 0.05  # norms < C


def plaintext(x: np.ndarray, w: np.ndarray, cfg: ClipSumConfig = CFG) -> np.ndarray:
    """The clipped weighted sum on the clamped, fixed-point-rounded inputs."""
    enc = cfg.encoder
    bound = cfg.coordinate_bound(x.shape[1])
    xq = enc.decode(enc.encode(np.clip(x, -bound, bound)))
    scale = np.minimum(
        1.0, cfg.clip_norm / np.maximum(np.linalg.norm(xq, axis=1), 1e-300)
    )
    return (np.clip(w, 0, cfg.max_weight) * scale) @ xq


class Relay:
    """What a server relays to the three parties: packages and their origins."""

    def __init__(self, public_keys, session: int) -> None:
        self.public_keys = public_keys
        self.session = session
        self.packages: list[dict[int, bytes]] = [{}, {}, {}]
        self.origins: list[dict[int, Origin]] = [{}, {}, {}]

    def add(self, cid: int, site: str, packages: list[bytes], sigs: list[bytes]):
        for i in range(3):
            self.packages[i][cid] = packages[i]
            self.origins[i][cid] = Origin(site, sigs[i])

    def site(
        self, keys: Path, site: str, cid: int, x: np.ndarray, weight: int = 1
    ) -> list[bytes]:
        """A real site shares ``x`` and signs with its own key."""
        packages = self.share(x, weight, cid)
        sigs = sign_packages(
            load_signing_key(keys, site),
            packages,
            site=site,
            session=self.session,
            client_id=cid,
        )
        self.add(cid, site, packages, sigs)
        return sigs

    def made_up(self, cid: int, name: str) -> None:
        """A client the server makes up: zeros encrypted to the parties (their
        keys are public), signed with an Ed25519 key the server just made."""
        packages = self.share(np.zeros(D), 1, cid)
        sigs = sign_packages(
            generate_signing_key(),
            packages,
            site=name,
            session=self.session,
            client_id=cid,
        )
        self.add(cid, name, packages, sigs)

    def share(self, x: np.ndarray, weight: int, cid: int) -> list[bytes]:
        return client_share(
            x,
            weight,
            self.public_keys,
            session=self.session,
            client_id=cid,
            config=CFG,
            clamp=CFG.coordinate_bound(D),
        )


def _parties(keys, registry, policy: SitePolicy = POLICY) -> list[Party]:
    net = InProcessNetwork(timeout=10.0)
    return [
        Party(
            keys[i],
            net.channel(i),
            CFG,
            sessions=MemorySessionLog(node_id=i),
            policy=policy,
            registry=registry,
        )
        for i in range(3)
    ]


def _run(parties: list[Party], relay: Relay) -> tuple[dict, dict]:
    """Run the three parties at once; their output shares and their errors."""
    outputs: dict[int, OutputShare] = {}
    errors: dict[int, BaseException] = {}

    def target(i: int) -> None:
        try:
            outputs[i] = parties[i].run_clip_and_sum(
                relay.session, relay.packages[i], D, relay.origins[i]
            )
        except FedsecError as exc:
            errors[i] = exc

    threads = [threading.Thread(target=target, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outputs, errors


def _refused(outputs: dict, errors: dict, usable: int) -> None:
    assert outputs == {}, "an output share left a party"
    assert sorted(errors) == [0, 1, 2]
    for exc in errors.values():
        assert isinstance(exc, PolicyError), exc
        assert exc.key == "min-sites"
        assert f"a session of {usable} usable client(s)" in str(exc)


# ========================================== through the sans-I/O party API
def test_one_site_padded_with_made_up_clients_is_refused(site_keys: Path) -> None:
    keys = generate_party_keys()
    x = _updates(1)
    relay = Relay(keys[0].public_keys, new_session())
    relay.site(site_keys, "site0", 0, x[0])
    relay.made_up(1, "ghost")  # a name absent from the registry
    relay.made_up(2, "site1")  # a registered name, without site1's key
    registry = load_registry(site_keys)
    parties = _parties(keys, registry)
    _refused(*_run(parties, relay), usable=1)
    # without a registry the parties count packages: the attack works, the
    # release is site0's update (why docs/mpc.md says it is not Sybil-proof)
    released = SimulatedParties(keys, CFG, policy=POLICY).run(
        relay.session, relay.packages, D
    )
    assert released.clients == (0, 1, 2)
    np.testing.assert_allclose(released.total, plaintext(x, np.ones(1)), atol=1e-3)


@pytest.mark.parametrize("tamper", ["relabelled", "server_package", "other_party"])
def test_a_package_relabelled_or_resigned_is_left_out(
    site_keys: Path, tamper: str
) -> None:
    keys = generate_party_keys()
    x = _updates(3)
    relay = Relay(keys[0].public_keys, new_session())
    for j in range(3):
        sigs = relay.site(site_keys, f"site{j}", j, x[j])
    zeros = relay.share(np.zeros(D), 1, 2)  # the server's own sharing of zeros
    for i in range(3):  # the server alters what it relays for client 2 (site2)
        if tamper == "relabelled":  # site2's package, named as site3
            relay.origins[i][2] = Origin("site3", sigs[i])
        elif tamper == "server_package":  # site2's signature on the server's zeros
            relay.packages[i][2] = zeros[i]
        else:  # the signature site2 made for another party
            relay.origins[i][2] = Origin("site2", sigs[(i + 1) % 3])
    _refused(*_run(_parties(keys, load_registry(site_keys)), relay), usable=2)


@pytest.mark.parametrize(
    ("sites", "usable"), [(["site0", "site0", "site1"], 2), (["site0"] * 3, 1)]
)
def test_the_same_site_twice_counts_once(
    site_keys: Path, sites: list[str], usable: int
) -> None:
    """The server asks one site to share twice in a session (two client ids):
    every package is genuinely signed, but the site counts once."""
    keys = generate_party_keys()
    x = _updates(3)
    relay = Relay(keys[0].public_keys, new_session())
    for cid, site in enumerate(sites):
        relay.site(site_keys, site, cid, x[int(site[-1])])
    _refused(*_run(_parties(keys, load_registry(site_keys)), relay), usable=usable)


def test_a_site_asked_twice_is_summed_once(site_keys: Path) -> None:
    keys = generate_party_keys()
    x = _updates(3)
    relay = Relay(keys[0].public_keys, new_session())
    for cid, site in enumerate(["site0", "site0", "site1", "site2"]):
        relay.site(site_keys, site, cid, x[int(site[-1])])
    sim = SimulatedParties(keys, CFG, policy=POLICY, registry=load_registry(site_keys))
    released = sim.run(relay.session, relay.packages, D, relay.origins)
    assert released.clients == (0, 2, 3)  # site0's first package only
    np.testing.assert_allclose(released.total, plaintext(x, np.ones(3)), atol=1e-3)
    reports = [p.last_report for p in sim.parties]
    assert [r.sites for r in reports if r] == [("site0", "site1", "site2")] * 3


@pytest.mark.parametrize("n", [3, 5])
def test_honest_registered_sites_release_the_plaintext_clipped_sum(
    site_keys: Path, n: int
) -> None:
    keys = generate_party_keys()
    x = _updates(n, seed=n)
    x[1] *= 100.0  # a poisoned update, clipped to C
    w = np.array([3, 1, 2, 5, 4][:n])
    relay = Relay(keys[0].public_keys, new_session())
    for j in range(n):
        relay.site(site_keys, f"site{j}", j, x[j], int(w[j]))
    relay.made_up(n, "ghost")  # padding is left out, the session still runs
    sim = SimulatedParties(keys, CFG, policy=POLICY, registry=load_registry(site_keys))
    released = sim.run(relay.session, relay.packages, D, relay.origins)
    assert released.clients == tuple(range(n))
    assert released.weight == w.sum()
    np.testing.assert_allclose(released.total, plaintext(x, w), atol=1e-3)
    reports = [p.last_report for p in sim.parties]
    assert [r.rejected_clients for r in reports if r] == [(n,)] * 3


def test_a_party_that_requires_signed_sites_refuses_without_a_registry(
    site_keys: Path,
) -> None:
    keys = generate_party_keys()
    strict = SitePolicy(modes=frozenset({"mpc"}), require_signed_sites=True)
    with pytest.raises(PolicyError, match="policy-require-signed-sites=True"):
        _parties(keys, None, strict)
    _parties(keys, load_registry(site_keys), strict)  # with one it runs


# ============================================ through the Flower handlers
TERMS = clip_sum_config(ClientSettings.from_mapping(RUN).mpc)
STEP = 0.01  # the stub's local training moves every weight by this much
WEIGHT = 5  # the stub's number of examples


@pytest.fixture
def trained(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Local training replaced by a stub that counts its calls."""
    import clients.local_update as lu

    calls: list[int] = []

    def fake(start, config, settings, context):
        calls.append(1)
        weights = OrderedDict((k, v + STEP) for k, v in start.items())
        return lu.LocalUpdate(start, weights, WEIGHT, {"train-loss": 0.3})

    monkeypatch.setattr(lu, "local_update", fake)
    return calls


class Server:
    """A server driving real sites' ``share`` handlers, relaying what it likes."""

    def __init__(self, parties: Parties, keys: Path) -> None:
        self.parties = parties
        self.keys = keys
        self.session = new_session()
        self.packages: list[dict[int, bytes]] = [{}, {}, {}]
        self.origins: list[dict[int, tuple[str, bytes]]] = [{}, {}, {}]

    def site_node(self, site: str, keys: bool = True) -> dict[str, Any]:
        node: dict[str, Any] = {
            "mpc-ca-file": str(self.parties.folder / "ca.pem"),
            "secagg-site": site,
        }
        if keys:
            node["secagg-keys-dir"] = str(self.keys)
        return node

    def request(self, cid: int) -> Message:
        """``query.mpc_share`` for client ``cid``, as the backend sends it."""
        from fedsec.flower.records import weights_to_record

        record = {
            "session": self.session,
            "client-id": cid,
            "public-keys": self.parties.public_keys,
            "party-certificates": self.parties.certificates,
            "key-signatures": self.parties.key_signatures,
        }
        content = RecordDict(
            {
                "arrays": weights_to_record({"w": np.zeros(D, np.float32)}),
                "config": ConfigRecord(dict(RUN)),
                MPC_RECORD: ConfigRecord(record),
            }
        )
        return Message(content, dst_node_id=100 + cid, message_type="query.mpc_share")

    def ask(self, site: str, cid: int, keys: bool = True) -> Message:
        """``query.mpc_share`` at ``site`` as client ``cid``; relays the reply."""
        node = self.site_node(site, keys)
        context = Context(1, 100 + cid, node, RecordDict(), {})
        reply = mpc_handlers.share(self.request(cid), context)
        assert not reply.has_error(), reply.error.reason
        rec = reply.content[MPC_RECORD]
        name = str(rec.get("site", ""))
        sigs = [bytes(s) for s in rec.get("signatures", [b"", b"", b""])]
        for i in range(3):
            self.packages[i][cid] = bytes(rec["packages"][i])
            self.origins[i][cid] = (name, sigs[i])
        return reply

    def made_up(self, cid: int, name: str) -> None:
        packages = client_share(
            np.zeros(D),
            1,
            self.parties.public_keys,
            session=self.session,
            client_id=cid,
            config=TERMS,
        )
        sigs = sign_packages(
            generate_signing_key(),
            packages,
            site=name,
            session=self.session,
            client_id=cid,
        )
        for i in range(3):
            self.packages[i][cid] = packages[i]
            self.origins[i][cid] = (name, sigs[i])

    def compute(self) -> list[Message]:
        return self.parties.compute(self.session, self.packages, TERMS, self.origins)


def _registered_parties(tmp_path: Path, keys: Path, **node: Any) -> Parties:
    return Parties(tmp_path / "tls", {"secagg-keys-dir": str(keys), **node})


def test_handler_parties_refuse_one_site_padded_with_made_up_clients(
    tmp_path: Path, site_keys: Path, trained: list[int]
) -> None:
    server = Server(_registered_parties(tmp_path, site_keys), site_keys)
    reply = server.ask("site0", 0)
    assert reply.content[MPC_RECORD]["site"] == "site0"
    server.made_up(1, "ghost")
    server.made_up(2, "site1")
    reasons = _refusals(server.compute())
    assert all(
        "policy-min-sites=3" in r and "a session of 1 usable client(s)" in r
        for r in reasons
    ), reasons


def test_handler_parties_count_a_site_asked_twice_once(
    tmp_path: Path, site_keys: Path, trained: list[int]
) -> None:
    server = Server(_registered_parties(tmp_path, site_keys), site_keys)
    server.ask("site0", 10)
    server.ask("site0", 11)  # the same site, asked again as another client
    server.ask("site1", 12)
    reasons = _refusals(server.compute())
    assert all("a session of 2 usable client(s)" in r for r in reasons), reasons


def test_handler_parties_leave_out_a_relabelled_package(
    tmp_path: Path, site_keys: Path, trained: list[int]
) -> None:
    server = Server(_registered_parties(tmp_path, site_keys), site_keys)
    for cid in range(3):
        server.ask(f"site{cid}", cid)
    for i in range(3):  # site2's packages, named as site4 (a registered site)
        server.origins[i][2] = ("site4", server.origins[i][2][1])
    reasons = _refusals(server.compute())
    assert all("a session of 2 usable client(s)" in r for r in reasons), reasons


def test_handler_signed_sites_release_the_clipped_sum(
    tmp_path: Path, site_keys: Path, trained: list[int]
) -> None:
    server = Server(_registered_parties(tmp_path, site_keys), site_keys)
    for cid in range(3):
        server.ask(f"site{cid}", cid)
    unsigned = server.ask("site3", 3, keys=False)  # a site without a key folder
    assert "site" not in unsigned.content[MPC_RECORD]
    server.made_up(4, "ghost")
    replies = server.compute()
    assert not any(r.has_error() for r in replies), [r.error.reason for r in replies]
    assert all(r.content[MPC_RECORD]["sites-checked"] for r in replies)
    # the three signed sites, not the unsigned one nor the server's
    np.testing.assert_allclose(_released(replies), 3 * WEIGHT * STEP, atol=1e-3)
    share = replies[0].content["share"]
    assert np.asarray(share["clients"].numpy()).tolist() == [0, 1, 2]


def test_handler_a_site_with_a_key_folder_but_no_key_does_not_share(
    tmp_path: Path, site_keys: Path, trained: list[int]
) -> None:
    server = Server(_registered_parties(tmp_path, site_keys), site_keys)
    site = Context(1, 100, server.site_node("site9"), RecordDict(), {})
    reply = mpc_handlers.share(server.request(0), site)
    assert reply.has_error()
    assert "no signing key for site 'site9'" in reply.error.reason
    assert trained == []  # refused before training, nothing encrypted


def test_handler_party_requiring_signed_sites_refuses_without_a_registry(
    tmp_path: Path, site_keys: Path, trained: list[int]
) -> None:
    parties = Parties(tmp_path / "tls", {"policy-require-signed-sites": "true"})
    server = Server(parties, site_keys)
    for cid in range(3):
        server.ask(f"site{cid}", cid)
    reasons = _refusals(server.compute())
    assert all("policy-require-signed-sites=True" in r for r in reasons), reasons


def test_the_relayed_origins_are_parsed_strictly() -> None:
    """One site name and one signature per package, or none at all."""
    from fedsec.errors import ProtocolError
    from fedsec.flower.mpc import relayed_origins, share_origin

    assert relayed_origins([1, 2], {}) == {}
    got = relayed_origins([1, 2], {"sites": ["site0", ""], "signatures": [b"s", b""]})
    assert got == {1: Origin("site0", b"s")}  # "" is a site that sent none
    with pytest.raises(ProtocolError, match="one site name and one signature"):
        relayed_origins([1, 2], {"sites": ["site0"], "signatures": [b"s", b"t"]})
    # a share reply with other than three signatures is relayed as unsigned
    assert share_origin({"site": "site0", "signatures": [b"a", b"b"]}) == (
        "",
        [b"", b"", b""],
    )
    assert share_origin({"site": "site0", "signatures": [b"a", b"b", b"c"]}) == (
        "site0",
        [b"a", b"b", b"c"],
    )
