"""Starting and stopping a local deployment's processes, leaving none behind.

Every process a harness starts gets its own session (so a signal reaches its
children, e.g. a SuperNode's ClientApp processes) and inherits a marker in its
environment, ``FEDSEC_DEPLOYMENT_ID``. Flower starts some processes detached
(the SuperLink's SuperExec and ServerApp run in sessions of their own), so
stopping the process groups is not enough: :func:`stop_marked` finds every
process of this user whose environment carries the marker and ends it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

MARKER = "FEDSEC_DEPLOYMENT_ID"


def spawn(
    cmd: Sequence[str], env: dict[str, str], log: Path, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in a new session, output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        return subprocess.Popen(
            list(cmd),
            env=env,
            cwd=cwd,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def kill_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to ``proc``'s whole process group (it leads its session)."""
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def terminate(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the group, SIGKILL it after ``grace`` seconds; reap ``proc``."""
    if proc.poll() is None:
        kill_group(proc, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            kill_group(proc, signal.SIGKILL)
            proc.wait(grace)
    kill_group(proc, signal.SIGKILL)  # children that outlived their leader


def marked(marker: str) -> list[int]:
    """Pids of this user's processes whose environment holds ``MARKER=marker``."""
    needle = f"{MARKER}={marker}".encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or another user's
            continue
        if needle in environ + b"\0":
            found.append(int(entry.name))
    return found


def stop_marked(marker: str, grace: float = 5.0) -> list[int]:
    """SIGTERM, then SIGKILL, every process carrying ``marker``; return the pids."""
    pids = marked(marker)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.1)
    return pids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
