"""What summary.md adds for ImageNet-recipe runs: the 10-crop top-1 errors of Tables 2-3 beside the training and
centre-crop validation errors; and for ImageNet-family nets, the caveats of an image-folder or shortened run.

The verdict itself (plain-34 vs plain-18, ResNet-34 vs ResNet-18, judged against the noise) is the same rule
as CIFAR's, in summary.py; this module only supplies the ImageNet-specific lines.
"""

from __future__ import annotations

import math

import pandas as pd


def tencrop_top1(selected: pd.DataFrame, arch: str, shortcut: str, depth: int) -> float:
    """Mean 10-crop top-1 error (%) of a network's finished runs; NaN when none recorded it."""
    rows = selected[(selected["arch"] == arch) & (selected["shortcut"] == shortcut) & (selected["depth"] == depth)]
    values = rows["tencrop_top1_error"].dropna() if "tencrop_top1_error" in rows else pd.Series(dtype=float)
    return float(values.mean() * 100) if len(values) else math.nan


def tencrop_lines(selected: pd.DataFrame, cells: pd.DataFrame, tables: bool = True) -> list[str]:
    """Per family, the deepest against the shallowest network in 10-crop top-1 (Table 2's measure); `tables`:
    the runs are in Tables 2-3 (ImageNet-family nets), so the line points there."""
    lines = []
    for (arch, shortcut), fam in cells.groupby(["arch", "shortcut"], sort=True):
        fam = fam.sort_values("depth")
        if len(fam) < 2:
            continue
        shallow, deep = fam.iloc[0], fam.iloc[-1]
        a = tencrop_top1(selected, arch, shortcut, int(deep["depth"]))
        b = tencrop_top1(selected, arch, shortcut, int(shallow["depth"]))
        if math.isfinite(a) and math.isfinite(b):
            see = "; the paper: see table2.md" if tables else ""
            lines.append(f"- 10-crop top-1: {deep['label']} {a:.2f}% vs {shallow['label']} {b:.2f}% "
                         f"({a - b:+.2f} points{see}).")
    return lines


def image_table(selected: pd.DataFrame, cells: pd.DataFrame) -> list[str]:
    out = ["| network | final training error % | final val error % (centre crop) | 10-crop top-1 % | seeds |",
           "|---|---|---|---|---|"]
    for _, c in cells.sort_values(["arch", "shortcut", "depth"]).iterrows():
        top1 = tencrop_top1(selected, c["arch"], c["shortcut"], int(c["depth"]))
        out.append(f"| {c['label']} | {c['train_mean']:.2f} | {c['test_mean']:.2f} "
                   f"| {'—' if not math.isfinite(top1) else f'{top1:.2f}'} | {c['n_seeds']} |")
    return out


def image_caveats(dataset: str, preset: str, cells: pd.DataFrame) -> list[str]:
    caveats = []
    if dataset != "imagenet":
        caveats.append("These runs use an image folder, not ILSVRC-2012: they show the direction of the effect, "
                       "not the paper's numbers.")
    if preset != "imagenet":
        iters = cells["total_iters"].dropna()
        length = f"{int(iters.max()):,} iterations" if len(iters) else "a shorter schedule"
        caveats.append(f"The {preset} preset trains for {length} (the paper: up to 600,000).")
    return caveats
