"""The fedsec command: help, one-line errors, rotation, revocation, check-data."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from experiments.site_files import write_site_files
from fedsec.deploy.layout import Layout
from fedsec.deploy.nodes import save_nodes
from fedsec.identity import load_registry
from fedsec_cli.main import build_parser, main

SPEC = {
    "coordinator": {"address": "127.0.0.1:9092"},
    "sites": [{"name": f"site{i}"} for i in range(3)],
}


@pytest.fixture
def out(tmp_path: Path) -> Path:
    (tmp_path / "fed.yaml").write_text(yaml.safe_dump(SPEC))
    assert (
        main(["provision", str(tmp_path / "fed.yaml"), "--dir", str(tmp_path / "k")])
        == 0
    )
    return tmp_path / "k"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "command", ["provision", "register", "status", "rotate-keys", "revoke"]
)
def test_every_command_has_help(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "--dir" in capsys.readouterr().out
    assert command in build_parser().format_help()


def test_check_data_forwards_to_the_sites_checker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    [good] = write_site_files(tmp_path, 1)
    assert main(["check-data", str(good)]) == 0
    assert capsys.readouterr().out.startswith("ok: ")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    assert main(["check-data", str(bad)]) == 3  # a data problem
    assert "target" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["check-data", "--help"])
    assert "--schema" in capsys.readouterr().out  # its own options, forwarded


def test_errors_are_one_line_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.yaml").write_text("coordinator: {address: nowhere}\nsites: []\n")
    assert main(["provision", str(tmp_path / "bad.yaml"), "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fedsec: error: ")
    assert err.count("\n") == 1
    assert main(["status", "--dir", str(tmp_path / "nothing")]) == 2


def test_rotating_keys_replaces_them_and_prints_the_flwr_lines(
    out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = Layout(out)
    kit = layout.site("site1")
    save_nodes(layout.coordinator, {"site0": 11, "site1": 22, "site2": 33})
    old = {
        "auth": _sha(kit.path("node-auth.key")),
        "pub": _sha(layout.coordinator.site_key("site1")),
        "signing": _sha(kit.signing_key),
        "registry": load_registry(layout.public.root)["site1"],
        "other": _sha(layout.site("site0").path("node-auth.key")),
    }
    capsys.readouterr()
    assert main(["rotate-keys", "--dir", str(out), "site1"]) == 0
    printed = capsys.readouterr().out
    assert "flwr supernode unregister 22 fedsec" in printed
    assert "flwr supernode register site-keys/site1.pub fedsec --name site1" in printed
    assert _sha(kit.path("node-auth.key")) != old["auth"]
    assert _sha(layout.coordinator.site_key("site1")) != old["pub"]
    assert _sha(kit.signing_key) != old["signing"]
    new_key = load_registry(layout.public.root)["site1"]
    assert new_key != old["registry"]
    assert load_registry(layout.coordinator.registry_dir)["site1"] == new_key
    assert load_registry(kit.signing_key.parent)["site1"] == new_key
    assert _sha(layout.site("site0").path("node-auth.key")) == old["other"]
    assert "BEGIN" not in printed  # no key material on the screen


def test_signing_only_rotation_keeps_the_node_registration(
    out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _sha(Layout(out).site("site2").path("node-auth.key"))
    assert main(["rotate-keys", "--dir", str(out), "site2", "--signing-only"]) == 0
    assert "flwr supernode" not in capsys.readouterr().out
    assert _sha(Layout(out).site("site2").path("node-auth.key")) == before


def test_revoking_takes_a_site_out_for_good(
    tmp_path: Path, out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = Layout(out)
    save_nodes(layout.coordinator, {"site2": 33})
    assert main(["revoke", "--dir", str(out), "site2"]) == 0
    assert "flwr supernode unregister 33 fedsec" in capsys.readouterr().out
    assert "site2" not in load_registry(layout.public.root)
    assert "site2" not in load_registry(layout.coordinator.registry_dir)
    assert not layout.coordinator.site_key("site2").exists()
    assert "site2" not in layout.coordinator.register_script.read_text()
    assert main(["revoke", "--dir", str(out), "site2"]) == 2
    assert "revoked" in capsys.readouterr().err
    # it cannot come back under its old name
    assert main(["provision", str(tmp_path / "fed.yaml"), "--dir", str(out)]) == 2
    assert "new name" in capsys.readouterr().err
