"""Tables 2 and 3 (ImageNet validation, 10-crop testing) from our runs, beside the paper's numbers.

Table 2: top-1 error of plain and residual (option A) 18- and 34-layer nets. Table 3: top-1 / top-5 of
plain-34, ResNet-34 with shortcut options A/B/C, and ResNet-50/101/152 (option B). Our numbers are each run's
10-crop errors of its final weights (never a best point), mean ± std (ddof=1) over seeds. Differences to the
paper are computed only for data=imagenet under the paper's schedule; elsewhere they would mislead. The tables
hold the ImageNet-family runs, whatever their data; the paper's rows (and "not run" lines for those missing)
appear only for data=imagenet: other data list only their own runs.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from degradation.analysis.finals import CELL, experiments, group, label, select_runs
from degradation.analysis.setting import data_phrase, describe, families, paper_imagenet
from degradation.store.io import write_text_atomic
from degradation.text import points

# He et al. 2015, ILSVRC-2012 validation, 10-crop testing, error %.
PAPER_TABLE2 = {("plain", "none", 18): 27.94, ("plain", "none", 34): 28.54,
                ("resnet", "A", 18): 27.88, ("resnet", "A", 34): 25.03}
PAPER_TABLE3 = {("plain", "none", 34): (28.54, 10.02), ("resnet", "A", 34): (25.03, 7.76),
                ("resnet", "B", 34): (24.52, 7.46), ("resnet", "C", 34): (24.19, 7.40),
                ("resnet", "B", 50): (22.85, 6.71), ("resnet", "B", 101): (21.75, 6.05),
                ("resnet", "B", 152): (21.43, 5.71)}
PAPER_PRESET = "imagenet"
FAMILY = "imagenet"  # the network family these tables hold


def _stats(values: pd.Series) -> tuple[float, float, int]:
    values = values.dropna() * 100
    std = float(values.std(ddof=1)) if len(values) > 1 else math.nan
    return (float(values.mean()) if len(values) else math.nan), std, len(values)


def image_cells(finals: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Per (data set, preset, network) of the ImageNet family: 10-crop top-1/top-5 (percent) over the selected runs
    (with the title of its data set and preset); plus notes."""
    rows, notes = [], []
    if "family" in finals.columns:
        finals = finals[finals["family"] == FAMILY]
    for dataset, preset in experiments(finals):
        mine = group(finals, dataset, preset)
        selected, picked = select_runs(mine)
        title = describe(dataset, preset, mine)
        notes += [f"{title}: {n}" for n in picked]
        for key, cell in selected.groupby(CELL, sort=True):
            top1, top1_std, n1 = _stats(cell["tencrop_top1_error"])
            top5, top5_std, _ = _stats(cell["tencrop_top5_error"])
            arch, shortcut, depth = key[2], key[3], int(key[4])
            rows.append({"dataset": dataset, "preset": preset, "title": title, "data": data_phrase(dataset, mine),
                         "arch": arch, "shortcut": shortcut, "depth": depth,
                         "network": label(arch, depth, shortcut), "n_seeds": len(cell), "n_tencrop": n1,
                         "finished": bool(cell["finished"].all()), "top1": top1, "top1_std": top1_std,
                         "top5": top5, "top5_std": top5_std,
                         "train_final": float(cell["final_train_error"].mean() * 100),
                         "val_centre_final": float(cell["final_test_error"].mean() * 100),
                         "run_ids": " ".join(cell["run_id"])})
    return pd.DataFrame(rows), notes


def _diff(ours: float, paper: float | None, comparable: bool) -> str:
    if not comparable or paper is None or not math.isfinite(ours):
        return "—"
    return f"{ours - paper:+.2f}"


def _find(rows: pd.DataFrame, arch: str, shortcut: str, depth: int) -> pd.Series | None:
    hit = rows[(rows["arch"] == arch) & (rows["shortcut"] == shortcut) & (rows["depth"] == depth)]
    return None if hit.empty else hit.iloc[0]


def _header(dataset: str, preset: str, rows: pd.DataFrame) -> list[str]:
    out = [f"## {rows['title'].iloc[0]}", ""]
    if not paper_imagenet(dataset):
        out += [f"These runs use {rows['data'].iloc[0]}, not ILSVRC-2012: the paper's numbers are not their "
                "comparison, so only the runs' own rows are shown.", ""]
    elif preset != PAPER_PRESET:
        out += [f"The {preset} preset is not the paper's 60e4-iteration schedule: no difference is computed.", ""]
    return out


def _join(out: list[str], notes: list[str]) -> str:
    if notes:
        out = out + ["", "Runs left out or unfinished:"] + [f"- {n}" for n in notes]
    return "\n".join(out) + "\n"


def _document(title: str, heads: tuple[list[str], list[str]], body, footer: str, cells: pd.DataFrame,
              notes: list[str]) -> str:
    """One table per (data set, preset): its header lines, then body(rows, paper, comparable) -> table lines;
    heads: the table heads with the paper's columns (ImageNet) and without (other data)."""
    out = [title, ""]
    for (dataset, preset), rows in (cells.groupby(["dataset", "preset"], sort=True) if not cells.empty else []):
        paper = paper_imagenet(dataset)
        out += _header(dataset, preset, rows) + heads[0 if paper else 1]
        out += body(rows, paper, paper and preset == PAPER_PRESET) + [""]
    if cells.empty:
        out += ["No ImageNet-family runs yet.", ""]
    return _join(out + [footer], notes)


