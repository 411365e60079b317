"""Which runs are reported, and their final numbers: the one selection every figure and table shares.

Honest selection (issue 6, item 2): a run's reported test error is the one at its last evaluation (the final
iteration for a finished run), never its best test point; the best is kept separately and labelled so.
Training error is the last logging window's mean. Per cell (data set, preset, arch, shortcut, depth),
finished runs are used when there are any; otherwise unfinished ones are, and said to be. Failed runs are
named, never used.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from degradation.analysis.setting import describe as describe  # re-exported: how tables and figures name their runs
from degradation.analysis.setting import families, with_kinds
from degradation.models.registry import NETWORKS, label
from degradation.store.schema import RunStatus
from degradation.store.variants import differences, run_variant

CELL = ["dataset", "preset", "arch", "shortcut", "depth", "variant"]  # one experiment: its runs differ only in seed
NETWORK = ["dataset", "preset", "arch", "shortcut", "depth"]  # one network, whatever its settings
ID_COLUMNS = ["run_id", "arch", "depth", "shortcut", "dataset", "preset", "seed", "variant", "settings"]
NO_SETTINGS = "settings not recorded"  # what differs, for a run without config (killed before it wrote one)


def _last(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    last = frame.sort_values(["run_id", "step"], kind="stable").groupby("run_id").tail(1)
    return last.set_index("run_id")[["step", "value"]].rename(columns={"step": f"{name}_step", "value": name})


def evaluated(errors: pd.DataFrame) -> pd.Series:
    """Which error rows are a run's evaluated ("test") error: its test split, or its val split when the run has no
    test rows at all (ImageNet-recipe runs: the val split's centre crop, Figure 4's bold curves)."""
    tested = set(errors.loc[errors["split"] == "test", "run_id"])
    return (errors["split"] == "test") | ((errors["split"] == "val") & ~errors["run_id"].isin(tested))


def run_finals(curves: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run of `runs`: ids, family, recipe and subset, status and progress, final train/test error, best
    test point (fractions).

    A run without a test set (ImageNet recipe) is evaluated on its val split's centre crop, reported in the test
    columns; its 10-crop errors come from runs.parquet."""
    errors = curves[curves["metric"] == "error"]
    train, test = errors[errors["split"] == "train"], errors[evaluated(errors)]
    finals = _last(train, "final_train_error").join(_last(test, "final_test_error"), how="outer")
    if not test.empty:
        best = test.loc[test.sort_values(["run_id", "step"], kind="stable").groupby("run_id")["value"].idxmin()]
        best = best.set_index("run_id")[["value", "step"]]
        finals = finals.join(best.rename(columns={"value": "best_test_error", "step": "best_test_step"}))
    extra = [c for c in ("arch_label", "status", "reason", "iteration", "total_iters", "params", "run_dir", "warmup",
                         "tencrop_top1_error", "tencrop_top5_error") if c in runs.columns]
    table = with_variants(runs)[ID_COLUMNS + extra].drop_duplicates("run_id", keep="last")
    table = with_kinds(table).set_index("run_id")
    no_option = ~table["arch"].map(lambda a: a not in NETWORKS or NETWORKS[a].has_shortcut)
    table.loc[no_option, "shortcut"] = "none"  # a plain net has no shortcut, whatever was written
    table = table.join(finals, how="left").reset_index()
    for col in ("final_train_error", "final_test_error", "best_test_error", "final_train_error_step",
                "final_test_error_step", "best_test_step", "iteration", "total_iters", "params",
                "tencrop_top1_error", "tencrop_top5_error"):
        if col not in table.columns:
            table[col] = math.nan
    table["has_curves"] = table["final_train_error"].notna() | table["final_test_error"].notna()
    table["finished"] = table["status"] == RunStatus.DONE
    arch_labels = table["arch_label"] if "arch_label" in table.columns else [None] * len(table)
    names = zip(table["arch"], table["depth"], table["shortcut"], arch_labels, strict=True)
    table["network"] = [label(a, d, s, n if isinstance(n, str) else None) for a, d, s, n in names]
    table["differs"] = _differs(table)
    table["label"] = [f"{n}, {d}" if d else n for n, d in zip(table["network"], table["differs"], strict=True)]
    return table.sort_values(CELL + ["seed"], kind="stable").reset_index(drop=True)


def with_variants(runs: pd.DataFrame) -> pd.DataFrame:
    """runs with `variant` and `settings` for every row: a runs.parquet collected before variants existed gets them
    from each run folder's config (no run folder: the run is a variant of its own, never pooled)."""
    runs = runs.copy()
    for col in ("variant", "settings"):
        if col not in runs.columns:
            runs[col] = None
    missing = runs["variant"].isna()
    if missing.any():
        for i in runs.index[missing]:
            where = runs.at[i, "run_dir"] if "run_dir" in runs.columns else None
            found = run_variant({"run_id": runs.at[i, "run_id"]}, Path(where) if isinstance(where, str) else Path("-"))
            runs.at[i, "variant"], runs.at[i, "settings"] = found["variant"], found["settings"]
    return runs


