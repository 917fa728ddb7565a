"""A Flower deployment on this machine: one SuperLink and N SuperNodes on 127.0.0.1.

Used by the deployment tests and for trying the hospital set-up locally::

    python -m experiments.deployment --sites 3 --run-config "num-server-rounds=2"
    python -m experiments.deployment --sites 3 --insecure   # no TLS, no node auth

Every process binds to 127.0.0.1 only. Each SuperNode reads its own site file
(``--node-config data-path=...``). Two modes:

**TLS + SuperNode authentication (the default)**, as the sites should be
deployed. At start the harness creates, with :mod:`fedsec.pki`, in
``<workdir>/pki`` (mode 0700; private keys 0600, never logged):

* a throwaway CA and a SuperLink certificate for IP 127.0.0.1 and DNS
  localhost. ``flower-superlink`` serves its one port (Fleet, Control and
  runtime APIs) over TLS with ``--ssl-ca-certfile/--ssl-certfile/
  --ssl-keyfile``; each ``flower-supernode`` gets ``--root-certificates
  ca.pem`` and the ``flwr`` CLI connection ``deploy`` gets
  ``root-certificates = ".../ca.pem"`` in ``$FLWR_HOME/config.toml``, so the
  SuperNodes and the CLI talk only to a server holding that certificate's key;
* one ECDSA P-384 key pair per site (``site<i>.key`` OpenSSH private key,
  ``site<i>.pub`` OpenSSH public key). The SuperLink runs with
  ``--enable-supernode-auth``, so it refuses self-registration: the harness
  registers every site's public key with ``flwr supernode register`` before
  the SuperNodes start, and each SuperNode signs its requests with
  ``--auth-supernode-private-key``. A SuperNode whose key was not registered
  is refused (it never gets a node id and exits).

The SuperNodes' own runtime API (SuperNode ↔ its ClientApp processes) stays
plain HTTP on 127.0.0.1; it never leaves the site's machine.

**MPC.** A run config with ``mpc-mode='clip_and_sum'`` (or
``mpc_parties=True``) makes sites 0-2 the compute parties: node config
``mpc-party``, ``mpc-address`` and ``mpc-tls-dir`` (a throwaway CA for the
parties in ``<workdir>/mpc-tls``), and every site gets ``mpc-ca-file`` to
check the parties' key attestations and ``secagg-keys-dir`` (signing keys
for the sites' names ``supernode<i>`` and the public registry, in
``<workdir>/site-keys``): the sites sign their packages and the parties count
only registered sites.

**Vertical training.** A run config with ``vertical-model`` (or
``vertical_holders=k``) also makes sites ``0..k-1`` the data holders: node
config ``vertical-holder`` and ``vertical-data-path`` (its columns of the
task, written to ``<workdir>/vertical/holder<i>.csv``), and every site takes
part in mode ``vertical`` (``policy-modes``).

**``--insecure``** (``insecure=True``): the previous behaviour, plain HTTP
everywhere and no node authentication; any process that reaches the port can
join as a SuperNode and read the traffic.

Keep ``--workdir`` outside the project or in an ignored folder (the default
``.flwr/deployment`` is): ``flwr run .`` packs the project directory minus
``.gitignore``, and the workdir holds private keys and site data.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from experiments.simulate import ROOT, quiet_flower_env
from experiments.site_files import write_site_files
from fedsec.net import free_port
from fedsec.pki import NodeAuthKey, ServerTls, make_node_auth_key, make_server_tls

CONNECTION = "deploy"


@dataclass
class Deployment:
    """Handles of a running local deployment.

    ``tls`` and ``node_keys`` are ``None`` / empty with ``insecure=True``.
    """

    workdir: Path
    superlink_address: str
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]]
    tls: ServerTls | None = None
    node_keys: list[NodeAuthKey] = field(default_factory=list)

    def flwr(
        self, *args: str, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run the ``flwr`` CLI (connection ``deploy``) and return its output."""
        return subprocess.run(
            [_bin("flwr"), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def run(
        self, run_config: str = "", timeout: float = 900.0
    ) -> subprocess.CompletedProcess[str]:
        """``flwr run . deploy --stream``: submit, stream logs to the end."""
        args = ["run", str(ROOT), CONNECTION, "--stream"]
        if run_config:
            args += ["--run-config", run_config]
        return self.flwr(*args, timeout=timeout)

    def list_nodes(self) -> list[dict[str, Any]]:
        """``flwr supernode list --format json``: the SuperLink's node table."""
        proc = self.flwr("supernode", "list", CONNECTION, "--format", "json")
        if proc.returncode != 0:
            raise RuntimeError(f"flwr supernode list failed:\n{proc.stdout[-2000:]}")
        nodes: list[dict[str, Any]] = json.loads(proc.stdout)["nodes"]
        return nodes

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
        """Start one more SuperNode (log in ``<workdir>/<name>.log``).

        With TLS, ``root_certificates`` defaults to the deployment's CA; pass
        another CA or another key to play an outsider.
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
        proc = _spawn(cmd, self.env, self.workdir / f"{name}.log")
        self.processes.append(proc)
        return proc

    def register(self, keys: Sequence[NodeAuthKey]) -> None:
        """``flwr supernode register`` each public key (concurrently)."""
        procs = [
            subprocess.Popen(
                [_bin("flwr"), "supernode", "register", str(k.public_key), CONNECTION],
                cwd=ROOT,
                env=self.env,
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


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def _spawn(
    cmd: Sequence[str], env: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:
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


def _connection_toml(address: str, tls: ServerTls | None) -> str:
    """The ``deploy`` connection of ``$FLWR_HOME/config.toml`` (flwr 1.42)."""
    lines = ["[superlink]", f'default = "{CONNECTION}"', ""]
    lines += [f"[superlink.{CONNECTION}]", f'address = "{address}"']
    if tls is None:
        lines.append("insecure = true")
    else:  # flwr requires an absolute path here
        lines.append(f"root-certificates = {json.dumps(str(tls.ca_cert.resolve()))}")
    return "\n".join(lines) + "\n"


@contextmanager
def local_deployment(
    workdir: Path,
    num_sites: int = 3,
    *,
    insecure: bool = False,
    mpc_parties: bool = False,
    data_dir: Path | None = None,
    vertical_holders: int = 0,
    vertical_task: str = "breast_cancer",
) -> Iterator[Deployment]:
    """Start a SuperLink and ``num_sites`` SuperNodes; stop them all on exit.

    By default with TLS and SuperNode authentication (see the module
    docstring); ``insecure=True`` runs everything over plain HTTP.
    ``mpc_parties=True`` makes sites 0-2 the MPC compute parties.
    ``data_dir`` holds the sites' own files (``site<i>.csv``, e.g. from
    :mod:`experiments.rehearsal`) instead of the embedded task's.
    """
    if mpc_parties and num_sites < 3:
        raise ValueError("MPC needs at least 3 sites (the compute parties)")
    quiet_flower_env()
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    bindir = Path(sys.executable).parent
    home = workdir / "flwr-home"
    env = {
        **os.environ,
        "FLWR_HOME": str(home),
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    port = free_port()
    address = f"127.0.0.1:{port}"
    tls = None if insecure else make_server_tls(workdir / "pki")
    keys = (
        []
        if insecure
        else [make_node_auth_key(workdir / "pki", f"site{i}") for i in range(num_sites)]
    )
    home.mkdir(exist_ok=True)
    (home / "config.toml").write_text(_connection_toml(address, tls))
    superlink = [_bin("flower-superlink"), "--host", "127.0.0.1", "--port", str(port)]
    superlink.append("--disable-runtime-dependency-installation")
    if tls is None:
        superlink.append("--insecure")
    else:
        superlink += [
            "--ssl-ca-certfile",
            str(tls.ca_cert),
            "--ssl-certfile",
            str(tls.cert),
            "--ssl-keyfile",
            str(tls.key),
            "--enable-supernode-auth",
        ]
    deployment = Deployment(workdir, address, env, [], tls, keys)
    try:
        deployment.processes.append(_spawn(superlink, env, workdir / "superlink.log"))
        _wait_for_port(port)
        deployment.register(keys)
        sites = (
            site_files_in(data_dir, num_sites)
            if data_dir is not None
            else write_site_files(workdir / "sites", num_sites)
        )
        names = [f"supernode{i}" for i in range(num_sites)]
        mpc = (
            _mpc_node_configs(workdir / "mpc-tls", workdir / "site-keys", names)
            if mpc_parties or vertical_holders
            else {}
        )
        vertical = _vertical_node_configs(
            workdir / "vertical", num_sites, vertical_holders, vertical_task
        )
        for i, path in enumerate(sites):
            deployment.start_supernode(
                names[i],
                path,
                auth_key=keys[i] if keys else None,
                node_config=f"{mpc.get(i, '')} {vertical.get(i, '')}".strip(),
            )
        yield deployment
    finally:
        for proc in reversed(deployment.processes):
            _terminate(proc)


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


def _mpc_node_configs(folder: Path, keys: Path, names: list[str]) -> dict[int, str]:
    """Node config making sites 0-2 the MPC parties and every site trust them.

    The parties' TLS identities come from a throwaway CA in ``folder`` (all
    on this machine; real parties each keep only their own key). Every site
    gets the CA certificate to check the parties' key attestations, and the
    key folder ``keys`` with a signing key per site name in ``names`` and the
    public registry (``secagg-keys-dir``; each site signs its packages, the
    parties count registered sites). Real sites would each hold only their own
    key and a copy of the registry.
    """
    from experiments.site_keys import ensure_named_keys
    from fedsec.mpc.tls import make_throwaway_pki

    if not (folder / "ca.pem").is_file():
        make_throwaway_pki(folder)
    ensure_named_keys(keys, names)
    keys.chmod(0o700)
    ca = json.dumps(str((folder / "ca.pem").resolve()))
    registry = json.dumps(str(keys.resolve()))
    out = {i: f"mpc-ca-file={ca} secagg-keys-dir={registry}" for i in range(len(names))}
    for i in range(3):
        address = json.dumps(f"127.0.0.1:{free_port()}")
        tls_dir = json.dumps(str(folder.resolve()))
        out[i] += f" mpc-party={i} mpc-address={address} mpc-tls-dir={tls_dir}"
    return out


def _vertical_node_configs(
    folder: Path, num_sites: int, holders: int, task: str
) -> dict[int, str]:
    """Node config making sites ``0..holders-1`` the vertical data holders.

    Each holder gets its columns of ``task`` (an ``id`` column, its features,
    ``target`` at holder 0) in ``folder/holder<i>.csv``; every site takes part
    in mode ``vertical``. Empty without holders.
    """
    if not holders:
        return {}
    from fedsec.data.vertical import vertical_tables

    if holders > num_sites:
        raise ValueError("more vertical holders than sites")
    folder.mkdir(parents=True, exist_ok=True)
    out = {i: 'policy-modes="vertical"' for i in range(num_sites)}
    for i, frame in enumerate(vertical_tables(task, holders)):
        path = folder / f"holder{i}.csv"
        frame.to_csv(path, index=False)
        data = json.dumps(str(path.resolve()))
        out[i] += f" vertical-holder={i} vertical-data-path={data}"
    return out


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
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="plain HTTP and no SuperNode authentication (the old behaviour)",
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
    mpc = re.search(r"mpc-mode\s*=\s*['\"]?clip_and_sum", args.run_config) is not None
    run_config = args.run_config
    if args.data_dir is not None:
        run_config = data_dir_config(args.data_dir, run_config)
    vertical = re.search(
        r"vertical-model\s*=\s*['\"]?(logistic|linear)", args.run_config
    )
    holders = re.search(r"vertical-holders\s*=\s*(\d+)", args.run_config)
    with local_deployment(
        args.workdir,
        args.sites,
        insecure=args.insecure,
        mpc_parties=mpc,
        data_dir=args.data_dir,
        vertical_holders=(int(holders.group(1)) if holders else 3) if vertical else 0,
    ) as dep:
        if args.analytics_first:
            out = json.dumps(str((dep.workdir / "analytics").resolve()))
            stats = dep.run(f"{run_config} mode='analytics' analytics-out={out}")
            print(stats.stdout[-20000:])
            if stats.returncode != 0:
                print(stats.stderr[-5000:], file=sys.stderr)
                return stats.returncode
        started = time.perf_counter()
        proc = dep.run(run_config)
        print(proc.stdout[-20000:])
        print(proc.stderr[-5000:], file=sys.stderr)
        mode = "insecure" if args.insecure else "TLS + SuperNode auth"
        print(
            f"fedsec deployment ({mode}): run finished in "
            f"{time.perf_counter() - started:.1f} s"
        )
        return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
