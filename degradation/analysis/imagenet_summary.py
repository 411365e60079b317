"""summary.md's ImageNet section: does plain-34 train worse than plain-18 while ResNet-34 trains better than
ResNet-18 (Figure 4, Table 2)? Computed from the collected runs: the last training window, the final centre-crop
validation error and the final 10-crop top-1 error."""

from __future__ import annotations

import math

import pandas as pd

from degradation.analysis.finals import cell_stats, describe, select_runs
from degradation.analysis.summary import _family_lines, verdict


def _tencrop(selected: pd.DataFrame, arch: str, shortcut: str, depth: int) -> float:
    rows = selected[(selected["arch"] == arch) & (selected["shortcut"] == shortcut) & (selected["depth"] == depth)]
    values = rows["tencrop_top1_error"].dropna()
    return float(values.mean() * 100) if len(values) else math.nan


def imagenet_section(finals: pd.DataFrame, dataset: str, preset: str) -> list[str]:
    selected, notes = select_runs(finals[(finals["dataset"] == dataset) & (finals["preset"] == preset)])
    cells = cell_stats(selected)
    out = [f"## {describe(dataset, preset)}", ""]
    if cells.empty:
        return out + ["No runs with curves yet.", ""] + [f"- {n}" for n in notes] + [""]
    lines, verdicts = _family_lines(cells)
    head = verdict(verdicts)
    if (cells["n_seeds"] < 2).any() and "cannot be judged" not in head:
        head += " With one seed per network this is indicative, not conclusive (see the caveats)."
    out += [head, ""]
    lines = [line.replace("in test error", "in validation error (centre crop)") for line in lines]
    for (arch, shortcut), fam in cells.groupby(["arch", "shortcut"], sort=True):
        fam = fam.sort_values("depth")
        if len(fam) < 2:
            continue
        shallow, deep = fam.iloc[0], fam.iloc[-1]
        a = _tencrop(selected, arch, shortcut, int(deep["depth"]))
        b = _tencrop(selected, arch, shortcut, int(shallow["depth"]))
        if math.isfinite(a) and math.isfinite(b):
            lines.append(f"- 10-crop top-1: {deep['label']} {a:.2f}% vs {shallow['label']} {b:.2f}% "
                         f"({a - b:+.2f} points; the paper: see table2.md).")
    out += lines + [""]
    out += ["| network | final training error % | final val error % (centre crop) | 10-crop top-1 % | seeds |",
            "|---|---|---|---|---|"]
    for _, c in cells.sort_values(["arch", "shortcut", "depth"]).iterrows():
        top1 = _tencrop(selected, c["arch"], c["shortcut"], int(c["depth"]))
        out.append(f"| {c['label']} | {c['train_mean']:.2f} | {c['test_mean']:.2f} "
                   f"| {'—' if not math.isfinite(top1) else f'{top1:.2f}'} | {c['n_seeds']} |")
    out.append("")
    caveats = []
    if dataset != "imagenet":
        caveats.append("These runs use an image folder, not ILSVRC-2012: they show the direction of the effect, "
                       "not the paper's numbers.")
    if preset != "imagenet":
        iters = cells["total_iters"].dropna()
        length = f"{int(iters.max()):,} iterations" if len(iters) else "a shorter schedule"
        caveats.append(f"The {preset} preset trains for {length} (the paper: up to 600,000).")
    if (cells["n_seeds"] < 2).any():
        caveats.append("One seed for some networks: the seed-to-seed spread is unmeasured, so a difference of a "
                       "few tenths of a point may be noise; more seeds (--seeds 0,1,2) settle it.")
    if not cells["finished"].all():
        caveats.append("Some runs are unfinished; their numbers are where they stand now, not final.")
    caveats += notes
    if caveats:
        out += ["Caveats:"] + [f"- {c}" for c in caveats] + [""]
    return out
