"""Attacks 1 and 2: a server asks a site for less than its policy allows.

1. *Config downgrade.* The server's run config names the variant, the
   threshold, the noise and the key folder. A site provisioned for the
   active variant must not run the semi-honest one with t = 1 because a
   message says so, nor take its trust anchors from the run config, nor mask
   with less noise than its own floor, nor unmask a sum whose survivors carry
   too little noise.
2. *t from a node list the server chooses.* A key set ``[victim, phantom]``
   gives t = 1 (semi-honest), ``[victim, colluder]`` t = 2 (active): both
   reveal the victim's update exactly.

Each attack is played twice where it makes the point: once against a site
whose policy is as permissive as the old code was (the recovery succeeds:
the attack is real), once against the site's actual policy (refused, one
line naming the policy key, nothing revealed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fedsec.crypto.kdf import X25519KeyPair
from fedsec.dp.distributed import DistributedDPParams
from fedsec.errors import PolicyError
from fedsec.identity import create_identities, load_registry
from fedsec.policy import MODES, SitePolicy
from fedsec.secagg.config import SecAggConfig, Variant
from fedsec.secagg.local import LocalFederation
from fedsec.secagg.messages import AdvertiseKeys, AdvertiseKeysRequest
from fedsec.secagg.server import SecAggServer
from fedsec.secagg.stages import Stage
from tests.attacks.sites import HandlerSite, Refused, run_protocol

VICTIM, OTHER = 101, 202
DIM = 16
# what the old code effectively enforced: any key set of two, any t >= 1
PERMISSIVE = SitePolicy(
    modes=frozenset(MODES), min_sites=2, min_threshold=1, min_threshold_fraction=0.01
)


def _update(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, DIM).astype(np.float32)


# ------------------------------------------------------------- attack 2
def _two_site_recovery(config: SecAggConfig, victim_policy: SitePolicy) -> np.ndarray:
    """The server runs a key set [victim, accomplice]; returns what it learns.

    The accomplice (a phantom, or a colluding registered site) contributes
    zeros, so the released sum *is* the victim's weighted update.
    """
    fed = LocalFederation(
        config, [VICTIM, OTHER], policy=PERMISSIVE, policies={VICTIM: victim_policy}
    )
    fed.setup()
    result = fed.round(
        1,
        {VICTIM: _update(1), OTHER: np.zeros(DIM, np.float32)},
        {VICTIM: 1, OTHER: 1},
    )
    return result.weighted_sum


@pytest.mark.parametrize(
    ("variant", "threshold"),
    [(Variant.SEMI_HONEST, 0.05), (Variant.ACTIVE, 0.6)],
    ids=["victim+phantom t=1", "victim+colluder t=2"],
)
def test_a_two_site_key_set_is_refused(variant: Variant, threshold: float) -> None:
    config = SecAggConfig(variant=variant, threshold=threshold, max_weight=1)
    # the attack is real: without a floor the server reads the update
    leaked = _two_site_recovery(config, PERMISSIVE)
    assert np.abs(leaked - _update(1)).max() < 1e-4
    # the site's default policy refuses the key set before drawing any key
    with pytest.raises(PolicyError, match="policy-min-sites=3 refuses 2 sites"):
        _two_site_recovery(config, SitePolicy(modes=frozenset(MODES)))


def test_a_threshold_of_one_is_refused_at_any_size() -> None:
    config = SecAggConfig(threshold=0.05, max_weight=1)  # t = 1 of 5
    fed = LocalFederation(config, [1, 2, 3, 4, 5])
    with pytest.raises(PolicyError, match="policy-min-threshold=2 refuses t=1"):
        fed.setup()


def test_colluders_raise_the_least_threshold() -> None:
    policy = SitePolicy(modes=frozenset(MODES), colluders=2)
    config = SecAggConfig(threshold=0.5, max_weight=1)  # t = 3 of 5
    fed = LocalFederation(config, [1, 2, 3, 4, 5], policy=policy)
    with pytest.raises(PolicyError, match="policy-colluders=2"):
        fed.setup()  # t = 3 < 2 + colluders: two colluders leave one honest input
    active = SecAggConfig(variant=Variant.ACTIVE, threshold=0.6, max_weight=1)
    policy = SitePolicy(modes=frozenset(MODES), colluders=1)
    with pytest.raises(PolicyError, match="2t > neighbourhood \\+ colluders"):
        LocalFederation(active, [1, 2, 3, 4, 5], policy=policy).setup()  # 2·3 ≤ 5+1


# ------------------------------------------------------------- attack 1
@pytest.fixture
def keys(tmp_path: Path) -> Path:
    """The consortium's site keys (made out of band) and the server's own."""
    create_identities(tmp_path / "sites", [f"site{i}" for i in range(5)])
    create_identities(tmp_path / "server", [f"site{i}" for i in range(5)])
    return tmp_path


def _active_site(keys: Path, i: int, **node: object) -> HandlerSite:
    """A site provisioned for the active variant (its key and the registry)."""
    config = {"secagg-keys-dir": str(keys / "sites"), "secagg-site": f"site{i}"}
    return HandlerSite(VICTIM + i, {**config, **node}, _update(i))


@pytest.mark.usefixtures("task_identity")
def test_a_site_provisioned_for_the_active_variant_refuses_a_downgrade(
    keys: Path,
) -> None:
    site = _active_site(keys, 0)
    nodes = tuple(VICTIM + i for i in range(5))
    request = AdvertiseKeysRequest(1, nodes)
    downgrade = {"secagg-mode": "semi_honest", "secagg-threshold": 0.05}
    with pytest.raises(Refused, match="policy-modes=active refuses semi_honest"):
        site.ask(request, downgrade)
    with pytest.raises(Refused, match="policy-min-sites=3 refuses 2 sites"):
        site.ask(AdvertiseKeysRequest(1, nodes[:2]), {"secagg-mode": "active"})
    strict = _active_site(keys, 0, **{"policy-min-threshold-fraction": 0.8})
    with pytest.raises(Refused, match=r"min-threshold-fraction=0\.8 refuses t=3"):
        strict.ask(request, {"secagg-mode": "active", "secagg-threshold": 0.6})
    # nothing was drawn: the site still accepts the key set its policy allows
    reply = site.ask(request, {"secagg-mode": "active"})
    assert isinstance(reply, AdvertiseKeys)
    assert reply.signature


@pytest.mark.usefixtures("task_identity")
def test_trust_anchors_come_from_the_node_config_only(keys: Path) -> None:
    nodes = tuple(VICTIM + i for i in range(5))
    request = AdvertiseKeysRequest(1, nodes)
    # the server names its own key folder in the run config
    asked = {"secagg-mode": "active", "secagg-keys-dir": str(keys / "server")}
    unprovisioned = HandlerSite(VICTIM, {"policy-modes": "active"}, _update(0))
    with pytest.raises(Refused, match="node config 'secagg-keys-dir'"):
        unprovisioned.ask(request, asked)
    # a provisioned site signs with its own key whatever the run config says
    reply = _active_site(keys, 0).ask(request, asked)
    assert isinstance(reply, AdvertiseKeys)
    from fedsec.crypto import signatures
    from fedsec.secagg import keyschedule as ks

    statement = ks.advertise_statement(
        1, VICTIM, reply.cipher_pk, reply.mask_pks, reply.commitment
    )
    signatures.verify(
        load_registry(keys / "sites")["site0"], statement, reply.signature
    )
    with pytest.raises(Exception, match="invalid signature"):
        signatures.verify(
            load_registry(keys / "server")["site0"], statement, reply.signature
        )


@pytest.mark.usefixtures("task_identity")
def test_active_sites_refuse_a_phantom_dressed_as_a_registered_site(
    keys: Path,
) -> None:
    """Phantoms cannot join an active key set: they cannot sign as a site."""
    sites = {VICTIM + i: _active_site(keys, i) for i in range(3)}
    phantom = 999
    config = SecAggConfig(variant=Variant.ACTIVE, threshold=0.6, max_weight=1)
    run = {"secagg-mode": "active", "secagg-threshold": 0.6, "secagg-max-weight": 1}
    server = SecAggServer(config)  # the attacker's server, no registry checks
    requests = server.begin_setup([*sites, phantom])
    for node, req in requests.items():
        if node == phantom:  # the server makes up the phantom's keys
            pairs = [X25519KeyPair.generate().public for _ in range(6)]
            advert = AdvertiseKeys(1, pairs[0], b"".join(pairs[1:]), b"c" * 32, b"")
            server.verify_keys[node] = b""
            server._ks.adverts[node] = advert  # type: ignore[union-attr]
            server._replied.add(node)
            continue
        server.verify_keys[node] = load_registry(keys / "sites")[f"site{node - VICTIM}"]
        server.handle(node, sites[node].ask(req, run))
    share_requests = server.advance()
    names = {**{u: f"site{u - VICTIM}" for u in sites}, phantom: "site4"}
    for node in sites:
        with pytest.raises(Refused, match="bad signature"):
            sites[node].ask(share_requests[node], run, sites=names)


# ---------------------------------------------------- distributed-DP floor
def _ddp_record(params: DistributedDPParams) -> dict[str, object]:
    return {**params.to_config(), "rotation-seed": b"r" * 32}


@pytest.mark.usefixtures("task_identity")
def test_a_site_refuses_to_mask_with_less_noise_than_its_floor() -> None:
    floor = {"policy-min-noise-multiplier": 1.0}
    sites = {VICTIM + i: HandlerSite(VICTIM + i, floor, _update(i)) for i in range(4)}
    run = {"secagg-mode": "semi_honest", "dp-mode": "distributed", "secagg-bits": 24}
    server = SecAggServer(SecAggConfig(bits=24, threshold=0.5, max_weight=1))
    weak = DistributedDPParams(
        dim=DIM, clip_norm=1.0, noise_multiplier=0.3, num_clients=4,
        min_survivors=4, ring_bits=24,
    )  # fmt: skip
    run_ = run_protocol(server, sites, run, dim=weak.padded_dim, ddp=_ddp_record(weak))
    assert len(run_.refusals) == 4
    assert all("policy-min-noise-multiplier=1.0" in r for r in run_.refusals.values())
    assert run_.aborted is not None  # no masked input left a site


@pytest.mark.usefixtures("task_identity")
def test_a_site_refuses_to_unmask_when_the_survivors_carry_too_little_noise() -> None:
    """Noise calibrated for 4 survivors; one drops: the sum carries too little."""
    params = DistributedDPParams(
        dim=DIM, clip_norm=1.0, noise_multiplier=1.0, num_clients=4,
        min_survivors=4, ring_bits=24,
    )  # fmt: skip
    full = params.effective_noise_multiplier(4)
    three = params.effective_noise_multiplier(3)
    floor = (full + three) / 2  # enough noise if all 4 survive, not with 3
    node = {"policy-min-noise-multiplier": floor}
    sites = {VICTIM + i: HandlerSite(VICTIM + i, node, _update(i)) for i in range(4)}
    run = {"secagg-mode": "semi_honest", "dp-mode": "distributed", "secagg-bits": 24}
    dropped = VICTIM + 3

    server = SecAggServer(SecAggConfig(bits=24, threshold=0.5, max_weight=1))
    run_ = run_protocol(
        server,
        sites,
        run,
        dim=params.padded_dim,
        ddp=_ddp_record(params),
        silent={Stage.MASKED_INPUT: {dropped}},
    )
    # every survivor asked to unmask refused, naming its floor: nothing released
    assert run_.refusals
    assert dropped not in run_.refusals
    assert all(
        f"policy-min-noise-multiplier={floor}" in r for r in run_.refusals.values()
    )
    assert run_.aborted is not None
    assert run_.aborted.stage == "unmask"
    # with all four surviving, the same sites unmask
    sites = {VICTIM + i: HandlerSite(VICTIM + i, node, _update(i)) for i in range(4)}
    server = SecAggServer(SecAggConfig(bits=24, threshold=0.5, max_weight=1))
    run_ = run_protocol(
        server, sites, run, dim=params.padded_dim, ddp=_ddp_record(params)
    )
    assert run_.refusals == {}
    assert run_.aborted is None
    assert server.result().survivors == tuple(sites)


@pytest.mark.usefixtures("task_identity")
def test_colluders_noise_does_not_count_towards_the_floor() -> None:
    """A colluder tells the server its noise: only the others' protects the site."""
    params = DistributedDPParams(
        dim=DIM, clip_norm=1.0, noise_multiplier=1.0, num_clients=4,
        min_survivors=4, ring_bits=24,
    )  # fmt: skip
    floor = (
        params.effective_noise_multiplier(4) + params.effective_noise_multiplier(3)
    ) / 2
    run = {
        "secagg-mode": "semi_honest", "secagg-threshold": 0.75,
        "dp-mode": "distributed", "secagg-bits": 24,
    }  # fmt: skip
    for colluders, refused in ((0, False), (1, True)):
        node = {"policy-min-noise-multiplier": floor, "policy-colluders": colluders}
        sites = {
            VICTIM + i: HandlerSite(VICTIM + i, node, _update(i)) for i in range(4)
        }
        server = SecAggServer(SecAggConfig(bits=24, threshold=0.75, max_weight=1))
        run_ = run_protocol(
            server, sites, run, dim=params.padded_dim, ddp=_ddp_record(params)
        )
        assert bool(run_.refusals) is refused
        if refused:
            assert all("min-noise-multiplier" in r for r in run_.refusals.values())
