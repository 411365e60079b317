"""A run folder, results/runs/<run_id>/: what it holds, how its files are named, read and judged.

One home for the folder's format, shared by its writer (degradation/train: folder.py, curves.py,
checkpoint.py) and its readers (results.py, the sweep, `status`). It sits below train in the layers, beside
io and lock, because both sides need it; it only reads, except for the sweep's failure record.

    config.yaml                 the resolved config (written once, before training)
    run.json                    status, progress, final numbers, provenance (rewritten atomically)
    curves/part-<step>.parquet  the curve rows up to <step> (9 digits), one part per checkpoint
    layers/part-<step>.parquet  gradient flow per layer (train/layers.py), written beside each curve part
    checkpoints/last.ckpt       the latest checkpoint
    train.log                   the run's log
    failure.json                the sweep's note when the process died without saying why
    .lock                       held by the process training the run (degradation/store/lock.py)
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from degradation.errors import UsageError, first_line
from degradation.store.io import write_json_atomic
from degradation.store.lock import owner_alive, pid_alive, read_lock
from degradation.store.schema import CURVE_COLUMNS, CURVES_SCHEMA, SCHEMA_VERSION, RunStatus

RUNS_DIR = "runs"              # <results>/runs/<run_id>/
RUN_FILE = "run.json"
CONFIG_FILE = "config.yaml"
CURVES_DIR = "curves"
LAYERS_DIR = "layers"
CHECKPOINT = "checkpoints/last.ckpt"
LOG_FILE = "train.log"
FAILURE_FILE = "failure.json"  # written by the sweep when a training process dies without recording why

RESTARTS = "restarts (no checkpoint yet)"  # a stopped run with no checkpoint: its rerun starts at iteration 0

_PART = re.compile(r"^part-(\d{9})\.parquet$")


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


# ---- where run folders are ---------------------------------------------------------------------------------
def runs_root(results_dir: str | os.PathLike) -> Path:
    return Path(results_dir) / RUNS_DIR


def run_folders(results_dir: str | os.PathLike, *, with_run_json: bool = False) -> list[Path]:
    """The run folders under <results>/runs (hidden ones skipped); only those with a run.json when asked."""
    root = runs_root(results_dir)
    if not root.is_dir():
        return []
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    return [p for p in folders if (p / RUN_FILE).is_file()] if with_run_json else folders


def check_writable(results_dir: str | os.PathLike) -> None:
    """Fail before anything is created when the results folder cannot be made or written (works as root too)."""
    target = Path(results_dir).expanduser().absolute()
    probe = target
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"results folder {target} cannot be created ({probe} is not a folder); choose another")
    test_file = probe / f".degradation-write-test-{os.getpid()}"
    try:
        os.close(os.open(test_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        os.unlink(test_file)
    except OSError as exc:
        raise UsageError(f"results folder {target} is not writable ({exc.strerror}); choose another") from None


# ---- run.json ---------------------------------------------------------------------------------------------
class CorruptFile(Exception):
    """A file of a run folder that cannot be read; the message says which and why."""


class ForeignSchema(CorruptFile):
    """A run folder written under another schema_version: left as it is (never collected nor trained over)."""

    def __init__(self, message: str, version: object) -> None:
        super().__init__(message)
        self.version = version


def check_schema(info: dict, path: Path) -> None:
    """ForeignSchema when run.json names a schema_version other than ours (none named: ours, as written by hand)."""
    version = info.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise ForeignSchema(
            f"{path}: schema_version {version}, this tool reads {SCHEMA_VERSION}; left as it is "
            f"(move the folder away, or use the version of the tool that wrote it)",
            version,
        )


def read_run_json(run_dir: str | os.PathLike) -> dict | None:
    """A run's run.json; None when it has none yet; CorruptFile when it cannot be parsed, ForeignSchema when
    another version of the tool wrote it."""
    path = Path(run_dir) / RUN_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CorruptFile(f"{path}: {exc.strerror}") from None
    try:
        info = json.loads(text)
    except ValueError as exc:
        raise CorruptFile(f"{path}: not JSON ({exc})") from None
    if not isinstance(info, dict) or "status" not in info:
        raise CorruptFile(f"{path}: no status field")
    check_schema(info, path)
    return info


def is_foreign(run_dir: Path) -> bool:
    """Whether another version of the tool wrote this run (its files are then never read nor written)."""
    try:
        read_run_json(run_dir)
    except ForeignSchema:
        return True
    except CorruptFile:
        pass
    return False


def has_checkpoint(run_dir: str | os.PathLike) -> bool:
    """Whether a rerun resumes (a checkpoint exists) or starts over from iteration 0."""
    return (Path(run_dir) / CHECKPOINT).is_file()


# ---- failure records and status ---------------------------------------------------------------------------
def read_failure(run_dir: str | os.PathLike) -> dict | None:
    """What the sweep recorded about a training process that ended without saying why (failure.json)."""
    path = Path(run_dir) / FAILURE_FILE
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict):
        return None
    info["mtime"] = path.stat().st_mtime
    return info


def record_failure(run_dir: str | os.PathLike, ids: dict, reason: str) -> None:
    """Note, beside run.json, that the run's process died without recording its end (a crash, a kill, OOM).

    run.json belongs to the training process; this sidecar is the sweep's. A newer run.json supersedes it.
    """
    run_dir = Path(run_dir)
    write_json_atomic(
        run_dir / FAILURE_FILE,
        {**ids, "status": RunStatus.FAILED, "reason": reason, "log_path": str(run_dir / LOG_FILE),
         "run_dir": str(run_dir)},
    )


def clear_failure(run_dir: str | os.PathLike) -> None:
    """A new attempt writes its own story: the previous attempt's failure record goes."""
    (Path(run_dir) / FAILURE_FILE).unlink(missing_ok=True)


