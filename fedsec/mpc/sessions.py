"""A compute party's log of the sessions it computed: each one at most once.

Every clip-and-sum session releases a fresh noise draw. A server that could
have the parties run the same session (the same client packages) again and
again would average that noise away (n re-runs divide its standard
deviation by sqrt(n), yet the accountant counts one release), so a party
computes a session id at most once, and remembers that across restarts. Client
packages are bound to their session id (AES-GCM associated data), so a new
session id cannot reuse old packages either.

:class:`FileSessionLog` is the party's persistent log: an append-only file,
created 0600, one line of 16 hex digits per session after a header line.
:meth:`~FileSessionLog.claim` takes an exclusive ``flock``, reads only what
was appended since its last read (at most ``max_bytes`` in all), refuses a
logged id, appends the new one and syncs it (``fsync``), all before the party
computes anything. A log that shrank, was replaced, is writable by others or
does not parse is refused (fail closed). :class:`MemorySessionLog` remembers
sessions for the object's lifetime only (tests, the simulation shortcut).
"""

from __future__ import annotations

import fcntl
import os
import stat
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from fedsec.errors import ConfigError, MaliciousServerError

HEADER = b"fedsec-mpc-sessions v1\n"
MAX_SESSION = 2**63  # session ids are in [0, 2^63): a signed 64-bit record value
MAX_LOG_BYTES = 64 << 20  # ~3.9 million sessions
_LINE = 17  # 16 hex digits and a newline


class SessionLog(Protocol):
    """Where a party records the sessions it computed."""

    def claim(self, session: int) -> None:
        """Record ``session`` as computed, durably, before any computing starts.

        Raises
        ------
        MaliciousServerError
            If ``session`` was claimed before (a replayed session).
        """
        ...


def check_session_id(session: int, node_id: int | None = None) -> None:
    """Refuse a session id outside ``[0, 2^63)``."""
    if not isinstance(session, int) or not 0 <= session < MAX_SESSION:
        raise MaliciousServerError(
            "a session id must be an integer in [0, 2^63)",
            stage="session",
            node_id=node_id,
        )


def _replayed(session: int, where: str, node_id: int | None) -> MaliciousServerError:
    return MaliciousServerError(
        f"session {session:#x} was already computed by this party ({where}); "
        "a session is computed at most once",
        stage="session",
        node_id=node_id,
    )


class MemorySessionLog:
    """Sessions remembered for this object's lifetime only (no persistence)."""

    def __init__(self, *, node_id: int | None = None) -> None:
        self.node_id = node_id
        self._seen: set[int] = set()
        self._lock = threading.Lock()

    def claim(self, session: int) -> None:
        """Record ``session``; refuse one seen before."""
        check_session_id(session, self.node_id)
        with self._lock:
            if session in self._seen:
                raise _replayed(session, "in memory", self.node_id)
            self._seen.add(session)


class FileSessionLog:
    """A party's persistent, append-only session log (see the module docstring).

    Parameters
    ----------
    path
        The log file; created 0600 if absent (its folder must exist).
    node_id
        The party index, for error messages.
    max_bytes
        Largest log read or written; beyond it the party refuses to compute
        until the operator starts a new log together with new party keys
        (old packages cannot be opened with new keys).
    """

    def __init__(
        self, path: Path, *, node_id: int | None = None, max_bytes: int = MAX_LOG_BYTES
    ) -> None:
        self.path = Path(path)
        self.node_id = node_id
        self.max_bytes = max_bytes
        self._seen: set[int] = set()
        self._offset = 0
        self._file_id: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def claim(self, session: int) -> None:
        """Refuse a logged ``session``; else append it and ``fsync`` the log."""
        check_session_id(session, self.node_id)
        with self._lock:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                size = self._catch_up(fd)
                if session in self._seen:
                    raise _replayed(session, f"session log {self.path}", self.node_id)
                entry = (HEADER if size == 0 else b"") + b"%016x\n" % session
                if size + len(entry) > self.max_bytes:
                    raise self._error(f"is full ({size} bytes)")
                _write_all(fd, entry)
                os.fsync(fd)
                if size == 0:
                    _fsync_dir(self.path.parent)
                self._seen.add(session)
                self._offset = size + len(entry)
            finally:
                os.close(fd)  # releases the lock

    def __contains__(self, session: object) -> bool:
        """Whether ``session`` is in the log (reads what was appended)."""
        with self._lock:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_SH)
                self._catch_up(fd)
            finally:
                os.close(fd)
            return session in self._seen

    # ------------------------------------------------------------ internals
    def _error(self, what: str) -> ConfigError:
        return ConfigError(
            f"session log {self.path} {what}", stage="session", node_id=self.node_id
        )

    def _open(self) -> int:
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags, 0o600)
        except OSError as exc:
            raise self._error(f"cannot be opened ({exc.strerror})") from None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_mode & 0o022:
            os.close(fd)
            raise self._error("must be a regular file writable only by its owner")
        return fd

    def _catch_up(self, fd: int) -> int:
        """Parse what was appended since the last read; returns the file size."""
        info = os.fstat(fd)
        file_id = (info.st_dev, info.st_ino)
        if self._file_id is not None and file_id != self._file_id:
            raise self._error("was replaced; refusing to compute")
        size = info.st_size
        if size < self._offset:
            raise self._error("shrank; refusing to compute")
        if size > self.max_bytes:
            raise self._error(f"exceeds {self.max_bytes} bytes")
        if size > self._offset:
            data = os.pread(fd, size - self._offset, self._offset)
            if len(data) != size - self._offset:
                raise self._error("could not be read")
            if self._offset == 0:
                if not data.startswith(HEADER):
                    raise self._error("is not a fedsec session log")
                data = data[len(HEADER) :]
            self._seen.update(self._parse(data))
            self._offset = size
        self._file_id = file_id
        return size

    def _parse(self, data: bytes) -> list[int]:
        n, rest = divmod(len(data), _LINE)
        if rest or data[_LINE - 1 :: _LINE] != b"\n" * n:
            raise self._error("is corrupt (a partial or malformed line)")
        digits = data.replace(b"\n", b"")
        try:
            raw = bytes.fromhex(digits.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            raise self._error("is corrupt (not hexadecimal)") from None
        if len(raw) != 8 * n:
            raise self._error("is corrupt (a malformed line)")
        ids = np.frombuffer(raw, dtype=">u8")
        if ids.size and int(ids.max()) >= MAX_SESSION:
            raise self._error("is corrupt (a session id out of range)")
        return [int(x) for x in ids.tolist()]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
