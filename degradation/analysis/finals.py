"""Which runs are reported, and their final numbers: the one selection every figure and table shares.

Honest selection (issue 6, item 2): a run's reported test error is the one at its last evaluation (the final
iteration for a finished run), never its best test point; the best is kept separately and labelled so.
Training error is the last logging window's mean. Per cell (data set, preset, arch, shortcut, depth),
finished runs are used when there are any; otherwise unfinished ones are, and said to be. Failed runs are
named, never used.
"""

from __future__ import annotations

import math

import pandas as pd

CELL = ["dataset", "preset", "arch", "shortcut", "depth"]
ID_COLUMNS = ["run_id", "arch", "depth", "shortcut", "dataset", "preset", "seed"]
DATASET_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "synthetic": "synthetic data"}


def label(arch: str, depth: int, shortcut: str | None = "A") -> str:
    """The paper's legend names: plain-20, ResNet-56; a non-A shortcut is named, e.g. ResNet-56 (B)."""
    if arch == "plain":
        return f"plain-{int(depth)}"
    if arch == "preact":  # He et al. 2016 name theirs "ResNet-1001 (pre-act)"; B is its config's default
        name = f"PreAct-{int(depth)}"
        return name if shortcut in (None, "B", "none") else f"{name} ({shortcut})"
    name = f"ResNet-{int(depth)}" if arch == "resnet" else f"{arch}-{int(depth)}"
    return name if shortcut in (None, "A", "none") else f"{name} ({shortcut})"


def describe(dataset: str, preset: str) -> str:
    """Names the data and preset, so a demo figure is never taken for CIFAR-10."""
    text = f"{DATASET_NAMES.get(dataset, dataset)}, {preset} preset"
    return text + " (not CIFAR-10)" if dataset == "synthetic" else text


def _last(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    last = frame.sort_values(["run_id", "step"], kind="stable").groupby("run_id").tail(1)
    return last.set_index("run_id")[["step", "value"]].rename(columns={"step": f"{name}_step", "value": name})


def run_finals(curves: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run of `runs`: ids, status and progress, final train/test error, best test point (fractions)."""
    errors = curves[curves["metric"] == "error"]
    train, test = errors[errors["split"] == "train"], errors[errors["split"] == "test"]
    finals = _last(train, "final_train_error").join(_last(test, "final_test_error"), how="outer")
    if not test.empty:
        best = test.loc[test.sort_values(["run_id", "step"], kind="stable").groupby("run_id")["value"].idxmin()]
        best = best.set_index("run_id")[["value", "step"]]
        finals = finals.join(best.rename(columns={"value": "best_test_error", "step": "best_test_step"}))
    extra = [c for c in ("status", "reason", "iteration", "total_iters", "params", "run_dir") if c in runs.columns]
    table = runs[ID_COLUMNS + extra].drop_duplicates("run_id", keep="last").set_index("run_id")
    table.loc[table["arch"] == "plain", "shortcut"] = "none"  # a plain net has no shortcut, whatever was written
    table = table.join(finals, how="left").reset_index()
    for col in ("final_train_error", "final_test_error", "best_test_error", "final_train_error_step",
                "final_test_error_step", "best_test_step", "iteration", "total_iters", "params"):
        if col not in table.columns:
            table[col] = math.nan
    table["has_curves"] = table["final_train_error"].notna() | table["final_test_error"].notna()
    table["finished"] = table["status"] == "done"
    table["label"] = [label(a, d, s) for a, d, s in zip(table["arch"], table["depth"], table["shortcut"], strict=True)]
    return table.sort_values(CELL + ["seed"], kind="stable").reset_index(drop=True)


def _progress(row: pd.Series) -> str:
    if pd.notna(row["iteration"]) and pd.notna(row["total_iters"]):
        return f"{int(row['iteration'])}/{int(row['total_iters'])} iterations"
    return "progress unknown"


def select_runs(finals: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The runs to report (finished ones per cell when any) and a note for every run left out or unfinished."""
    notes: list[str] = []
    keep = []
    for _, cell in finals.groupby(CELL, sort=True):
        failed = cell[cell["status"] == "failed"]
        for _, r in failed.iterrows():
            reason = f" ({r['reason']})" if "reason" in r and isinstance(r["reason"], str) and r["reason"] else ""
            notes.append(f"{r['label']} seed {r['seed']} failed{reason}; not used")
        usable = cell[(cell["status"] != "failed") & cell["has_curves"]]
        for _, r in cell[(cell["status"] != "failed") & ~cell["has_curves"]].iterrows():
            notes.append(f"{r['label']} seed {r['seed']} has no curve rows yet ({r['status']}); not used")
        done = usable[usable["finished"]]
        if not done.empty:
            for _, r in usable[~usable["finished"]].iterrows():
                notes.append(f"{r['label']} seed {r['seed']} unfinished ({_progress(r)}); finished seeds used instead")
            keep.append(done)
        elif not usable.empty:
            for _, r in usable.iterrows():
                notes.append(f"{r['label']} seed {r['seed']} is unfinished ({r['status']}, {_progress(r)}): "
                             "its numbers are not final")
            keep.append(usable)
    selected = pd.concat(keep, ignore_index=True) if keep else finals.iloc[0:0]
    return selected, notes


def _std(values: pd.Series) -> float:
    return float(values.std(ddof=1)) if len(values) > 1 else math.nan


STAT_COLUMNS = CELL + [
    "label", "params", "n_seeds", "seeds", "run_ids", "finished", "iteration", "total_iters", "final_step",
    "train_mean", "train_std", "train_min", "test_mean", "test_std", "test_min", "best_point", "best_point_step",
]


def cell_stats(selected: pd.DataFrame) -> pd.DataFrame:
    """Per cell: seeds, run ids, params and final/best errors in percent (mean, std over seeds with ddof=1, min)."""
    rows = []
    for key, cell in selected.groupby(CELL, sort=True):
        train, test = cell["final_train_error"] * 100, cell["final_test_error"] * 100
        best_point = cell["best_test_error"] * 100
        at = cell.loc[best_point.idxmin()] if best_point.notna().any() else None
        rows.append({
            **dict(zip(CELL, key, strict=True)),
            "label": cell["label"].iloc[0],
            "params": cell["params"].dropna().iloc[0] if cell["params"].notna().any() else math.nan,
            "n_seeds": len(cell),
            "seeds": [int(s) for s in cell["seed"]],
            "run_ids": list(cell["run_id"]),
            "finished": bool(cell["finished"].all()),
            "iteration": cell["iteration"].min(),
            "total_iters": cell["total_iters"].max(),
            "final_step": cell["final_test_error_step"].max(),
            "train_mean": float(train.mean()), "train_std": _std(train), "train_min": float(train.min()),
            "test_mean": float(test.mean()), "test_std": _std(test), "test_min": float(test.min()),
            "best_point": float(best_point.min()) if at is not None else math.nan,
            "best_point_step": at["best_test_step"] if at is not None else math.nan,
        })
    return pd.DataFrame(rows, columns=STAT_COLUMNS)


def experiments(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """(dataset, preset) pairs present, each drawn and tabulated on its own."""
    pairs = runs[["dataset", "preset"]].drop_duplicates().itertuples(index=False, name=None)
    return sorted((str(d), str(p)) for d, p in pairs)