def effective_status(info: dict, run_dir: str | os.PathLike) -> tuple[str, str | None]:
    """(status, reason) as it stands now: a run.json left at "running" by a process that is gone is partial,
    or failed when the sweep saw that process die (failure.json newer than run.json)."""
    status, reason = str(info.get("status")), info.get("reason")
    if status != RunStatus.RUNNING:
        return status, reason
    owner = read_lock(run_dir)
    if owner is not None:
        alive = owner_alive(owner)
    else:
        pid = info.get("pid")
        alive = isinstance(pid, int) and pid_alive(pid)
    if alive:
        return RunStatus.RUNNING, reason
    failure = read_failure(run_dir)
    run_json = Path(run_dir) / RUN_FILE
    if failure and (not run_json.exists() or failure["mtime"] >= run_json.stat().st_mtime):
        return RunStatus.FAILED, failure.get("reason")
    iteration = info.get("iteration", 0)
    if not has_checkpoint(run_dir):
        return RunStatus.PARTIAL, f"stopped at iteration {iteration} (its process is gone); {RESTARTS}"
    return RunStatus.PARTIAL, f"stopped at iteration {iteration} (its process is gone); the next sweep resumes it"


# ---- curve parts ------------------------------------------------------------------------------------------
def part_name(step: int) -> str:
    return f"part-{step:09d}.parquet"


def part_step(path: Path) -> int | None:
    """The step a part's name says its rows reach; None for anything else in curves/."""
    match = _PART.match(path.name)
    return int(match.group(1)) if match else None


def part_paths(run_dir: Path, kind: str = CURVES_DIR) -> list[Path]:
    """A run's curve (or layers) parts in step order."""
    folder = Path(run_dir) / kind
    if not folder.is_dir():
        return []
    steps = {p: part_step(p) for p in folder.iterdir()}
    return sorted((p for p, step in steps.items() if step is not None), key=lambda p: steps[p] or 0)


def read_parts(run_dir: Path) -> list[pa.Table]:
    """A run's curve parts in step order, each cast to the curves schema; unreadable ones skipped, named."""
    tables = []
    for path in part_paths(run_dir):
        try:
            table = pq.read_table(path)
            table = table.select(list(CURVE_COLUMNS)).cast(CURVES_SCHEMA)
        except Exception as exc:  # pyarrow raises several types for a truncated or foreign file
            warn(f"skipping {path}: {first_line(exc)}")
            continue
        tables.append(table)
    return tables


def read_curves(run_dir: Path):
    """All parts of one run as a pandas DataFrame sorted by step (for tests and quick looks)."""
    import pandas as pd  # deferred: the training process reads parts without pandas

    parts = part_paths(run_dir)
    if not parts:
        return pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in CURVE_COLUMNS.items()})
    frame = pd.concat([pq.read_table(p).to_pandas() for p in parts], ignore_index=True)
    return frame.sort_values(["step", "split", "metric"], kind="stable").reset_index(drop=True)


def trim_parts(run_dir: Path, step: int) -> list[Path]:
    """Delete curve and layers parts past `step` (the checkpoint's iteration) and temp files a kill left."""
    removed: list[Path] = []
    for kind in (CURVES_DIR, LAYERS_DIR):
        folder = Path(run_dir) / kind
        if folder.is_dir():
            removed += _trim(folder, step)
    return removed


def _trim(folder: Path, step: int) -> list[Path]:
    removed = []
    for path in sorted(folder.iterdir()):
        at = part_step(path)
        if (at is not None and at > step) or path.name.endswith(".tmp"):
            path.unlink()
            removed.append(path)
    return removed


def missing_windows(run_dir: Path, step: int, log_every: int) -> list[int]:
    """Logging windows up to `step` without a training row in a readable part: a part lost or damaged after
    its checkpoint was written. Resuming from that checkpoint would leave the gap in the curves for good."""
    seen: set[int] = set()
    for path in part_paths(run_dir):
        if (part_step(path) or 0) > step:
            continue
        try:
            table = pq.read_table(path, columns=["step", "split"])
        except Exception:  # a truncated or foreign file: its rows count as missing
            continue
        seen.update(s for s, split in zip(table["step"].to_pylist(), table["split"].to_pylist(), strict=True)
                    if split == "train")
    return [s for s in range(log_every, step + 1, log_every) if s not in seen]
