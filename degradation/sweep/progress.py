"""The sweep's one view of all its runs, built only from the runs' own files (run.json, curve parts).

On a terminal: a live table (row per run: state, iteration, train and test error, it/s, ETA; the sweep's ETA).
Elsewhere (a log, CI, a SLURM job): plain lines, one per event and one per running run every `interval` s.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from degradation.store.runs import CorruptFile, part_paths, read_run_json
from degradation.sweep.columns import id_columns
from degradation.sweep.report import new_table
from degradation.text import duration, evaluated_error, percent

RATE_WINDOW_S = 120.0  # it/s is measured over the iterations seen in this window


class RunWatch:
    """What one run's files say now; curve parts are read once each, as they appear."""

    def __init__(self, run_id: str, run_dir: Path, total: int, batch_size: int, estimate_s: float | None,
                 ids: dict | None = None) -> None:
        self.run_id = run_id
        self.ids = ids or {"run_id": run_id}  # arch, depth, shortcut, seed, ...: the live table's columns
        self.run_dir = Path(run_dir)
        self.total = total
        self.batch_size = batch_size
        self.estimate_s = estimate_s
        self.phase = "queued"  # queued | running | done | failed | skipped | locked | stopped
        self.note = ""
        self.iteration = 0
        self.train_error: float | None = None
        self.test_error: float | None = None
        self.val_error: float | None = None  # a run evaluated on a val split only (ImageNet's recipe)
        self.images_per_s: float | None = None
        self._curve_train: tuple[int, float] | None = None
        self._curve_test: tuple[int, float] | None = None
        self._curve_val: tuple[int, float] | None = None
        self._parts: set[str] = set()
        self._samples: deque[tuple[float, int]] = deque()
        self._start_iteration: int | None = None

    def refresh(self) -> None:
        try:
            info = read_run_json(self.run_dir)
        except CorruptFile:
            info = None  # mid-rename on some file systems: keep the last figures
        if info:
            self.iteration = int(info.get("iteration") or self.iteration)
            self.total = int(info.get("total_iters") or self.total)
            self.train_error = info.get("final_train_error", self.train_error)
            self.test_error = info.get("final_test_error", self.test_error)
            self.val_error = info.get("final_val_error", self.val_error)
            self.images_per_s = info.get("images_per_s") or self.images_per_s
        self._read_new_parts()
        if self.train_error is None and self._curve_train:
            self.train_error = self._curve_train[1]
        if self.test_error is None and self._curve_test:
            self.test_error = self._curve_test[1]
        if self.val_error is None and self._curve_val:
            self.val_error = self._curve_val[1]
        now = time.monotonic()
        if self._start_iteration is None:
            self._start_iteration = self.iteration
        # samples start at the first step seen moving, so process start-up does not count as slow training
        if self.iteration != self._start_iteration and (not self._samples or self._samples[-1][1] != self.iteration):
            self._samples.append((now, self.iteration))
        while len(self._samples) > 2 and now - self._samples[0][0] > RATE_WINDOW_S:
            self._samples.popleft()

    def _read_new_parts(self) -> None:
        for path in part_paths(self.run_dir):
            if path.name in self._parts:
                continue
            try:
                table = pq.read_table(path, columns=["step", "split", "metric", "value"]).to_pylist()
            except Exception:
                continue  # a foreign or damaged part: collect names it; the view just does without
            self._parts.add(path.name)
            for row in table:
                if row["metric"] != "error":
                    continue
                slot = f"_curve_{row['split']}" if row["split"] in ("train", "test", "val") else None
                if slot and (getattr(self, slot) is None or row["step"] >= getattr(self, slot)[0]):
                    setattr(self, slot, (int(row["step"]), float(row["value"])))

    @property
    def evaluated(self) -> str:
        """The test error, or a val-only run's val error marked so (text.evaluated_error)."""
        return evaluated_error(self.test_error, self.val_error)

    @property
    def rate(self) -> float | None:
        """Iterations per second: seen over the last window, else the run's own images/s."""
        if len(self._samples) >= 2:
            (t0, i0), (t1, i1) = self._samples[0], self._samples[-1]
            if t1 > t0 and i1 > i0:
                return (i1 - i0) / (t1 - t0)
        if self.images_per_s and self.batch_size:
            return float(self.images_per_s) / self.batch_size
        return None

    @property
    def eta_s(self) -> float | None:
        if self.phase in ("done", "failed", "skipped", "locked", "stopped"):
            return 0.0
        if self.phase == "queued":
            return self.estimate_s
        rate = self.rate
        return (self.total - self.iteration) / rate if rate else self.estimate_s


class SweepView:
    """A live table on a terminal, plain lines otherwise. `event` for one-off lines, `tick` to redraw."""

    def __init__(self, watches: list[RunWatch], lanes: int, console, *, live: bool | None = None,
                 interval: float = 30.0, wide: bool = False) -> None:
        self.watches = watches
        self.wide = wide
        self.lanes = max(1, lanes)
        self.console = console
        self.live_mode = console.is_terminal if live is None else live
        self.interval = interval
        self._live: Any = None  # rich.live.Live on a terminal
        self._last_lines = time.monotonic()
        self.started = time.monotonic()

    def __enter__(self) -> SweepView:
        if self.live_mode:
            from rich.live import Live

            self._live = Live(self._table(), console=self.console, auto_refresh=False, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.update(self._table(), refresh=True)
            self._live.__exit__(*exc)
            self._live = None

    def sweep_eta_s(self) -> float | None:
        etas = [w.eta_s for w in self.watches]
        left = [s for s in etas if s is not None]
        if len(left) < len(etas):
            return None
        return sum(left) / min(self.lanes, max(1, sum(1 for s in left if s)))

    def event(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def tick(self) -> None:
        for watch in self.watches:
            if watch.phase == "running":
                watch.refresh()
        if self._live is not None:
            self._live.update(self._table(), refresh=True)
        elif time.monotonic() - self._last_lines >= self.interval:
            self._last_lines = time.monotonic()
            for watch in self.watches:
                if watch.phase == "running":
                    self.event(self.line(watch))

    def line(self, watch: RunWatch) -> str:
        rate = watch.rate
        return (
            f"{watch.run_id}: it {watch.iteration}/{watch.total}  train err {percent(watch.train_error)}  "
            f"test err {watch.evaluated}  {'-' if rate is None else f'{rate:.2f}'} it/s  "
            f"ETA {duration(watch.eta_s)}  | sweep ETA {duration(self.sweep_eta_s())}"
        )

    def _table(self):
        done = sum(1 for w in self.watches if w.phase == "done")
        caption = (
            f"{done}/{len(self.watches)} done · elapsed {duration(time.monotonic() - self.started)} · "
            f"sweep ETA {duration(self.sweep_eta_s())}"
        )
        ids = id_columns([w.ids for w in self.watches], self.wide)
        table = new_table(ids.title_suffix().strip(" ()"), caption=caption, caption_justify="left")
        ids.add_to(table)
        table.add_column("state", ratio=1, min_width=8)
        for name in ("iteration", "train err", "test err", "it/s", "ETA"):
            table.add_column(name, justify="right", no_wrap=True)
        for w, id_cells in zip(self.watches, ids.rows, strict=True):
            rate = w.rate if w.phase == "running" else None
            table.add_row(
                *id_cells,
                w.phase + (f" ({w.note})" if w.note else ""),
                f"{w.iteration}/{w.total}",
                percent(w.train_error),
                w.evaluated,
                "-" if rate is None else f"{rate:.2f}",
                "-" if w.phase != "running" and w.phase != "queued" else duration(w.eta_s),
            )
        return table
