"""A Flower deployment on this machine: one SuperLink and N SuperNodes on 127.0.0.1.

Used by the deployment tests and for trying the hospital set-up locally::

    python -m experiments.deployment --sites 3 --run-config "num-server-rounds=2"

Every process binds to 127.0.0.1 only. Each SuperNode reads its own site file
(``--node-config data-path=...``). This harness runs ``--insecure``; TLS and
SuperNode authentication are configured the same way with the certificate and
key flags of ``flower-superlink`` / ``flower-supernode``.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from experiments.simulate import ROOT, quiet_flower_env
from experiments.site_files import write_site_files
from fedsec.net import free_port


@dataclass
class Deployment:
    """Handles of a running local deployment."""

    workdir: Path
    superlink_address: str
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]]

    def run(
        self, run_config: str = "", timeout: float = 900.0
    ) -> subprocess.CompletedProcess[str]:
        """``flwr run . deploy --stream``: submit, stream logs to the end."""
        cmd = [
            str(Path(sys.executable).with_name("flwr")),
            "run",
            str(ROOT),
            "deploy",
            "--stream",
        ]
        if run_config:
            cmd += ["--run-config", run_config]
        return subprocess.run(
            cmd,
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _spawn(
    cmd: Sequence[str], env: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    return subprocess.Popen(
        list(cmd),
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait_for_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


@contextmanager
def local_deployment(workdir: Path, num_sites: int = 3) -> Iterator[Deployment]:
    """Start a SuperLink and ``num_sites`` SuperNodes; stop them all on exit."""
    quiet_flower_env()
    workdir.mkdir(parents=True, exist_ok=True)
    bindir = Path(sys.executable).parent
    env = {
        **os.environ,
        "FLWR_HOME": str(workdir / "flwr-home"),
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    port = free_port()
    address = f"127.0.0.1:{port}"
    (workdir / "flwr-home").mkdir(exist_ok=True)
    (workdir / "flwr-home" / "config.toml").write_text(
        f'[superlink]\ndefault = "deploy"\n\n[superlink.deploy]\n'
        f'address = "{address}"\ninsecure = true\n'
    )
    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes.append(
            _spawn(
                [
                    str(bindir / "flower-superlink"),
                    "--insecure",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--disable-runtime-dependency-installation",
                ],
                env,
                workdir / "superlink.log",
            )
        )
        _wait_for_port(port)
        sites = write_site_files(workdir / "sites", num_sites)
        for i, path in enumerate(sites):
            processes.append(
                _spawn(
                    [
                        str(bindir / "flower-supernode"),
                        "--insecure",
                        "--superlink",
                        address,
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(free_port()),
                        "--node-config",
                        f'data-path="{path}" secagg-site="site{i}"',
                    ],
                    env,
                    workdir / f"supernode{i}.log",
                )
            )
        yield Deployment(workdir, address, env, processes)
    finally:
        for proc in reversed(processes):
            _terminate(proc)


def _terminate(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, 15)
        proc.wait(grace)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        proc.wait(grace)


ROUND_LINE = re.compile(r"round (\d+)/(\d+) \[(\w+)[^\]]*\]: accuracy=([0-9.na]+)")


def main() -> int:
    """Command-line entry point: run once, print the round lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=3)
    parser.add_argument("--run-config", default="num-server-rounds=2")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".flwr" / "deployment")
    args = parser.parse_args()
    with local_deployment(args.workdir, args.sites) as deployment:
        started = time.perf_counter()
        proc = deployment.run(args.run_config)
        print(proc.stdout[-20000:])
        print(proc.stderr[-5000:], file=sys.stderr)
        print(
            f"fedsec deployment: run finished in {time.perf_counter() - started:.1f} s"
        )
        return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