def _differs(table: pd.DataFrame) -> list[str]:
    """Per run, what its variant's settings differ in from the other variants of its network ("" when only one)."""
    out = pd.Series("", index=table.index, dtype=object)
    for _, net in table.groupby(NETWORK, sort=False):
        if net["variant"].nunique() < 2:
            continue
        known = net[net["settings"].notna()]  # a run that never recorded its config: not a difference of the others
        named = differences(dict(zip(known["variant"], known["settings"], strict=True)))
        out[net.index] = [named.get(v, NO_SETTINGS) for v in net["variant"]]
    return list(out)


def several_variants(finals: pd.DataFrame) -> list[str]:
    """One line per network that has runs of more than one variant: never pooled, each drawn and listed apart."""
    lines = []
    for _, net in finals.groupby(NETWORK, sort=True):
        if net["variant"].nunique() > 1:
            kinds = "; ".join(dict.fromkeys(d for d in net["differs"]))
            lines.append(f"{net['network'].iloc[0]} has runs of {net['variant'].nunique()} different settings "
                         f"({kinds}): each is its own row and curve, never averaged as seeds")
    return lines


def _progress(row: pd.Series) -> str:
    if pd.notna(row["iteration"]) and pd.notna(row["total_iters"]):
        return f"{int(row['iteration'])}/{int(row['total_iters'])} iterations"
    return "progress unknown"


def select_runs(finals: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The runs to report (finished ones per cell when any) and a note for every run left out or unfinished."""
    notes: list[str] = []
    keep = []
    for _, cell in finals.groupby(CELL, sort=True):
        failed = cell[cell["status"] == RunStatus.FAILED]
        for _, r in failed.iterrows():
            reason = f" ({r['reason']})" if "reason" in r and isinstance(r["reason"], str) and r["reason"] else ""
            notes.append(f"{r['label']} seed {r['seed']} failed{reason}; not used")
        usable = cell[(cell["status"] != RunStatus.FAILED) & cell["has_curves"]]
        for _, r in cell[(cell["status"] != RunStatus.FAILED) & ~cell["has_curves"]].iterrows():
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
    "label", "network", "differs", "params", "n_seeds", "seeds", "run_ids", "finished", "iteration", "total_iters",
    "final_step",
    "train_mean", "train_std", "train_min", "test_mean", "test_std", "test_min", "warmup", "best_point",
    "best_point_step",
]


def warmup_text(cell: pd.DataFrame) -> str:
    """How the warm-up went in a cell's runs: "none", "ended at 400", "cap at 4000" (the cap ended it while the
    training error was still above the threshold), "still on"; seeds that differ are listed by seed."""
    column = cell["warmup"] if "warmup" in cell.columns else pd.Series([None] * len(cell), index=cell.index)
    texts = [t if isinstance(t, str) else "-" for t in column]
    if len(set(texts)) == 1:
        return texts[0]
    return "; ".join(f"s{int(s)}: {t}" for s, t in zip(cell["seed"], texts, strict=True))


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
            "network": cell["network"].iloc[0],
            "differs": cell["differs"].iloc[0],
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
            "warmup": warmup_text(cell),
            "best_point": float(best_point.min()) if at is not None else math.nan,
            "best_point_step": at["best_test_step"] if at is not None else math.nan,
        })
    return pd.DataFrame(rows, columns=STAT_COLUMNS)


def experiments(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """(dataset, preset) pairs present, each drawn and tabulated on its own."""
    pairs = runs[["dataset", "preset"]].drop_duplicates().itertuples(index=False, name=None)
    return sorted((str(d), str(p)) for d, p in pairs)


def group(finals: pd.DataFrame, dataset: str, preset: str, family: str | None = None) -> pd.DataFrame:
    """The runs of one (data set, preset) pair; of one network family when given."""
    mine = finals[(finals["dataset"] == dataset) & (finals["preset"] == preset)]
    return mine[mine["family"] == family] if family is not None else mine


def groups(finals: pd.DataFrame) -> list[tuple[str, str, str, str | None]]:
    """(data set, preset, family, the family to name in titles) of every group drawn and judged on its own: each
    (data set, preset) pair, split by network family when it holds both (each then named: "CIFAR-family nets")."""
    out = []
    for dataset, preset in experiments(finals):
        present = families(group(finals, dataset, preset))
        out += [(dataset, preset, f, f if len(present) > 1 else None) for f in present]
    return out
