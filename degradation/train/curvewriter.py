"""Long-format curve rows of one run, flushed as parquet parts at each checkpoint.

A part is written (atomically) just before the checkpoint of the same step, so every row up to a checkpoint
is on disk when that checkpoint exists, and parts named past the checkpoint hold only rows that a resumed
run will recompute: `runs.trim_parts` deletes them.

The checkpoint also carries every row so far (a few thousand numbers for the paper's 64k iterations), so a
part damaged or lost later (a disk error, a copy cut short) is rebuilt from it exactly: `rebuild_parts`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from degradation.store.io import write_atomic
from degradation.store.runs import CHECKPOINT, CURVES_DIR, part_name, part_paths
from degradation.store.schema import CURVES_SCHEMA


class CurveWriter:
    """Collects rows in memory (a few per logging window) and writes them as one part per checkpoint."""

    def __init__(self, run_dir: Path, ids: dict, batch_size: int, train_size: int) -> None:
        self.dir = Path(run_dir) / CURVES_DIR
        self.ids = ids  # run_id, arch, depth, shortcut, dataset, preset, seed
        self.images_per_step = batch_size / train_size
        self.rows: list[tuple] = []
        self.history: list[tuple] = []  # every row of the run so far, restored from the checkpoint on resume

    def add(self, step: int, split: str, metric: str, value: float, wall_s: float) -> None:
        row = (step, step * self.images_per_step, split, metric, float(value), float(wall_s))
        self.rows.append(row)
        self.history.append(row)

    def history_state(self) -> dict[str, list]:
        """The rows so far as columns of plain numbers and strings (what a weights-only checkpoint may hold)."""
        columns = list(zip(*self.history, strict=True)) if self.history else [()] * len(ROW_FIELDS)
        return {name: list(column) for name, column in zip(ROW_FIELDS, columns, strict=True)}

    def restore_history(self, state: dict[str, list]) -> None:
        self.history = list(zip(*(state[name] for name in ROW_FIELDS), strict=True))

    def flush(self, step: int) -> Path | None:
        """Write the pending rows as curves/part-<step>.parquet (atomically); nothing when there are none."""
        if not self.rows:
            return None
        path = self.dir / part_name(step)
        write_part(path, self.ids, self.rows)
        self.rows.clear()
        return path


ROW_FIELDS = ("step", "epoch", "split", "metric", "value", "wall_s")


def write_part(path: Path, ids: dict, rows: list[tuple]) -> None:
    """Rows (ROW_FIELDS tuples) of one run as a curve part, written atomically."""
    n = len(rows)
    columns = dict(zip(ROW_FIELDS, zip(*rows, strict=True), strict=True))
    arrays = [
        pa.array([ids[field.name]] * n if field.name in ids else columns[field.name], type=field.type)
        for field in CURVES_SCHEMA
    ]
    table = pa.Table.from_arrays(arrays, schema=CURVES_SCHEMA)  # from_arrays: no pandas on the training path
    write_atomic(path, lambda tmp: pq.write_table(table, tmp))


@dataclass
class Repair:
    """What `rebuild_parts` did: parts written, damaged ones set aside, and row steps still missing."""

    written: list[Path] = field(default_factory=list)
    set_aside: list[Path] = field(default_factory=list)
    still_missing: list[int] = field(default_factory=list)


def rebuild_parts(run_dir: Path, ids: dict) -> Repair | None:
    """Rewrite the rows that damaged or missing parts held, from the rows the last checkpoint carries.

    None when the checkpoint cannot help (none, unreadable, or written before checkpoints carried rows).
    Damaged parts are renamed `<name>.damaged` (kept, no longer read); rows past the checkpoint are not
    touched (a resumed run recomputes them).
    """
    import torch  # deferred: only a repair needs torch here; the training path has it loaded already

    ckpt = Path(run_dir) / CHECKPOINT
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True).get("degradation", {})
    except Exception:  # missing or unreadable: nothing to rebuild from
        return None
    saved = state.get("curves")
    if not saved:
        return None
    upto = int(state.get("iteration", 0))
    history = [row for row in zip(*(saved[n] for n in ROW_FIELDS), strict=True) if int(row[0]) <= upto]
    repair, present = Repair(), set[tuple[int, str, str]]()
    for path in part_paths(run_dir):
        try:
            table = pq.read_table(path, columns=["step", "split", "metric"])
        except Exception:  # truncated or foreign: set aside, its rows come from the checkpoint
            aside = path.with_name(path.name + ".damaged")
            os.replace(path, aside)
            repair.set_aside.append(aside)
            continue
        present.update(zip(table["step"].to_pylist(), table["split"].to_pylist(), table["metric"].to_pylist(),
                           strict=True))
    missing = [row for row in history if (int(row[0]), row[2], row[3]) not in present]
    if missing:
        path = Path(run_dir) / CURVES_DIR / f"part-{max(int(r[0]) for r in missing):09d}.parquet"
        if path.exists():  # a readable part of that name: keep its rows beside the rebuilt ones
            old = pq.read_table(path).to_pylist()
            missing = [tuple(r[n] for n in ROW_FIELDS) for r in old] + missing
        write_part(path, ids, missing)
        repair.written.append(path)
    return repair
