"""A Flower deployment on this machine, from the same kits real sites get.

Used by the deployment tests, the latency benchmark and as the first
rehearsal of a hospital federation (docs/deployment.md)::

    python -m experiments.deployment --sites 4                    # every mode
    python -m experiments.deployment --sites 3 --modes active,mpc --rounds 3
    python -m experiments.deployment --sites 3 --run-config "num-server-rounds=2"
    python -m experiments.deployment --sites 3 --insecure         # no TLS, no auth

**With kits (the default).** The harness writes a federation file for
``--sites`` sites ``site0 .. site<n-1>`` on 127.0.0.1 (sites 0-2 the MPC
compute parties when there are three or more; every site's policy takes part
in every mode, so one federation runs them all) and a data file per site,
then does what the coordinator and the sites would do:

1. ``fedsec provision`` (the console script) writes ``<workdir>/kits``;
2. the coordinator kit's ``start-superlink.sh`` starts the SuperLink (TLS,
   ``--enable-supernode-auth``, ``FEDSEC_RUNS_DIR`` in the kit);
3. ``fedsec register`` registers every site's SuperNode key;
4. each site kit's ``start-supernode.sh`` starts its SuperNode (the harness
   waits until each logged its node id);
5. ``flwr run . <connection> --stream`` submits the app; the server's round
   lines (and secure-aggregation stage lines) are printed as they arrive.

Every process binds to 127.0.0.1 only and inherits a marker in its
environment; on exit the harness stops its process groups and then every
process still carrying the marker (:mod:`experiments.processes`), whatever
happened.

**Vertical training.** A run config with ``vertical-model`` (or
``vertical_holders=k``) also makes sites ``0..k-1`` the data holders: their
kits' node config gets ``vertical-holder`` and ``vertical-data-path`` (their
columns of the task, written to ``<workdir>/vertical/holder<i>.csv``).

**``--insecure``** (``insecure=True``): no kits, plain HTTP and no node
authentication (anyone reaching the port can join); plain FL and the
semi-honest variant only. It exists to compare against.

Keep ``--workdir`` outside the project or in an ignored folder (the default
``.flwr/deployment`` is): ``flwr run .`` packs the project directory minus
``.gitignore``, and the workdir holds private keys and site data.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from experiments.processes import MARKER, kill_group, spawn, stop_marked, terminate
from experiments.simulate import ROOT, quiet_flower_env
from experiments.site_files import write_site_files
from fedsec.net import free_port
from fedsec.pki import NodeAuthKey, ServerTls
from fedsec.policy import MODES

CONNECTION = "fedsec"
INSECURE_CONNECTION = "deploy"
ALL_MODES = ("plain", "semi_honest", "active", "distributed_dp", "central_dp", "mpc")
MODE_CONFIGS = {
    "plain": "",
    "semi_honest": "secagg-mode='semi_honest'",
    "active": "secagg-mode='active'",
    "distributed_dp": "secagg-mode='active' dp-mode='distributed'",
    "central_dp": "dp-mode='central'",
    "mpc": "mpc-mode='clip_and_sum'",
}
ROUND_LINE = re.compile(r"round (\d+)/(\d+) \[(\w+)[^\]]*\]: accuracy=([0-9.na]+)")
RUN_ID = re.compile(r"Successfully started run (\d+)")
# lines worth showing live: the server's rounds and protocol stages, and errors
PROGRESS = re.compile(
    r"fedsec: |Successfully started run|Waiting for nodes|ERROR|Traceback"
)
OnLine = Callable[[str], None]


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


@dataclass
class Deployment:
    """Handles of a running local deployment.

    ``kits`` is the provisioning folder (``None`` with ``insecure=True``);
    ``tls`` and ``node_keys`` point into the kits.
    """

    workdir: Path
    superlink_address: str
    env: dict[str, str]
    marker: str
    connection: str
    flwr_home: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    tls: ServerTls | None = None
    node_keys: list[NodeAuthKey] = field(default_factory=list)
    kits: Path | None = None
    sites: list[str] = field(default_factory=list)
    site_procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    data_files: dict[str, Path] = field(default_factory=dict)
    last_run_id: int | None = None

    # ------------------------------------------------------------ flwr CLI
    def flwr_env(self) -> dict[str, str]:
        """Environment of the operator's ``flwr`` CLI (the coordinator kit's home)."""
        return {**self.env, "FLWR_HOME": str(self.flwr_home)}

    def flwr(
        self, *args: str, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run the ``flwr`` CLI against this deployment and return its output."""
        return subprocess.run(
            [_bin("flwr"), *args],
            cwd=ROOT,
            env=self.flwr_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def run(
        self,
        run_config: str = "",
        timeout: float = 900.0,
        *,
        on_line: OnLine | None = None,
        echo: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """``flwr run . <connection> --stream``, reading the log as it comes.

        ``on_line`` sees every line as it arrives (a test can act on a
        stage); ``echo`` prints the progress lines (rounds, stages, errors)
        with the elapsed time. The run is stopped after ``timeout`` seconds.
        """
        args = [_bin("flwr"), "run", str(ROOT), self.connection, "--stream"]
        if run_config:
            args += ["--run-config", run_config]
        proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=self.flwr_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        timer = threading.Timer(timeout, kill_group, (proc, signal.SIGKILL))
        timer.start()
        started = time.monotonic()
        lines: list[str] = []
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                if (match := RUN_ID.search(line)) is not None:
                    self.last_run_id = int(match.group(1))
                if echo and PROGRESS.search(line):
                    print(f"[{time.monotonic() - started:7.1f} s] {line.rstrip()}")
                    sys.stdout.flush()
                if on_line is not None:
                    on_line(line)
            code = proc.wait()
        finally:
            timer.cancel()
            terminate(proc)
        return subprocess.CompletedProcess(args, code, "".join(lines), "")

    def list_nodes(self) -> list[dict[str, Any]]:
        """``flwr supernode list --format json``: the SuperLink's node table."""
        proc = self.flwr("supernode", "list", self.connection, "--format", "json")
        if proc.returncode != 0:
            raise RuntimeError(f"flwr supernode list failed:\n{proc.stdout[-2000:]}")
        nodes: list[dict[str, Any]] = json.loads(proc.stdout)["nodes"]
        return nodes

    def register(self, keys: Sequence[NodeAuthKey]) -> None:
        """``flwr supernode register`` each public key (concurrently)."""
        procs = [
            subprocess.Popen(
                [
                    _bin("flwr"),
                    "supernode",
                    "register",
                    str(k.public_key),
                    self.connection,
                ],
                cwd=ROOT,
                env=self.flwr_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for k in keys
        ]
        failed = []
        for key, proc in zip(keys, procs, strict=True):
            out, _ = proc.communicate(timeout=120)
            if proc.returncode != 0:
                failed.append(f"{key.public_key.name}: {out[-1000:]}")
        if failed:
            raise RuntimeError("flwr supernode register failed:\n" + "\n".join(failed))

    # ----------------------------------------------------------- the sites
    def site_log(self, name: str) -> Path:
        """Where a site's SuperNode writes its output."""
        return self.workdir / "logs" / f"{name}.log"

    def start_site(self, name: str, wait: float = 90.0) -> subprocess.Popen[bytes]:
        """Start a site's SuperNode with its kit's own start script.

        Waits (up to ``wait`` seconds) until the SuperNode logged its node id.
        """
        if self.kits is None:
            raise RuntimeError("an insecure deployment has no kits")
        log = self.site_log(name)
        offset = log.stat().st_size if log.exists() else 0
        script = self.kits / "sites" / name / "start-supernode.sh"
        proc = spawn([str(script)], self.env, log)
        self.processes.append(proc)
        self.site_procs[name] = proc
        _wait_for_text(log, "SuperNode ID:", offset, proc, wait)
        return proc

    def kill_site(self, name: str) -> None:
        """SIGKILL a site's SuperNode and its ClientApp processes, no goodbye."""
        proc = self.site_procs[name]
        kill_group(proc, signal.SIGKILL)
        proc.wait(30)

    def start_supernode(
        self,
        name: str,
        site_file: Path,
        *,
        auth_key: NodeAuthKey | None = None,
        root_certificates: Path | None = None,
        node_config: str = "",
        extra: Sequence[str] = (),
    ) -> subprocess.Popen[bytes]:
        """Start a SuperNode that has no kit (an outsider, or ``insecure``).

        With TLS, ``root_certificates`` defaults to the deployment's CA; pass
        another CA or another key to play an outsider. Log in
        ``<workdir>/logs/<name>.log``.
        """
        cmd = [
            _bin("flower-supernode"),
            "--superlink",
            self.superlink_address,
            "--host",
            "127.0.0.1",
            "--port",
            str(free_port()),
            "--node-config",
            f'data-path="{site_file}" secagg-site="{name}" {node_config}'.strip(),
            *extra,
        ]
        if self.tls is None:
            cmd.append("--insecure")
        else:
            cmd += ["--root-certificates", str(root_certificates or self.tls.ca_cert)]
        if auth_key is not None:
            cmd += ["--auth-supernode-private-key", str(auth_key.private_key)]
        proc = spawn(cmd, self.env, self.site_log(name))
        self.processes.append(proc)
        return proc

    def data_file(self, name: str) -> Path:
        """The data file of site ``name``."""
        return self.data_files[name]

    @property
    def runs_dir(self) -> Path:
        """``FEDSEC_RUNS_DIR`` of the coordinator (per-run metrics and models)."""
        if self.kits is None:
            raise RuntimeError("an insecure deployment keeps no run outputs")
        return self.kits / "coordinator" / "runs"

    def leftovers(self) -> list[int]:
        """Pids of this deployment's processes still running."""
        from experiments.processes import marked

        return marked(self.marker)


def _wait_for_text(
    log: Path, text: str, offset: int, proc: subprocess.Popen[bytes], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists():
            with log.open("rb") as handle:
                handle.seek(offset)
                if text.encode() in handle.read():
                    return
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{log.stem} exited with {proc.returncode}:\n{tail}")
        time.sleep(0.2)
    raise TimeoutError(f"{log.stem}: no {text!r} after {timeout:.0f} s")


def _wait_for_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def federation_file(
    port: int,
    data: Sequence[Path],
    *,
    mpc_parties: bool,
    policy: dict[str, Any] | None = None,
    node_configs: dict[int, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The federation file of a loopback rehearsal with ``len(data)`` sites.

    Every site takes part in every mode (``policy-modes``) unless ``policy``
    says otherwise; sites 0-2 are the compute parties with ``mpc_parties``;
    ``node_configs`` adds node-config keys per site index.
    """
    sites: list[dict[str, Any]] = []
    for i, path in enumerate(data):
        site: dict[str, Any] = {
            "name": f"site{i}",
            "data-path": str(path.resolve()),
            "runtime-port": free_port(),
        }
        if mpc_parties and i < 3:
            site["mpc-party"] = i
            site["mpc-address"] = f"127.0.0.1:{free_port()}"
        if node_configs and i in node_configs:
            site["node-config"] = node_configs[i]
        sites.append(site)
    return {
        "coordinator": {"address": f"127.0.0.1:{port}", "listen": "127.0.0.1"},
        "connection": CONNECTION,
        "policy": {"modes": list(MODES), **(policy or {})},
        "sites": sites,
    }


def _fedsec(*args: str, env: dict[str, str]) -> None:
    proc = subprocess.run(
        [_bin("fedsec"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"fedsec {args[0]} failed: {proc.stderr.strip()[-2000:]}")


@contextmanager
def local_deployment(
    workdir: Path,
    num_sites: int = 3,
    *,
    insecure: bool = False,
    mpc_parties: bool | None = None,
    policy: dict[str, Any] | None = None,
    data_dir: Path | None = None,
    vertical_holders: int = 0,
    vertical_task: str = "breast_cancer",
) -> Iterator[Deployment]:
    """Start a SuperLink and ``num_sites`` SuperNodes from kits; stop them all on exit.

    ``mpc_parties`` (default: three sites or more) makes sites 0-2 the MPC
    compute parties; ``policy`` adds site policy values for every site.
    ``data_dir`` holds the sites' own files (``site<i>.csv``, e.g. from
    :mod:`experiments.rehearsal`) instead of the embedded task's.
    ``vertical_holders=k`` makes sites ``0..k-1`` the vertical data holders
    (node config ``vertical-holder`` and ``vertical-data-path``: their
    columns of ``vertical_task``). ``insecure=True`` starts everything
    without kits over plain HTTP.
    """
    parties = num_sites >= 3 if mpc_parties is None else mpc_parties
    if parties and num_sites < 3:
        raise ValueError("MPC needs at least 3 sites (the compute parties)")
    if insecure and (mpc_parties or policy or vertical_holders):
        raise ValueError("an insecure deployment has no kits: no MPC, no policy")
    if vertical_holders > num_sites:
        raise ValueError("more vertical holders than sites")
    quiet_flower_env()
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    marker = uuid.uuid4().hex
    bindir = Path(sys.executable).parent
    env = {
        **os.environ,
        MARKER: marker,
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    port = free_port()
    address = f"127.0.0.1:{port}"
    data = (
        site_files_in(data_dir, num_sites)
        if data_dir is not None
        else write_site_files(workdir / "data", num_sites)  # data/site<i>.csv
    )
    if insecure:
        deployment = _insecure(workdir, address, env, marker)
    else:
        vertical = _vertical_node_configs(
            workdir / "vertical", vertical_holders, vertical_task
        )
        deployment = _from_kits(
            workdir, port, env, marker, data, parties, policy, vertical
        )
    deployment.data_files = {f"site{i}": path for i, path in enumerate(data)}
    try:
        if insecure:
            superlink = [
                _bin("flower-superlink"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--insecure",
                "--disable-runtime-dependency-installation",
            ]
            deployment.processes.append(
                spawn(
                    superlink, deployment.flwr_env(), workdir / "logs" / "superlink.log"
                )
            )
            _wait_for_port(port)
            for i, path in enumerate(data):
                deployment.start_supernode(f"site{i}", path)
        else:
            assert deployment.kits is not None
            script = deployment.kits / "coordinator" / "start-superlink.sh"
            deployment.processes.append(
                spawn([str(script)], env, workdir / "logs" / "superlink.log")
            )
            _wait_for_port(port)
            _fedsec("register", "--dir", str(deployment.kits), env=env)
            for name in deployment.sites:
                deployment.start_site(name)
        yield deployment
    finally:
        for proc in reversed(deployment.processes):
            terminate(proc)
        stop_marked(marker)


def site_files_in(folder: Path, num_sites: int) -> list[Path]:
    """``site0.csv`` ... of ``folder`` (absolute), one per site."""
    paths = [(folder / f"site{i}.csv").resolve() for i in range(num_sites)]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: no {', '.join(missing)}")
    return paths


def data_dir_config(folder: Path, run_config: str) -> str:
    """The run config with the folder's ``schema.yaml`` / ``test.csv`` named."""
    extra = []
    for key, name in (("task-schema", "schema.yaml"), ("test-path", "test.csv")):
        path = (folder / name).resolve()
        if path.is_file() and key not in run_config:
            extra.append(f"{key}={json.dumps(str(path))}")
    return " ".join([run_config, *extra]).strip()


def _insecure(
    workdir: Path, address: str, env: dict[str, str], marker: str
) -> Deployment:
    home = workdir / "flwr-home"
    home.mkdir(exist_ok=True)
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "{INSECURE_CONNECTION}"\n\n'
        f'[superlink.{INSECURE_CONNECTION}]\naddress = "{address}"\ninsecure = true\n'
    )
    return Deployment(workdir, address, env, marker, INSECURE_CONNECTION, home)


def _vertical_node_configs(
    folder: Path, holders: int, task: str
) -> dict[int, dict[str, Any]]:
    """Node-config keys making sites ``0..holders-1`` the vertical data holders.

    Each holder gets its columns of ``task`` (an ``id`` column, its features,
    ``target`` at holder 0) in ``folder/holder<i>.csv``. Empty without holders.
    """
    if not holders:
        return {}
    from fedsec.data.vertical import vertical_tables

    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for i, frame in enumerate(vertical_tables(task, holders)):
        path = folder / f"holder{i}.csv"
        frame.to_csv(path, index=False)
        out[i] = {"vertical-holder": i, "vertical-data-path": str(path.resolve())}
    return out


def _from_kits(
    workdir: Path,
    port: int,
    env: dict[str, str],
    marker: str,
    data: Sequence[Path],
    parties: bool,
    policy: dict[str, Any] | None,
    node_configs: dict[int, dict[str, Any]],
) -> Deployment:
    spec = federation_file(
        port, data, mpc_parties=parties, policy=policy, node_configs=node_configs
    )
    spec_file = workdir / "federation.yaml"
    spec_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    kits = workdir / "kits"
    _fedsec("provision", str(spec_file), "--dir", str(kits), "--force", env=env)
    coordinator = kits / "coordinator"
    tls = ServerTls(
        ca_cert=coordinator / "superlink-tls" / "ca.pem",
        cert=coordinator / "superlink-tls" / "server.pem",
        key=coordinator / "superlink-tls" / "server.key",
    )
    sites = [s["name"] for s in spec["sites"]]
    keys = [
        NodeAuthKey(
            kits / "sites" / s / "node-auth.key", kits / "sites" / s / "node-auth.pub"
        )
        for s in sites
    ]
    home = coordinator / "flwr-home"
    # the connection the kit's flwr-env.sh writes, for CLI calls made from here
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "{CONNECTION}"\n\n[superlink.{CONNECTION}]\n'
        f'address = "127.0.0.1:{port}"\n'
        f"root-certificates = {json.dumps(str(tls.ca_cert))}\n"
    )
    return Deployment(
        workdir,
        f"127.0.0.1:{port}",
        env,
        marker,
        CONNECTION,
        home,
        tls=tls,
        node_keys=keys,
        kits=kits,
        sites=sites,
    )


def run_modes(
    deployment: Deployment,
    modes: Sequence[str],
    rounds: int,
    extra: str = "",
    timeout: float = 1800.0,
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run each mode in turn on the same federation, printing progress."""
    out = {}
    for mode in modes:
        config = f"num-server-rounds={rounds} {MODE_CONFIGS[mode]} {extra}".strip()
        print(f"== {mode}: {config}")
        out[mode] = deployment.run(config, timeout, echo=True)
        print(f"== {mode}: exit code {out[mode].returncode}")
    return out


def main() -> int:
    """Command-line entry point: provision, start, run the modes, stop."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=3)
    parser.add_argument(
        "--modes",
        default=",".join(ALL_MODES),
        help=f"comma-separated, from {', '.join(ALL_MODES)} (default: all)",
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--run-config", default="", help="one run with this run config instead of modes"
    )
    parser.add_argument("--workdir", type=Path, default=ROOT / ".flwr" / "deployment")
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="plain HTTP and no SuperNode authentication, no kits (to compare)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="the sites' own files (site<i>.csv, schema.yaml, test.csv), "
        "e.g. from `python -m experiments.rehearsal`",
    )
    parser.add_argument(
        "--analytics-first",
        action="store_true",
        help="run mode='analytics' (statistics into <workdir>/analytics) first",
    )
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = sorted(set(modes) - set(ALL_MODES))
    if unknown:
        parser.error(f"unknown mode(s) {', '.join(unknown)}")
    extra = "" if args.data_dir is None else data_dir_config(args.data_dir, "")
    vertical = re.search(
        r"vertical-model\s*=\s*['\"]?(logistic|linear)", args.run_config
    )
    holders = re.search(r"vertical-holders\s*=\s*(\d+)", args.run_config)
    started = time.perf_counter()
    with local_deployment(
        args.workdir,
        args.sites,
        insecure=args.insecure,
        data_dir=args.data_dir,
        vertical_holders=(int(holders.group(1)) if holders else 3) if vertical else 0,
    ) as dep:
        results: dict[str, subprocess.CompletedProcess[str]] = {}
        if args.analytics_first:
            out = json.dumps(str((dep.workdir / "analytics").resolve()))
            results["analytics"] = dep.run(
                f"{extra} mode='analytics' analytics-out={out}".strip(), echo=True
            )
        print(
            f"fedsec deployment: {len(dep.sites) or args.sites} sites up after "
            f"{time.perf_counter() - started:.1f} s"
        )
        if args.run_config:
            config = f"{args.run_config} {extra}".strip()
            results["run"] = dep.run(config, echo=True)
        else:
            results.update(run_modes(dep, modes, args.rounds, extra))
    failed = [name for name, proc in results.items() if proc.returncode != 0]
    print(
        f"fedsec deployment: {len(results) - len(failed)}/{len(results)} runs "
        f"succeeded in {time.perf_counter() - started:.1f} s"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
