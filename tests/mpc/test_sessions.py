"""A party's session log: each session at most once, across restarts, fail closed."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from fedsec.errors import ConfigError, MaliciousServerError
from fedsec.mpc.sessions import HEADER, FileSessionLog, MemorySessionLog


def test_a_session_is_claimed_once_and_remembered_after_a_restart(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sessions-party0.log"
    log = FileSessionLog(path, node_id=0)
    log.claim(7)
    log.claim(2**63 - 1)
    with pytest.raises(MaliciousServerError, match="already computed") as info:
        log.claim(7)
    assert info.value.node_id == 0
    assert 7 in log
    again = FileSessionLog(path, node_id=0)  # the party restarted
    with pytest.raises(MaliciousServerError):
        again.claim(2**63 - 1)
    again.claim(8)
    with pytest.raises(MaliciousServerError):
        log.claim(8)  # the first object sees what the second appended
    assert path.read_bytes() == HEADER + b"".join(
        b"%016x\n" % s for s in (7, 2**63 - 1, 8)
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("session", [-1, 2**63, "7"])
def test_session_ids_outside_63_bits_are_refused(tmp_path: Path, session) -> None:
    with pytest.raises(MaliciousServerError):
        FileSessionLog(tmp_path / "s.log").claim(session)
    with pytest.raises(MaliciousServerError):
        MemorySessionLog().claim(session)


def test_memory_log_refuses_a_replay() -> None:
    log = MemorySessionLog(node_id=2)
    log.claim(1)
    with pytest.raises(MaliciousServerError):
        log.claim(1)


def test_concurrent_claims_of_one_session_let_exactly_one_through(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.log"
    outcomes: list[str] = []

    def claim() -> None:
        try:
            FileSessionLog(path).claim(42)  # separate objects: only the flock
            outcomes.append("ok")
        except MaliciousServerError:
            outcomes.append("refused")

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok"] + ["refused"] * 7


def test_a_shrunk_or_replaced_log_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.log"
    log = FileSessionLog(path)
    log.claim(1)
    log.claim(2)
    data = path.read_bytes()
    path.write_bytes(data[: len(HEADER) + 17])  # someone drops the last entry
    with pytest.raises(ConfigError, match="shrank"):
        log.claim(2)
    path.unlink()  # or deletes the log
    with pytest.raises(ConfigError, match="replaced"):
        log.claim(2)


@pytest.mark.parametrize(
    "content",
    [
        b"not a log\n",
        HEADER + b"000000000000000",  # a partial line
        HEADER + b"00000000000000zz\n",
        HEADER + b"0000 00000000001\n",
        HEADER + b"8000000000000000\n",  # beyond 63 bits
    ],
)
def test_a_corrupt_log_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "s.log"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(ConfigError, match=r"s\.log"):
        FileSessionLog(path).claim(1)


def test_a_log_others_may_write_or_a_symlink_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.log"
    FileSessionLog(path).claim(1)
    path.chmod(0o666)
    with pytest.raises(ConfigError, match="writable only by its owner"):
        FileSessionLog(path).claim(2)
    link = tmp_path / "link.log"
    os.symlink(tmp_path / "elsewhere.log", link)
    with pytest.raises(ConfigError, match="cannot be opened"):
        FileSessionLog(link).claim(2)


def test_reads_and_writes_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "s.log"
    small = len(HEADER) + 2 * 17
    log = FileSessionLog(path, max_bytes=small)
    log.claim(1)
    log.claim(2)
    with pytest.raises(ConfigError, match="full"):
        log.claim(3)
    with pytest.raises(ConfigError, match="exceeds"):
        FileSessionLog(path, max_bytes=small - 1).claim(3)
