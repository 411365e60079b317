"""Table 6 (CIFAR-10 test error) from our runs: the final-iteration error, plain nets beside ResNets.

Honest selection: "final" is the test error at the last evaluation of each run (its final iteration when it
finished); the best test point seen during training is a separate, labelled column, since choosing it looks
at the test set. Several seeds: mean ± std (ddof=1), the best seed's final error, and n. The paper's column is
shown only for CIFAR-10 on its whole training set: on other data or a subset it is not the comparison.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from degradation.analysis.finals import cell_stats, experiments, group, select_runs, several_variants
from degradation.analysis.setting import data_phrase, describe, paper_cifar
from degradation.models.registry import NETWORKS, legend_shortcut
from degradation.store.io import write_text_atomic
from degradation.text import points

PLAIN_NOTE = "none (curves only)"
PAPER_NOTE = ("Paper: He et al. 2015, Table 6 (ResNets with option-A shortcuts). Plain nets: the paper gives no "
              "numbers, only the Figure 6 curves. ResNet-110: the paper's 6.43 is the best of 5 runs; the difference "
              "is taken against their mean, 6.61. PreAct nets: He et al. 2016 (Identity Mappings), Tables 3-4.")


def paper_error(arch: str, shortcut: str, depth: int) -> float:
    """The paper's test error % for a network as its legend runs it (registry), nan when there is none."""
    net = NETWORKS.get(arch)
    if net is None or shortcut != legend_shortcut(arch):
        return math.nan
    return net.paper_test_error.get(int(depth), math.nan)


def paper_reference(arch: str, shortcut: str, depth: int) -> tuple[float, str]:
    """(number to compare with, how the paper states it); nan when the paper has none."""
    depth = int(depth)
    net = NETWORKS.get(arch)
    if net is not None and not net.residual:
        return math.nan, PLAIN_NOTE
    best = paper_error(arch, shortcut, depth)
    if net is None or not math.isfinite(best):
        return math.nan, "none"
    if depth in net.paper_mean:
        mean, std, n = net.paper_mean[depth]
        return mean, f"{best:.2f} (best of {n}; mean {mean:.2f} ± {std:.2f})"
    return best, f"{best:.2f}" + (f" ({net.paper_source})" if net.paper_source else "")


def _status(cell: pd.Series) -> str:
    if cell["finished"]:
        return "done"
    done = f"{int(cell['iteration'])}/{int(cell['total_iters'])}" if pd.notna(cell["iteration"]) else "?"
    return f"unfinished ({done} iterations)"


