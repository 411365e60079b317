"""A data set prepared once per data root: download, verify (published md5) and extract under a lock.

Why a lock: a sweep with several runs, or two sweeps, may find the same root empty at once; without one they
download to the same temporary name and extract over each other. The lock is a file in the root
(`.<folder>.lock`, same format and stale take-over as a run's lock, degradation/store/lock.py), held around download
and extract; whoever comes second waits, then finds the folder ready. The extracted folder appears in one
rename (degradation/data/cifar.py), so a reader never sees half of it.

A root this module created and left empty (a failed download) is removed again: a failure leaves nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from degradation.data.cifar import SPECS, is_extracted, locate, verify
from degradation.data.registry import is_file_backed
from degradation.errors import UsageError
from degradation.store.lock import LockOwner, describe_owner, wait_lock

__all__ = ["DATA_SETS", "check", "describe", "prepare", "prepare_config"]

DATA_SETS = tuple(SPECS)  # the data sets that live on disk (synthetic is made in memory)


def lock_name(name: str) -> str:
    return f".{SPECS[name].folder}.lock"


def _known(name: str) -> str:
    if name not in SPECS:
        raise UsageError(f"unknown data set '{name}'; choose from {', '.join(DATA_SETS)}")
    return name


def prepare(name: str, root: str | Path, *, download: bool = True,
            say: Callable[[str], None] | None = None) -> Path:
    """The extracted folder of `name` under `root`: found, or extracted / downloaded first, once across processes.

    UsageError (one line) when it is missing and cannot be had (download=False, no network, bad checksum).
    """
    root = Path(root).expanduser()
    if is_extracted(_known(name), root):
        return root / SPECS[name].folder
    if not download and not (root / SPECS[name].archive).is_file():
        return locate(name, root, download=False)  # nothing to fetch: the error names what to do, nothing created
    created = not root.exists()

    def waiting(owner: LockOwner) -> None:
        if say is not None:
            say(f"waiting for {describe_owner(owner)}, which is preparing {SPECS[name].title} in {root}/")

    try:
        with wait_lock(root, lock_name(name), on_wait=waiting):
            return locate(name, root, download)  # the folder may have appeared while we waited: then found as is
    finally:
        if created:
            with contextlib.suppress(OSError):
                root.rmdir()  # only succeeds when empty: a failed first download leaves no folder behind


def check(name: str, root: str | Path) -> Path:
    """The extracted folder with every file's md5 checked; creates and downloads nothing."""
    root = Path(root).expanduser()
    if not is_extracted(_known(name), root):
        raise UsageError(f"{SPECS[name].title} is not extracted under {root}/; "
                         f"run `degradation data fetch {name} --root {root}` to download and extract it")
    return verify(name, root)


def describe(name: str, root: str | Path, download: bool) -> str:
    """One line for a plan: where the data are, or what the sweep will do about them."""
    root = Path(root).expanduser()
    if is_file_backed(name):
        return f"data: {name}, the image folder {root}"
    if name not in SPECS:
        return f"data: {name} (made in memory)"
    spec = SPECS[name]
    if is_extracted(name, root):
        return f"data: {spec.title} in {root / spec.folder}"
    if (root / spec.archive).is_file():
        return f"data: {spec.title} archive in {root}/, extracted once before the runs start"
    if download:
        return f"data: {spec.title} not under {root}/, downloaded once before the runs start"
    return f"data: {spec.title} not under {root}/ and data.download=false: the sweep would stop"


def prepare_config(data_cfg: Any, say: Callable[[str], None] | None = None) -> Path | None:
    """Prepare the data set a run's `data` config names (None for synthetic data)."""
    name = str(data_cfg.get("name"))
    if name not in SPECS:
        return None
    return prepare(name, str(data_cfg.get("root", "data")), download=bool(data_cfg.get("download", True)),
                   say=say)
