"""How a sweep talks: durations, sizes, the plan table, the closing summary, and `degradation status`."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING

import pandas as pd

from degradation.store.results import read_runs
from degradation.store.resultsdir import existing_results_dir
from degradation.store.runs import RESTARTS, has_checkpoint, runs_root
from degradation.store.schema import RunStatus
from degradation.sweep.columns import id_columns
from degradation.sweep.estimate import LONG_S, quicker_preset
from degradation.text import duration, evaluated_error, percent

if TYPE_CHECKING:
    from rich.console import Console

    from degradation.sweep.plan import Plan



def make_console(stderr: bool = False, wide: bool = False) -> Console:
    """A rich console: the terminal's width (or $COLUMNS when set, as rich reads it); 200 columns when not on a
    terminal and no width is set, so that tables in logs keep one line per row. `wide` (--wide): tables take
    the width their full run ids need, one line per row, whatever the terminal."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    tty = stream.isatty()
    columns = os.environ.get("COLUMNS", "")
    width = 300 if wide else None if tty or columns.isdigit() else 200
    return Console(file=stream, width=width, soft_wrap=width is not None and width >= 200, highlight=False)


def format_params(count: int | None) -> str:
    if count is None:
        return "?"
    return f"{count / 1e6:.2f}M" if count >= 1e6 else f"{count / 1e3:.1f}k"


NARROW = 110  # below this width `status` leaves out best test, wall and img/s (--wide shows them)


def new_table(title: str, **kwargs):
    """A compact table (no outer frame, one space between columns) so that 80 columns hold a run's row."""
    from rich import box
    from rich.table import Table

    return Table(title=title or None, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 0),
                 **kwargs)


def print_plan(plan: Plan, console: Console, wide: bool = False) -> None:
    """The plan table: one row per run (its identifying fields and a short id; --wide: the full id), then the
    sweep's total."""
    n = len(plan.cells)
    ids = id_columns([{**c.ids(), "shortcut": c.shortcut} for c in plan.cells], wide)
    table = new_table(f"sweep plan: {n} run{'s' * (n != 1)} in {plan.results_dir}{ids.title_suffix()}")
    ids.add_to(table)
    table.add_column("status", ratio=1, min_width=12)
    for name in ("params", "est. time"):
        table.add_column(name, justify="right", no_wrap=True)
    for cell, id_cells in zip(plan.cells, ids.rows, strict=True):
        state = plan.states[cell.run_id]
        seconds = plan.estimates.get(cell.run_id)
        table.add_row(
            *id_cells,
            state.label,
            format_params(plan.params.get(cell.run_id)),
            "-" if not state.trains else duration(seconds),
        )
    console.print(table)
    counts = plan.counts()
    parts = [f"{n} {what}" for what, n in counts.items() if n]
    gpus = f"{plan.gpus_per_run} GPU{'s' * (plan.gpus_per_run != 1)} per run, " if plan.gpus_per_run else ""
    console.print(
        f"{', '.join(parts)}; estimated {duration(plan.total_s)} on this machine "
        f"({plan.device}, {gpus}{plan.jobs} at a time; {plan.estimate_source})"
    )


def long_sweep_note(plan: Plan) -> str | None:
    """A plain warning when the sweep takes more than half a day here, naming the quicker preset."""
    if plan.total_s is None or plan.total_s < LONG_S:
        return None
    text = (
        f"note: this sweep needs about {duration(plan.total_s)} on this machine ({plan.device}). "
        f"It resumes where it stops, so it can be interrupted with Ctrl-C and restarted."
    )
    quicker = quicker_preset(plan.total_s, plan.preset)
    if quicker is not None:
        name, seconds = quicker
        text += f" For a quicker look use --preset {name} (about {duration(seconds)})."
    if plan.device.startswith("cpu"):
        text += " A GPU (--launcher slurm on a cluster) takes hours instead."
    return text