def build_table6(finals: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """One row per (data set, preset, arch, shortcut, depth), values in percent; plus notes on left-out runs."""
    rows, notes = [], []
    for dataset, preset in experiments(finals):
        mine = group(finals, dataset, preset)
        selected, picked = select_runs(mine)
        title, paper = describe(dataset, preset, mine), paper_cifar(dataset, mine)
        notes += [f"{title}: {n}" for n in several_variants(mine) + picked]
        for _, c in cell_stats(selected).iterrows():
            reference, paper_text = paper_reference(c["arch"], c["shortcut"], c["depth"])
            if not paper:  # not the paper's setting: no paper number at all
                reference, paper_text = math.nan, ""
            comparable = math.isfinite(reference)
            rows.append({
                "dataset": dataset, "preset": preset, "title": title, "data": data_phrase(dataset, mine),
                "paper_setting": paper, "network": c["label"], "arch": c["arch"],
                "shortcut": c["shortcut"], "depth": int(c["depth"]), "params": c["params"],
                "n_seeds": int(c["n_seeds"]), "seeds": " ".join(map(str, c["seeds"])), "status": _status(c),
                "final_step": c["final_step"],
                "final_test_error_mean": c["test_mean"], "final_test_error_std": c["test_std"],
                "final_test_error_best_seed": c["test_min"],
                "final_train_error_mean": c["train_mean"], "warmup": c["warmup"], "differs": c["differs"],
                "best_test_point_error": c["best_point"], "best_test_point_step": c["best_point_step"],
                "paper_error": paper_error(c["arch"], c["shortcut"], c["depth"]) if math.isfinite(reference)
                else math.nan,
                "paper": paper_text,
                "difference": c["test_mean"] - reference if comparable else math.nan,
                "run_ids": " ".join(c["run_ids"]),
            })
    table = pd.DataFrame(rows)
    if not table.empty:  # plain beside residual: by depth, plain first
        table = table.sort_values(["dataset", "preset", "depth", "arch", "shortcut"], kind="stable")
    return table.reset_index(drop=True), notes


def _params(value: float) -> str:
    return "—" if not math.isfinite(float(value)) else f"{int(value):,} ({value / 1e6:.2f}M)"


def _final(row: pd.Series) -> str:
    text = points(row["final_test_error_mean"])
    if row["n_seeds"] > 1:
        text += f" ± {points(row['final_test_error_std'])}"
    return text


def _finals(rows: pd.DataFrame) -> str:
    """One network's final error; several variants (different settings) each with what differs, never pooled."""
    if rows.empty:
        return "not run"
    if len(rows) == 1:
        return _final(rows.iloc[0])
    return "; ".join(f"{_final(r)} ({r['differs']})" for _, r in rows.iterrows())


def _signed(value: float) -> str:
    return "—" if not math.isfinite(float(value)) else f"{value:+.2f}"


def _side_by_side(rows: pd.DataFrame, paper: bool) -> list[str]:
    lines = ["| depth | params | plain: final test error % | ResNet: final test error % |"
             + (" paper ResNet % |" if paper else ""), "|---|---|---|---|" + ("---|" if paper else "")]
    for depth, cells in rows.groupby("depth", sort=True):
        plain = cells[cells["arch"] == "plain"]
        res = cells[(cells["arch"] == "resnet") & (cells["shortcut"] == "A")]
        params = cells["params"].dropna()
        reference = (f" {res.iloc[0]['paper'] if len(res) else points(paper_error('resnet', 'A', depth))} |"
                     if paper else "")
        lines.append(f"| {depth} | {_params(params.iloc[0]) if len(params) else '—'} "
                     f"| {_finals(plain)} | {_finals(res)} |{reference}")
    return lines


def _detail(rows: pd.DataFrame, paper: bool) -> list[str]:
    lines = ["| network | params | seeds | final test error % (mean ± std) | best seed's final % | final train error % "
             "| best test point % (chosen on test; not a result) |" + (" paper % | ours − paper |" if paper else "")
             + " warm-up | status |", "|---|---|---|---|---|---|---|" + ("---|---|" if paper else "") + "---|---|"]
    for _, r in rows.iterrows():
        at = f" @ {int(r['best_test_point_step'])}" if pd.notna(r["best_test_point_step"]) else ""
        reference = f" {r['paper']} | {_signed(r['difference'])} |" if paper else ""
        lines.append(
            f"| {r['network']} | {_params(r['params'])} | {r['n_seeds']} | {_final(r)} "
            f"| {points(r['final_test_error_best_seed'])} | {points(r['final_train_error_mean'])} "
            f"| {points(r['best_test_point_error'])}{at} |{reference} {r['warmup']} | {r['status']} |"
        )
    return lines


def table6_markdown(table: pd.DataFrame, notes: list[str]) -> str:
    out = ["# Table 6: our final test errors beside the paper's CIFAR-10 numbers", ""]
    if table.empty:
        return "\n".join(out + ["No runs with curves yet.", ""] + [f"- {n}" for n in notes]) + "\n"
    for (dataset, preset), rows in table.groupby(["dataset", "preset"], sort=True):
        first = rows.iloc[0]
        paper = bool(first["paper_setting"])
        out += [f"## {first['title']}", ""]
        if not paper:
            setting = "CIFAR-10 on its whole training set" if dataset == "cifar10" else "CIFAR-10"
            out += [f"The paper's numbers are for {setting}; these runs use {first['data']}, so they are not shown and "
                    "no difference is computed.", ""]
        elif preset != "paper":
            out += [f"The {preset} preset is not the paper's 64k-iteration schedule: differences are indicative.", ""]
        out += _side_by_side(rows, paper) + [""] + _detail(rows, paper) + [""]
    out += [
        "Final test error: each run's test error at its last evaluation (the final iteration of a finished run), "
        "mean ± std over seeds (std with ddof=1; shown only with several seeds); best seed's final: the lowest of "
        "those final errors. Final train error: mean over the last logging window.",
        "Best test point: the lowest test error seen at any evaluation during training. It is chosen by looking at "
        "the test set, so it is reported separately and never used as our result.",
        *([PAPER_NOTE] if table["paper_setting"].any() else []),
        "Warm-up: lr 0.01 until a logging window's training error is below 80% (\"ended at N\"), or until the cap "
        "schedule.warmup.max_iters (\"cap at N\": the net had not left 80% by then); \"none\": no warm-up.",
        "Seeds: only runs that differ in nothing but the seed are pooled; a network run with other settings too has "
        "one row per setting, named by what differs.",
    ]
    if notes:
        out += ["", "Runs left out or unfinished:"] + [f"- {n}" for n in notes]
    return "\n".join(out) + "\n"


def write_table6(finals: pd.DataFrame, results_dir: Path) -> list[Path]:
    """results/table6.md and results/table6.csv (percent, full precision in the CSV)."""
    table, notes = build_table6(finals)
    md, csv = Path(results_dir) / "table6.md", Path(results_dir) / "table6.csv"
    write_text_atomic(csv, table.to_csv(index=False))
    write_text_atomic(md, table6_markdown(table, notes))
    return [md, csv]
