"""fedsec provision: the kits, their modes, re-runs that only add, bad input."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from flwr.common.config import parse_config_args

from fedsec.crypto.signatures import verify_key_of
from fedsec.deploy.files import mode_of
from fedsec.deploy.kits import provision
from fedsec.deploy.layout import Layout
from fedsec.deploy.spec import load_spec, parse_spec
from fedsec.errors import ConfigError
from fedsec.identity import load_registry, load_signing_key
from fedsec.mpc.tls import TlsIdentity, attest_party_key, verify_party_keys
from fedsec.pki import make_server_tls
from fedsec.policy import SitePolicy, TrustAnchors


def federation(sites: int = 4, parties: bool = True, **extra: object) -> dict:
    items = []
    for i in range(sites):
        site: dict = {"name": f"hospital-{i}"}
        if parties and i < 3:
            site |= {"mpc-party": i, "mpc-address": f"10.0.0.{i + 1}:9201"}
        items.append(site)
    return {"coordinator": {"address": "fl.example.org:9092"}, "sites": items, **extra}


def write(tmp_path: Path, spec: dict, name: str = "federation.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec))
    return path


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def kits(tmp_path: Path) -> Layout:
    provision(load_spec(write(tmp_path, federation())), tmp_path / "kits")
    return Layout(tmp_path / "kits")


def test_secrets_are_0600_and_every_folder_0700(kits: Layout) -> None:
    for path in kits.out.rglob("*"):
        if path.is_dir():
            assert mode_of(path) == 0o700, path
        elif path.suffix == ".key":
            assert mode_of(path) == 0o600, path
        else:
            assert mode_of(path) & 0o077 in (0o044, 0o055), path  # public, not writable
    secrets = sorted(
        p.relative_to(kits.out).as_posix() for p in kits.out.rglob("*.key")
    )
    assert secrets == sorted(
        ["coordinator/superlink-tls/server.key"]
        + [f"sites/hospital-{i}/node-auth.key" for i in range(4)]
        + [f"sites/hospital-{i}/secagg-keys/hospital-{i}.key" for i in range(4)]
        + [f"sites/hospital-{i}/mpc-tls/party-{i}.key" for i in range(3)]
    )


def test_a_site_kit_is_what_its_supernode_reads(
    kits: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = kits.site("hospital-1")
    monkeypatch.chdir(kit.root)  # the start script runs from the kit
    # flwr-supernode parses --node-config node-config.toml exactly like this
    config = parse_config_args(["node-config.toml"])
    assert config["secagg-site"] == "hospital-1"
    assert config["mpc-party"] == 1
    anchors = TrustAnchors.from_node_config(config)
    assert anchors.site_name == "hospital-1"
    policy = SitePolicy.from_node_config(config)
    assert policy.modes == {"active", "mpc"}  # what the kit is provisioned for
    registry = load_registry(anchors.require_keys_dir())
    key = load_signing_key(anchors.require_keys_dir(), "hospital-1")
    assert registry["hospital-1"] == verify_key_of(key)
    assert set(registry) == {f"hospital-{i}" for i in range(4)}
    assert anchors.party_tls_dir is not None


def test_the_parties_keys_verify_at_a_site_that_is_no_party(kits: Layout) -> None:
    keys, certs, sigs = [], [], []
    for i in range(3):
        tls = kits.site(f"hospital-{i}").path("mpc-tls")
        identity = TlsIdentity(
            tls / "ca.pem", tls / f"party-{i}.pem", tls / f"party-{i}.key"
        )
        cert, sig = attest_party_key(identity, i, bytes([i]) * 32)
        keys.append(bytes([i]) * 32)
        certs.append(cert)
        sigs.append(sig)
        assert sorted(p.name for p in tls.iterdir()) == [
            "ca.pem",
            f"party-{i}.key",
            f"party-{i}.pem",
        ]
    ca = kits.site("hospital-3").path("mpc-ca.pem")
    verify_party_keys(ca, keys, certs, sigs)
    assert not kits.site("hospital-3").path("mpc-tls").exists()


def test_the_superlink_certificate_names_the_coordinator_and_chains_to_the_sites_ca(
    kits: Layout,
) -> None:
    cert = x509.load_pem_x509_certificate(kits.coordinator.cert.read_bytes())
    ca = x509.load_pem_x509_certificate(
        kits.site("hospital-3").path("superlink-ca.pem").read_bytes()
    )
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["fl.example.org"]
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days >= 365


def test_start_scripts_name_every_flag_and_parse(kits: Layout) -> None:
    site = kits.site("hospital-0").path("start-supernode.sh")
    text = site.read_text()
    for flag in (
        "--superlink fl.example.org:9092",
        "--root-certificates superlink-ca.pem",
        "--auth-supernode-private-key node-auth.key",
        "--node-config node-config.toml",
        "--host 127.0.0.1",
    ):
        assert flag in text
    link = kits.coordinator.start_script.read_text()
    for flag in ("--ssl-certfile", "--ssl-keyfile", "--enable-supernode-auth"):
        assert flag in link
    register = kits.coordinator.register_script.read_text()
    assert register.count("flwr supernode register site-keys/") == 4
    for script in (
        site,
        kits.coordinator.start_script,
        kits.coordinator.register_script,
    ):
        subprocess.run(["sh", "-n", str(script)], check=True)


def test_rerunning_adds_a_site_and_touches_no_other(
    tmp_path: Path, kits: Layout
) -> None:
    before = {s: digest(kits.site(f"hospital-{s}").root) for s in range(4)}
    tls_before = digest(kits.coordinator.tls_dir)
    bigger = federation(sites=5)
    report = provision(load_spec(write(tmp_path, bigger, "bigger.yaml")), kits.out)
    assert report.created == ["hospital-4"]
    assert report.kept == [f"hospital-{i}" for i in range(4)]
    assert {s: digest(kits.site(f"hospital-{s}").root) for s in range(4)} == before
    assert digest(kits.coordinator.tls_dir) == tls_before
    assert "hospital-4" in load_registry(kits.coordinator.registry_dir)
    assert "hospital-4" in load_registry(kits.public.root)
    assert "site-keys/hospital-4.pub" in kits.coordinator.register_script.read_text()
    assert report.notes  # the other sites need the new registry


def test_the_same_file_twice_changes_nothing(tmp_path: Path, kits: Layout) -> None:
    before = digest(kits.out)
    provision(load_spec(tmp_path / "federation.yaml"), kits.out)
    assert digest(kits.out) == before


def test_nothing_is_replaced_without_force(tmp_path: Path, kits: Layout) -> None:
    moved = federation()
    moved["coordinator"]["address"] = "other.example.org:9092"
    with pytest.raises(ConfigError, match="--force"):
        provision(load_spec(write(tmp_path, moved, "moved.yaml")), kits.out)
    old_key = kits.site("hospital-0").path("node-auth.key").read_bytes()
    provision(load_spec(tmp_path / "moved.yaml"), kits.out, force=True)
    assert kits.site("hospital-0").path("node-auth.key").read_bytes() != old_key


def test_a_stray_kit_folder_is_not_overwritten(tmp_path: Path) -> None:
    stray = tmp_path / "kits" / "sites" / "hospital-0"
    stray.mkdir(parents=True)
    with pytest.raises(ConfigError, match="exists"):
        provision(load_spec(write(tmp_path, federation())), tmp_path / "kits")


def test_the_consortiums_own_tls_is_checked_and_used(tmp_path: Path) -> None:
    own = make_server_tls(tmp_path / "pki", ("fl.example.org",))
    spec = federation(
        tls={"ca-cert": "pki/ca.pem", "cert": "pki/server.pem", "key": "pki/server.key"}
    )
    spec["coordinator"]["tls"] = spec.pop("tls")
    provision(load_spec(write(tmp_path, spec)), tmp_path / "kits")
    layout = Layout(tmp_path / "kits")
    assert layout.coordinator.cert.read_bytes() == own.cert.read_bytes()
    assert layout.site("hospital-0").path("superlink-ca.pem").read_bytes() == (
        own.ca_cert.read_bytes()
    )
    assert mode_of(layout.coordinator.key) == 0o600
    wrong = federation()
    wrong["coordinator"]["address"] = "elsewhere.example.org:9092"
    wrong["coordinator"]["tls"] = spec["coordinator"]["tls"]
    with pytest.raises(ConfigError, match=r"does not name 'elsewhere\.example\.org'"):
        provision(load_spec(write(tmp_path, wrong, "w.yaml")), tmp_path / "kits2")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.update(extra=1), "unknown key"),
        (lambda f: f["coordinator"].update(address="no-port"), "host:port"),
        (lambda f: f["coordinator"].update(address="fl.example.org:99999"), "outside"),
        (lambda f: f["sites"].append({"name": "hospital-0"}), "listed twice"),
        (lambda f: f["sites"][0].update(name="../etc"), "letters, digits"),
        (lambda f: f["sites"][2].update(**{"mpc-party": 1}), "exactly three compute"),
        (lambda f: f["sites"][3].update(policy={"min-sites": 1}), "min-sites"),
        (lambda f: f.update(policy={"modes": "bogus"}), "policy-modes"),
        (lambda f: f["sites"][0].update(**{"mpc-party": 5}), "0, 1 or 2"),
        (lambda f: f["sites"][3].update(**{"mpc-address": "x:1"}), "without mpc-party"),
    ],
)
def test_bad_federation_files_are_one_line_errors(change, message: str) -> None:
    spec = federation()
    change(spec)
    with pytest.raises(ConfigError, match=message) as info:
        parse_spec(spec)
    assert "\n" not in str(info.value)


def test_a_huge_or_broken_file_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (2 << 20))
    with pytest.raises(ConfigError, match="at most 1 MiB"):
        load_spec(big)
    broken = tmp_path / "broken.yaml"
    broken.write_text("coordinator: [\n")
    with pytest.raises(ConfigError, match="not a YAML federation file"):
        load_spec(broken)
    tagged = tmp_path / "tagged.yaml"
    tagged.write_text("!!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError):
        load_spec(tagged)


def test_extra_node_config_keys_reach_the_kit_but_never_replace_its_own(
    tmp_path: Path,
) -> None:
    spec = federation()
    spec["sites"][0]["node-config"] = {"vertical-holder": 0, "vertical-workers": 2}
    provision(parse_spec(spec), tmp_path / "kits")
    text = Layout(tmp_path / "kits").site("hospital-0").path("node-config.toml")
    config = parse_config_args([str(text)])
    assert (config["vertical-holder"], config["vertical-workers"]) == (0, 2)
    for key in ("secagg-keys-dir", "policy-min-sites"):
        spec["sites"][0]["node-config"] = {key: "x"}
        with pytest.raises(ConfigError, match="written by the kit"):
            parse_spec(spec)