def print_outcomes(outcomes: list, console: Console) -> None:
    """Closing lines: what ran, what was skipped, and each failed run with its reason and log."""
    by_status: dict[str, list] = {}
    for outcome in outcomes:
        by_status.setdefault(outcome.status, []).append(outcome)
    parts = [f"{len(v)} {k}" for k, v in sorted(by_status.items())]
    console.print(f"sweep finished: {', '.join(parts) or 'nothing to do'}")
    noted = by_status.get("locked", []) + [o for o in by_status.get("skipped", []) if o.reason != "already done"]
    for outcome in noted:
        console.print(f"  skipped {outcome.run_id}: {outcome.reason}")
    failed = by_status.get(RunStatus.FAILED, [])
    if failed:
        console.print(f"{len(failed)} failed run(s):")
        for outcome in failed:
            console.print(f"  {outcome.run_id}: {outcome.reason} (log: {outcome.log_path})")


def _num(value: object, fmt: str = "{:,.0f}") -> str:
    return "-" if value is None or pd.isna(value) else fmt.format(value)


def status_text(row) -> tuple[str, object]:
    """(status cell, iteration a rerun starts from): a stopped run with no checkpoint yet restarts from 0."""
    if row.status == RunStatus.PARTIAL and isinstance(row.run_dir, str) and not has_checkpoint(row.run_dir):
        return RESTARTS, 0
    if row.status in (RunStatus.FAILED, RunStatus.PARTIAL) and isinstance(row.reason, str):
        return f"{row.status}: {row.reason}", row.iteration
    return str(row.status), row.iteration


def _subset(settings: object) -> object:
    """data.train_subset from a run's settings (JSON of its result keys); None for the whole training set."""
    try:
        return json.loads(settings).get("data.train_subset") if isinstance(settings, str) else None
    except ValueError:
        return None


def print_status(results_dir: str | os.PathLike, wide: bool = False) -> None:
    """The runs table, read from the run folders now: each run's identifying fields and short id (--wide: the
    full id), status, iteration, errors, time, throughput."""
    results_dir = existing_results_dir(results_dir)
    runs = read_runs(results_dir)
    console = make_console(wide=wide)
    if runs.empty:
        console.print(f"no runs under {runs_root(results_dir)} yet")
        return
    ids = id_columns([{**r, "subset": _subset(r.get("settings"))} for r in runs.to_dict("records")], wide)
    table = new_table(f"runs in {results_dir}{ids.title_suffix()}")
    ids.add_to(table)
    statuses = [status_text(row) for row in runs.itertuples(index=False)]
    table.add_column("status", ratio=1, min_width=min(28, max(12, *(len(s) for s, _ in statuses))))
    full = wide or console.width >= NARROW
    names: tuple[str, ...] = ("iteration", "train err", "test err") if full else ("iter.", "train", "test")
    names += ("best test", "warm-up", "wall", "img/s") if full else ()
    names += ("device",) if wide else ()  # "cpu 1 threads ...": the thread count the run keeps
    for name in names:
        table.add_column(name, justify="right", no_wrap=True)
    for row, id_cells, (status, iteration) in zip(runs.itertuples(index=False), ids.rows, statuses, strict=True):
        cells = [
            f"{_num(iteration)}/{_num(row.total_iters)}",
            percent(row.final_train_error),
            evaluated_error(row.final_test_error, row.final_val_error),
            percent(row.best_test_error),
            row.warmup if isinstance(row.warmup, str) else "-",
            "-" if pd.isna(row.wall_s) else duration(float(row.wall_s)),
            _num(row.images_per_s),
            row.device if isinstance(row.device, str) else "-",
        ]
        table.add_row(*id_cells, status, *cells[: len(names)])
    console.print(table)
    counts = runs["status"].value_counts()
    order = (RunStatus.DONE, RunStatus.RUNNING, RunStatus.PARTIAL, RunStatus.FAILED)
    console.print(", ".join(f"{counts[s]} {s}" for s in order if s in counts))
    if not wide:
        more = "full run ids, device" if full else "full run ids, best test error, warm-up, wall, img/s, device"
        console.print(f"errors in %; {more}: --wide", style="dim")
