"""Running Flower's own ``flwr`` CLI for a coordinator kit.

The kit's ``flwr-home`` is the CLI's ``FLWR_HOME``; its ``config.toml`` names
one connection that trusts only the SuperLink's CA (flwr 1.42 wants the
certificate's absolute path, so the file is rewritten from the kit's location
before each call, as ``flwr-env.sh`` does for the shell scripts).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from fedsec.deploy import record
from fedsec.deploy.layout import Layout
from fedsec.errors import ConfigError

QUIET_ENV = {
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_DISABLE_UPDATE_CHECK": "1",
    "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
}


def executable(name: str) -> str:
    """``name`` from this Python's environment, else from ``PATH``."""
    sibling = Path(sys.executable).with_name(name)
    if sibling.is_file():
        return str(sibling)
    found = shutil.which(name)
    if found is None:
        raise ConfigError(f"{name} is not installed (pip install 'flwr==1.42.*')")
    return found


@dataclass(frozen=True)
class Connection:
    """The flwr CLI's view of one provisioned federation."""

    layout: Layout
    name: str
    address: str

    @classmethod
    def of(cls, out: Path) -> Connection:
        """The connection of the federation provisioned in ``out``."""
        layout = Layout(out.resolve())
        if not layout.record.is_file():
            raise ConfigError(f"{out}: no {layout.record.name}; run fedsec provision")
        rec = record.load(layout)
        return cls(layout, rec.connection, rec.address)

    def env(self) -> dict[str, str]:
        """Environment of a ``flwr`` call: the kit's FLWR_HOME, Flower quiet."""
        home = self.layout.coordinator.flwr_home
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        ca = json.dumps(str(self.layout.coordinator.ca_cert.resolve()))
        (home / "config.toml").write_text(
            f'[superlink]\ndefault = "{self.name}"\n\n'
            f"[superlink.{self.name}]\n"
            f"address = {json.dumps(self.address)}\n"
            f"root-certificates = {ca}\n"
        )
        return {**os.environ, **QUIET_ENV, "FLWR_HOME": str(home.resolve())}

    def run(
        self, *args: str, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """``flwr <args>`` against this federation; output captured."""
        try:
            return subprocess.run(
                [executable("flwr"), *args],
                env=self.env(),
                cwd=self.layout.coordinator.root,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ConfigError(
                f"flwr {args[0]} {args[1] if len(args) > 1 else ''}: no answer from "
                f"{self.address} within {timeout:.0f} s"
            ) from None

    def json(self, *args: str, timeout: float = 60.0) -> dict[str, object]:
        """``flwr <args> --format json``, parsed; a one-line error otherwise."""
        proc = self.run(*args, "--format", "json", timeout=timeout)
        try:
            value = json.loads(proc.stdout)
        except ValueError:
            value = None
        if not isinstance(value, dict) or not value.get("success", False):
            detail = _last_line(proc.stdout + proc.stderr)
            raise ConfigError(f"flwr {' '.join(args[:2])} failed: {detail}")
        return value


def _last_line(text: str) -> str:
    """The error message of a failed flwr call (its JSON or its last line)."""
    try:
        value = json.loads(text)
        if isinstance(value, dict) and "error-message" in value:
            text = str(value["error-message"])
    except ValueError:
        pass
    lines = [line.strip(" │╭╮╰╯─\t") for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("Error")]
    return lines[-1] if lines else "no output"
