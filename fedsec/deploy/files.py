"""Writing kit files safely: secrets 0600, folders 0700, nothing replaced by accident.

Every writer refuses to replace an existing file unless ``force`` is set, so a
second ``fedsec provision`` never changes a key a site already uses. Files are
written to a temporary name in the same folder and renamed into place, so a
reader never sees half a file.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fedsec.errors import ConfigError
from fedsec.files import read_bounded

SECRET = 0o600
PUBLIC = 0o644
SCRIPT = 0o755
FOLDER = 0o700


class ExistsError(ConfigError):
    """A file is already there and ``--force`` was not given."""


def private_dir(path: Path) -> Path:
    """Create ``path`` and any missing parents with mode 0700; make ``path`` 0700."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=FOLDER, exist_ok=True)
        folder.chmod(FOLDER)
    path.chmod(FOLDER)
    return path


def refuse_existing(path: Path, force: bool) -> None:
    """Raise :class:`ExistsError` if ``path`` exists and ``force`` is false."""
    if path.exists() and not force:
        raise ExistsError(f"{path} exists; use --force to replace it")


def write_file(path: Path, data: bytes, mode: int, *, force: bool = False) -> Path:
    """Write ``data`` atomically with ``mode`` (0600 from its creation on)."""
    refuse_existing(path, force)
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), SECRET)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(
    path: Path, text: str, mode: int = PUBLIC, *, force: bool = False
) -> Path:
    """Write ``text`` (UTF-8); see :func:`write_file`."""
    return write_file(path, text.encode(), mode, force=force)


def write_json(path: Path, value: Any, *, force: bool = False) -> Path:
    """Write ``value`` as indented, sorted JSON (public)."""
    return write_text(
        path, json.dumps(value, indent=2, sort_keys=True) + "\n", force=force
    )


def read_json(path: Path, limit: int = 1 << 20) -> Any:
    """Read a JSON file of at most ``limit`` bytes; one-line errors."""
    data = read_bounded(path, limit, "a JSON file")
    try:
        return json.loads(data)
    except ValueError:
        raise ConfigError(f"{path}: not JSON") from None


def mode_of(path: Path) -> int:
    """The permission bits of ``path``."""
    return stat.S_IMODE(path.stat().st_mode)


def toml_lines(values: Mapping[str, Any]) -> list[str]:
    """Flat ``key = value`` TOML lines (strings, booleans, numbers)."""
    return [f"{_toml_key(k)} = {toml_value(v)}" for k, v in values.items()]


def toml_value(value: Any) -> str:
    """One TOML scalar."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    raise ConfigError(f"node-config values are scalars, got {value!r}")


def _toml_key(key: str) -> str:
    if not key or not all(c.isalnum() or c in "-_" for c in key):
        raise ConfigError(f"invalid node-config key {key!r}")
    return key
