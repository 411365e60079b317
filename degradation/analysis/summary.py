"""results/summary.md: is there degradation, and how much? Every number is computed from the collected runs.

Per family, final training and test error against depth; then, from the last logging window's training
error, whether each deeper net ends above (worse than) or below the shallowest net of its family, by how
many points, and the verdict: deeper plain nets worse and deeper ResNets not = the paper's degradation.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from degradation.analysis.finals import cell_stats, describe, experiments, select_runs
from degradation.io import write_text_atomic

SAME = 0.05  # points: a smaller difference is reported as "the same as"


def _family_name(arch: str, shortcut: str) -> str:
    if arch == "plain":
        return "plain"
    return "ResNet" if shortcut == "A" else f"ResNet ({shortcut})"


def compare(deep: pd.Series, shallow: pd.Series, key: str = "train") -> tuple[float, str]:
    """(points, "4.1 points above plain-20"): positive points = the deeper net ends worse."""
    diff = float(deep[f"{key}_mean"] - shallow[f"{key}_mean"])
    if abs(diff) < SAME:
        phrase = f"the same as {shallow['label']} (within {SAME} points)"
    else:
        phrase = f"{abs(diff):.1f} points {'above' if diff > 0 else 'below'} {shallow['label']}"
    spread = [float(s) for s in (deep[f"{key}_std"], shallow[f"{key}_std"]) if math.isfinite(s)]
    if spread:
        phrase += f" (seed std up to {max(spread):.1f})"
    return diff, phrase


def _family_lines(cells: pd.DataFrame) -> tuple[list[str], dict[str, tuple[float, str]]]:
    """Statements per family, and each family's deepest-vs-shallowest training difference as a sentence."""
    lines, verdicts = [], {}
    for (arch, shortcut), fam in cells.groupby(["arch", "shortcut"], sort=True):
        fam = fam.sort_values("depth")
        if len(fam) < 2:
            continue
        shallow = fam.iloc[0]
        for _, deep in fam.iloc[1:].iterrows():
            train = compare(deep, shallow, "train")[1]
            test = compare(deep, shallow, "test")[1]
            lines.append(f"- {deep['label']} ends {train} in training error; in test error, {test}.")
        diff, phrase = compare(fam.iloc[-1], shallow, "train")
        verdicts[_family_name(arch, shortcut)] = (diff, f"{fam.iloc[-1]['label']} ends {phrase} in training error")
    return lines, verdicts


def same_depth(cells: pd.DataFrame) -> list[str]:
    """Plain vs ResNet at each depth both have: the gap the shortcuts make."""
    lines = []
    plain, res = cells[cells["arch"] == "plain"], cells[(cells["arch"] == "resnet") & (cells["shortcut"] == "A")]
    for depth in sorted(set(plain["depth"]) & set(res["depth"])):
        p, r = plain[plain["depth"] == depth].iloc[0], res[res["depth"] == depth].iloc[0]
        lines.append(f"- At depth {depth}, {p['label']} ends {compare(p, r, 'train')[1]} in training error; "
                     f"in test error, {compare(p, r, 'test')[1]}.")
    return lines


def verdict(verdicts: dict[str, tuple[float, str]]) -> str:
    """The paper's claim tested on these runs: deeper plain nets train worse, deeper ResNets do not."""
    plain, resnet = verdicts.get("plain"), verdicts.get("ResNet")
    if plain is None or resnet is None:
        missing = " and ".join(n for n, v in (("plain", plain), ("ResNet", resnet)) if v is None)
        return f"Degradation cannot be judged: fewer than two depths of {missing} nets have results."
    plain_worse, resnet_worse = plain[0] >= SAME, resnet[0] >= SAME
    if plain_worse and not resnet_worse:
        head = "Degradation shown: the deeper plain net trains worse, the deeper ResNet does not"
    elif plain_worse:
        head = "Degradation of both families: the deeper plain net and the deeper ResNet both train worse"
    elif resnet_worse:
        head = "Not the paper's pattern: the deeper ResNet trains worse but the deeper plain net does not"
    else:
        head = "Degradation not shown: the deeper plain net does not train worse"
    return f"{head} ({plain[1]}; {resnet[1]})."


def _caveats(dataset: str, preset: str, cells: pd.DataFrame, notes: list[str]) -> list[str]:
    out = []
    if dataset == "synthetic":
        out.append("These runs use synthetic data, not CIFAR-10: they show the shape of the effect, not the paper's "
                   "numbers.")
    if preset != "paper":
        iters = cells["total_iters"].dropna()
        length = f"{int(iters.max()):,} iterations" if len(iters) else "a shorter schedule"
        out.append(f"The {preset} preset trains for {length} (the paper: 64,000), so errors are not the paper's.")
    if not cells.empty and not cells["finished"].all():
        out.append("Some runs are unfinished; their numbers are where they stand now, not final.")
    out += notes
    return out


def _table(cells: pd.DataFrame) -> list[str]:
    lines = ["| family | depth | final training error % | final test error % | seeds |", "|---|---|---|---|---|"]
    for _, c in cells.sort_values(["arch", "shortcut", "depth"]).iterrows():
        train, test = f"{c['train_mean']:.2f}", f"{c['test_mean']:.2f}"
        if c["n_seeds"] > 1:
            train, test = f"{train} ± {c['train_std']:.2f}", f"{test} ± {c['test_std']:.2f}"
        lines.append(f"| {_family_name(c['arch'], c['shortcut'])} | {c['depth']} | {train} | {test} | {c['n_seeds']} |")
    return lines


def build_summary(finals: pd.DataFrame) -> str:
    """The summary's markdown for every (data set, preset) pair in the results."""
    out = ["# Summary: does depth degrade plain nets and not ResNets?", ""]
    pairs = experiments(finals)
    out += [f"![{describe(d, p)}: final error against depth](figures/depth{'' if len(pairs) == 1 else f'-{d}-{p}'}.png)"
            for d, p in pairs] + [""]  # the depth curves (figures/depthcurves.py) answer the title at a glance
    for dataset, preset in pairs:
        selected, notes = select_runs(finals[(finals["dataset"] == dataset) & (finals["preset"] == preset)])
        cells = cell_stats(selected)
        out += [f"## {describe(dataset, preset)}", ""]
        if cells.empty:
            out += ["No runs with curves yet.", ""] + [f"- {n}" for n in notes] + [""]
            continue
        lines, verdicts = _family_lines(cells)
        out += [verdict(verdicts), ""] + lines + same_depth(cells) + [""] + _table(cells) + [""]
        caveats = _caveats(dataset, preset, cells, notes)
        if caveats:
            out += ["Caveats:"] + [f"- {c}" for c in caveats] + [""]
    out += ["Training error: mean over the last logging window of each run; test error: the last evaluation "
            "(the final iteration), never the best one; with several seeds, mean ± std (ddof=1) over seeds. "
            "\"Above\" means worse (higher error)."]
    return "\n".join(out) + "\n"


def write_summary(finals: pd.DataFrame, results_dir: Path) -> Path:
    path = Path(results_dir) / "summary.md"
    write_text_atomic(path, build_summary(finals))
    return path
