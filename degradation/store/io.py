"""Atomic file writes: a kill at any instant leaves the old file or the new one, never half of one."""

from __future__ import annotations

import glob
import json
import os
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from degradation.errors import unwritable
from degradation.store.lock import pid_alive

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success fsync it and rename it over `target`.

    Creates the target's own folder but not missing folders above it: a run folder removed while its run
    trains is an error, not silently rebuilt half-empty. A refused write (OSError) becomes a one-line
    UsageError, and the old `target`, if any, stays as it was.
    """
    target = Path(target)
    try:
        target.parent.mkdir(exist_ok=True)
        remove_stale_temps(target.parent, target.name)  # this file's leftovers from a writer killed before us
        # host and pid in the name, so that a killed writer's leftover can be told from a live one's file
        writer = f"{socket.gethostname()}~{os.getpid()}"
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}~{writer}~", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise unwritable(target, exc) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        try:
            os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are shared like any other file
            yield tmp_path
            with open(tmp_path, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp_path, target)
        except OSError as exc:
            raise unwritable(target, exc) from None
    finally:
        with suppress(OSError):
            tmp_path.unlink()


def write_atomic(target: str | os.PathLike, write: Callable[[Path], Any]) -> None:
    """Call `write(tmp_path)` and move the result into place atomically."""
    with atomic_path(target) as tmp:
        write(tmp)


def write_text_atomic(target: str | os.PathLike, text: str) -> None:
    write_atomic(target, lambda p: p.write_text(text))


def write_json_atomic(target: str | os.PathLike, data: Any) -> None:
    write_text_atomic(target, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def _dead_writer(temp_name: str, host: str) -> bool:
    """A temp file `.<name>~<host>~<pid>~<random>.tmp` whose writer was on this host and is gone."""
    _, writer_host, pid, _ = temp_name.rsplit("~", 3)
    return writer_host == host and pid.isdigit() and not pid_alive(int(pid))


def remove_stale_temps(folder: str | os.PathLike, name: str = "*", locked: bool = False) -> list[Path]:
    """Delete the temp files in `folder` (of the file `name`, or of any) left by writers killed mid-write.

    Safe beside live writers: a temp file names its host and pid, and only this host's dead writers' files go.
    `locked`: the caller holds the folder's lock, so no other writer is live anywhere and every temp goes (a
    checkpoint cut short on another node of a cluster, too).
    """
    removed = []
    host = socket.gethostname()
    pattern = "*" if name == "*" else glob.escape(name)
    anyone = ".*.tmp" if name == "*" else f".{pattern}*.tmp"  # locked: any temp of the file, old names too
    for path in Path(folder).glob(anyone if locked else f".{pattern}~*~*~*.tmp"):
        if locked or _dead_writer(path.name, host):
            with suppress(OSError):
                path.unlink()
                removed.append(path)
    return removed