def _top1(cell: pd.Series | None) -> str:
    return "not run" if cell is None else points(cell["top1"], std=cell["top1_std"])


def _table2_rows(rows: pd.DataFrame, paper: bool, comparable: bool) -> list[str]:
    if not paper:  # the runs' own depths only
        depths = sorted({int(d) for d in rows.loc[rows["arch"].isin(["plain", "resnet"]), "depth"]})
        return [f"| {d} | {_top1(_find(rows, 'plain', 'none', d))} | {_top1(_find(rows, 'resnet', 'A', d))} |"
                for d in depths]
    out = []
    for depth in (18, 34):
        plain, res = _find(rows, "plain", "none", depth), _find(rows, "resnet", "A", depth)
        p_paper, r_paper = PAPER_TABLE2[("plain", "none", depth)], PAPER_TABLE2[("resnet", "A", depth)]
        p = (plain["top1"], plain["top1_std"]) if plain is not None else (math.nan, math.nan)
        r = (res["top1"], res["top1_std"]) if res is not None else (math.nan, math.nan)
        out.append(f"| {depth} | {points(p[0], std=p[1]) if plain is not None else 'not run'} | {p_paper:.2f} "
                   f"| {_diff(p[0], p_paper, comparable)} | {points(r[0], std=r[1]) if res is not None else 'not run'} "
                   f"| {r_paper:.2f} | {_diff(r[0], r_paper, comparable)} |")
    return out


def _table3_name(arch: str, shortcut: str, depth: int) -> str:
    return label(arch, depth, shortcut) + (" (A)" if arch == "resnet" and shortcut == "A" else "")


def _table3_rows(rows: pd.DataFrame, paper_rows: bool, comparable: bool) -> list[str]:
    ours = sorted({(r.arch, r.shortcut, int(r.depth)) for r in rows.itertuples()}, key=lambda k: (k[2], k[0], k[1]))
    if not paper_rows:  # the runs' own networks only
        return [f"| {_table3_name(*key)} | {points(c['top1'], std=c['top1_std'])} "
                f"| {points(c['top5'], std=c['top5_std'])} | {c['n_seeds']} |"
                for key in ours if (c := _find(rows, *key)) is not None]
    out = []
    keys = list(PAPER_TABLE3) + sorted({(r.arch, r.shortcut, int(r.depth)) for r in rows.itertuples()}
                                       - set(PAPER_TABLE3) - set(PAPER_TABLE2))
    for arch, shortcut, depth in keys:
        cell = _find(rows, arch, shortcut, depth)
        paper = PAPER_TABLE3.get((arch, shortcut, depth))
        name = _table3_name(arch, shortcut, depth)
        if cell is None:
            if paper is not None:
                out.append(f"| {name} | not run | not run | {paper[0]:.2f} | {paper[1]:.2f} | — | — | 0 |")
            continue
        p1, p5 = paper if paper else (None, None)
        top1, top5 = points(cell["top1"], std=cell["top1_std"]), points(cell["top5"], std=cell["top5_std"])
        out.append(f"| {name} | {top1} | {top5} "
                   f"| {'—' if p1 is None else f'{p1:.2f}'} | {'—' if p5 is None else f'{p5:.2f}'} "
                   f"| {_diff(cell['top1'], p1, comparable)} | {_diff(cell['top5'], p5, comparable)} "
                   f"| {cell['n_seeds']} |")
    return out


def table2_markdown(cells: pd.DataFrame, notes: list[str]) -> str:
    return _document(
        "# Table 2: top-1 error % on the validation set (10-crop testing), plain vs ResNet",
        (["| layers | plain (ours) | plain (paper) | ours − paper | ResNet (ours) | ResNet (paper) | ours − paper |",
          "|---|---|---|---|---|---|---|"],
         ["| layers | plain (ours) | ResNet (ours) |", "|---|---|---|"]),
        _table2_rows,
        "Ours: the 10-crop top-1 error of each run's final weights (four corners, centre and their mirrors of "
        "the image resized to 256; softmax averaged), mean ± std over seeds. ResNets: option A shortcuts. "
        "Paper (ImageNet only): He et al. 2015, Table 2.",
        cells, notes,
    )


def table3_markdown(cells: pd.DataFrame, notes: list[str]) -> str:
    return _document(
        "# Table 3: top-1 / top-5 error % on the validation set (10-crop testing)",
        (["| model | top-1 (ours) | top-5 (ours) | top-1 (paper) | top-5 (paper) | top-1 ours − paper "
          "| top-5 ours − paper | seeds |", "|---|---|---|---|---|---|---|---|"],
         ["| model | top-1 (ours) | top-5 (ours) | seeds |", "|---|---|---|---|"]),
        _table3_rows,
        "Ours: 10-crop errors of each run's final weights, mean ± std over seeds. Paper (ImageNet only): He et al. "
        "2015, Table 3 (ResNet-50/101/152 with option B).",
        cells, notes,
    )


def write_tables23(finals: pd.DataFrame, results_dir: Path) -> list[Path]:
    """results/table2.md, table3.md and tables23.csv; nothing when there is no ImageNet-family run."""
    if FAMILY not in families(finals):
        return []
    cells, notes = image_cells(finals)
    results_dir = Path(results_dir)
    paths = [results_dir / "table2.md", results_dir / "table3.md", results_dir / "tables23.csv"]
    write_text_atomic(paths[0], table2_markdown(cells, notes))
    write_text_atomic(paths[1], table3_markdown(cells, notes))
    write_text_atomic(paths[2], cells.to_csv(index=False))
    return paths
