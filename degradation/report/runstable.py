"""The report's runs table and its one-line count: every run with its status, so failed and unfinished ones are
named on the page, with the reason and the train.log to open."""

from __future__ import annotations

import math

import pandas as pd

from degradation.models.registry import label
from degradation.store.schema import RunStatus
from degradation.text import duration, points

UNFINISHED = (RunStatus.NEW, RunStatus.RUNNING, RunStatus.PARTIAL)


def _number(value: object) -> float | None:
    """A cell of runs.parquet as a float (None when missing or not a number)."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _pct(value: object) -> str:
    number = _number(value)
    return points(None if number is None else 100 * number, missing="")


def _iters(row: pd.Series) -> str:
    done, total = row.get("iteration"), row.get("total_iters")
    if pd.isna(done) and pd.isna(total):
        return ""
    return f"{'?' if pd.isna(done) else int(done)}/{'?' if pd.isna(total) else int(total)}"


def _wall(value: object) -> str:
    seconds = _number(value)
    return "" if seconds is None or not math.isfinite(seconds) else duration(seconds)


def runs_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """runs.parquet as the page shows it: one row per run, errors in percent, failed runs first."""
    order = {RunStatus.FAILED: 0, RunStatus.PARTIAL: 1, RunStatus.RUNNING: 2, RunStatus.NEW: 3, RunStatus.DONE: 4}
    runs = runs.assign(_order=runs["status"].map(order).fillna(5)).sort_values(
        ["_order", "dataset", "preset", "arch", "shortcut", "depth", "seed"], kind="stable")
    table = pd.DataFrame({
        "status": runs["status"],
        "network": [label(a, d, s, n if isinstance(n, str) else None) for a, d, s, n in
                    zip(runs["arch"], runs["depth"], runs["shortcut"], runs.get("arch_label", [None] * len(runs)),
                        strict=True)],
        "arch": runs["arch"], "depth": runs["depth"], "shortcut": runs["shortcut"], "seed": runs["seed"],
        "data / preset": runs["dataset"].astype(str) + " / " + runs["preset"].astype(str),
        "variant": runs.get("variant", pd.Series([None] * len(runs), index=runs.index)),
        "iterations": [_iters(r) for _, r in runs.iterrows()],
        "final train err %": runs["final_train_error"].map(_pct),
        "final test err %": runs["final_test_error"].map(_pct),
        "wall time": runs["wall_s"].map(_wall) if "wall_s" in runs.columns else "",
        "why": runs.get("reason", pd.Series([None] * len(runs), index=runs.index)),
        "train.log": runs.get("log_path", pd.Series([None] * len(runs), index=runs.index)),
    })
    return table.reset_index(drop=True)


def row_class(row: pd.Series) -> str:
    return "failed" if row["status"] == "failed" else "unfinished" if row["status"] in UNFINISHED else ""


def counts(runs: pd.DataFrame) -> tuple[str, list[str]]:
    """("12 runs: 10 done, 1 unfinished, 1 failed", the lines naming each failed and unfinished run)."""
    status = runs["status"].astype(str)
    done, failed = int((status == "done").sum()), int((status == "failed").sum())
    unfinished = len(runs) - done - failed
    head = f"{len(runs)} runs: {done} done, {unfinished} unfinished, {failed} failed"
    named = []
    for _, r in runs[status != "done"].iterrows():
        name = f"{label(r['arch'], r['depth'], r['shortcut'])} seed {r['seed']} ({r['run_id']})"
        why = r.get("reason")
        why = f": {why}" if isinstance(why, str) and why else ""
        if r["status"] == "failed":
            named.append(f"failed: {name}{why}; log: {r.get('log_path') or '?'}")
        else:
            named.append(f"unfinished ({r['status']}, {_iters(r)} iterations): {name}{why}")
    return head, named
