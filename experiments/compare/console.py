"""Keep a long run's terminal to progress lines; everything else to a log file.

Flower, Ray and the fedsec loggers print several lines per round (some
twice: Flower's console handler and Ray's forwarding of its actors' output).
:func:`quiet` points file descriptors 1 and 2 (so also Ray's forwarded
output, the logging handlers and any subprocess) at a log file for the
duration of a step, and yields a stream to the real terminal.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO


@contextmanager
def quiet(log: Path) -> Iterator[TextIO]:
    """Redirect fds 1 and 2 to ``log`` (appended); yield the real stdout."""
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(saved[0]), "w", buffering=1)
    with log.open("a") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield terminal
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            terminal.close()
