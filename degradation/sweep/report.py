"""How a sweep talks: durations, sizes, the plan table, the closing summary, and `degradation status`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from degradation.errors import UsageError
from degradation.results import read_runs
from degradation.runs import runs_root
from degradation.sweep.estimate import LONG_S, quicker_preset

if TYPE_CHECKING:
    from rich.console import Console

    from degradation.sweep.plan import Plan



def make_console(stderr: bool = False) -> Console:
    """A rich console; wide when not on a terminal, so that tables in logs keep one line per row."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    tty = stream.isatty()
    return Console(file=stream, width=None if tty else 200, soft_wrap=not tty, highlight=False)


def format_duration(seconds: float | None) -> str:
    """45s, 12m, 3h 05m, 2.4 days: to the precision a person plans with."""
    if seconds is None:
        return "?"
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 48 * 3600:
        hours, rest = divmod(int(round(seconds)), 3600)
        return f"{hours}h {rest // 60:02d}m"
    return f"{seconds / 86400:.1f} days"


def format_params(count: int | None) -> str:
    if count is None:
        return "?"
    return f"{count / 1e6:.2f}M" if count >= 1e6 else f"{count / 1e3:.1f}k"


def print_plan(plan: Plan, console: Console) -> None:
    """The plan table: one row per run, then the sweep's total."""
    from rich.table import Table

    n = len(plan.cells)
    table = Table(title=f"sweep plan: {n} run{'s' * (n != 1)} in {plan.results_dir}", title_justify="left")
    for name in ("run id", "arch", "depth", "shortcut", "seed", "status", "params", "est. time"):
        table.add_column(name, justify="right" if name in ("depth", "seed", "params", "est. time") else "left")
    for cell in plan.cells:
        state = plan.states[cell.run_id]
        seconds = plan.estimates.get(cell.run_id)
        table.add_row(
            cell.run_id,
            cell.arch,
            str(cell.depth),
            cell.shortcut,
            str(cell.seed),
            state.label,
            format_params(plan.params.get(cell.run_id)),
            "-" if not state.trains else format_duration(seconds),
        )
    console.print(table)
    counts = plan.counts()
    parts = [f"{n} {what}" for what, n in counts.items() if n]
    gpus = f"{plan.gpus_per_run} GPU{'s' * (plan.gpus_per_run != 1)} per run, " if plan.gpus_per_run else ""
    console.print(
        f"{', '.join(parts)}; estimated {format_duration(plan.total_s)} on this machine "
        f"({plan.device}, {gpus}{plan.jobs} at a time; {plan.estimate_source})"
    )


def long_sweep_note(plan: Plan) -> str | None:
    """A plain warning when the sweep takes more than half a day here, naming the quicker preset."""
    if plan.total_s is None or plan.total_s < LONG_S:
        return None
    text = (
        f"note: this sweep needs about {format_duration(plan.total_s)} on this machine ({plan.device}). "
        f"It resumes where it stops, so it can be interrupted with Ctrl-C and restarted."
    )
    quicker = quicker_preset(plan.total_s, plan.preset)
    if quicker is not None:
        name, seconds = quicker
        text += f" For a quicker look use --preset {name} (about {format_duration(seconds)})."
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
    failed = by_status.get("failed", [])
    if failed:
        console.print(f"{len(failed)} failed run(s):")
        for outcome in failed:
            console.print(f"  {outcome.run_id}: {outcome.reason} (log: {outcome.log_path})")


def _pct(value: object) -> str:
    return "-" if value is None or pd.isna(value) else f"{100 * float(value):.2f}%"


def _num(value: object, fmt: str = "{:,.0f}") -> str:
    return "-" if value is None or pd.isna(value) else fmt.format(value)


def print_status(results_dir: str | os.PathLike) -> None:
    """The runs table, read from the run folders now: status, iteration, errors, time, throughput."""
    from rich.table import Table

    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise UsageError(f"results folder {results_dir} does not exist; start runs with `degradation sweep`")
    runs = read_runs(results_dir)
    console = make_console()
    if runs.empty:
        console.print(f"no runs under {runs_root(results_dir)} yet")
        return
    table = Table(title=f"runs in {results_dir}", title_justify="left")
    for name in ("run id", "status", "iteration", "train err", "test err", "best test", "wall", "img/s"):
        table.add_column(name, justify="left" if name in ("run id", "status") else "right")
    for row in runs.itertuples(index=False):
        status = row.status
        if row.status in ("failed", "partial") and isinstance(row.reason, str):
            status = f"{row.status}: {row.reason}"
        table.add_row(
            row.run_id,
            status,
            f"{_num(row.iteration)}/{_num(row.total_iters)}",
            _pct(row.final_train_error),
            _pct(row.final_test_error),
            _pct(row.best_test_error),
            "-" if pd.isna(row.wall_s) else format_duration(float(row.wall_s)),
            _num(row.images_per_s),
        )
    console.print(table)
    counts = runs["status"].value_counts()
    console.print(", ".join(f"{counts[s]} {s}" for s in ("done", "running", "partial", "failed") if s in counts))
