"""Reading the small local files a site or coordinator is configured with.

Federation files, schemas, site policies and node-config files are read
through :func:`read_bounded`: at most ``limit`` bytes are read (a file that
turns out to be a log, a device or a mistake is refused, not loaded into
memory), and every failure is one line naming the file, never a traceback.
"""

from __future__ import annotations

from pathlib import Path

from fedsec.errors import ConfigError


def read_bounded(
    path: str | Path,
    limit: int,
    what: str,
    error: type[ConfigError] = ConfigError,
) -> bytes:
    """The bytes of ``path``, which must hold at most ``limit`` of them.

    Raises
    ------
    ConfigError
        (or ``error``) ``"<path>: cannot read <what> (<reason>)"`` or
        ``"<path>: <what> is at most <limit>"``.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise error(f"{path}: cannot read {what} ({reason})") from None
    if len(data) > limit:
        raise error(f"{path}: {what} is at most {_size(limit)}")
    return data


def _size(n: int) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} bytes"
