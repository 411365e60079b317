"""results/summary.md: is there degradation, and how much, and can the noise tell? Every number is computed.

Per family, final training and test error against depth; then, for every pair of consecutive depths of a family,
whether the deeper net ends above (worse), below (better) or within the noise of the shallower one, and the
verdict on the paper's claim (deeper plain nets train worse, deeper ResNets do not): shown, not shown or
inconclusive. Only finished runs decide; unfinished ones are listed where they stand.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from degradation.analysis.finals import cell_stats, experiments, group, groups, select_runs, several_variants
from degradation.analysis.imagenet_summary import image_caveats, image_table, tencrop_lines
from degradation.analysis.setting import (
    PAPER_CIFAR_ITERS,
    PAPER_CIFAR_TRAIN,
    data_phrase,
    describe,
    distinct,
    subset_text,
)
from degradation.store.io import write_text_atomic

Z = 2.0  # a gap counts when it exceeds Z standard errors of the difference (about 95%)
RULE = (
    "Rule: a deeper net is called worse (or better) than the next shallower one of its family when its final "
    f"training error is higher (lower) by more than {Z:g} standard errors of the difference. With at least two seeds "
    "of both nets the standard error comes from the spread across seeds (std/sqrt(n) per net); it is never taken "
    "below the binomial standard error of the final logging windows (sqrt(p(1-p)/N), N images per window), which "
    "alone is used with one seed. Depths are compared in order (20 with 32, 32 with 44, ...). Degradation is "
    "shown when every consecutive plain pair is worse and no consecutive ResNet pair is; not shown when a deeper "
    "plain net is better than the one before it; inconclusive otherwise. Unfinished runs never decide."
)


@dataclass
class Step:
    """One consecutive pair of depths of a family: gap (points, + = deeper worse) and its standard error."""

    deep: pd.Series
    shallow: pd.Series
    gap: float
    se: float

    @property
    def outcome(self) -> str:
        if self.gap > Z * self.se:
            return "worse"
        if self.gap < -Z * self.se:
            return "better"
        return "within noise"

    def phrase(self) -> str:
        what = {"worse": "above", "better": "below"}.get(self.outcome)
        size = f"{abs(self.gap):.2f} ± {self.se:.2f} points"
        if what is None:
            return (f"{self.deep['label']} vs {self.shallow['label']}: {self.gap:+.2f} ± {self.se:.2f} points, "
                    "within noise")
        return f"{self.deep['label']} ends {size} {what} {self.shallow['label']}"


def _family_name(arch: str, shortcut: str) -> str:
    if arch == "plain":
        return "plain"
    return "ResNet" if shortcut == "A" else f"ResNet ({shortcut})"


def _window_images(cell: pd.Series) -> float:
    """Images in the final logging window, from the cell's recorded settings (nan when unknown)."""
    try:
        settings = json.loads(cell["settings"]) if isinstance(cell.get("settings"), str) else {}
    except ValueError:
        settings = {}
    log_every, batch = settings.get("schedule.log_every"), settings.get("schedule.batch_size")
    iters = settings.get("schedule.max_iters")
    if not log_every or not batch:
        return math.nan
    last = int(iters) % int(log_every) if iters else 0
    return float((last or int(log_every)) * int(batch))


def binomial_se(error_pct: float, images: float) -> float:
    """Standard error in points of an error rate measured on `images` images (nan when unknown)."""
    if not math.isfinite(images) or images <= 0 or not math.isfinite(error_pct):
        return math.nan
    p = min(max(error_pct / 100, 0.0), 1.0)
    return 100 * math.sqrt(max(p * (1 - p), 0.25 / images) / images)  # p near 0 or 1: at least half an image


def step(deep: pd.Series, shallow: pd.Series, key: str = "train") -> Step:
    """The gap between two cells and its standard error (see RULE)."""
    gap = float(deep[f"{key}_mean"] - shallow[f"{key}_mean"])
    window = [binomial_se(float(c[f"{key}_mean"]), _window_images(c)) for c in (deep, shallow)]
    se_window = math.sqrt(sum(v**2 for v in window)) if all(math.isfinite(v) for v in window) else math.nan
    se_seeds = math.nan
    if deep["n_seeds"] > 1 and shallow["n_seeds"] > 1:
        se_seeds = math.sqrt(sum(c[f"{key}_std"] ** 2 / c["n_seeds"] for c in (deep, shallow)))
    known = [v for v in (se_seeds, se_window) if math.isfinite(v)]
    return Step(deep, shallow, gap, max(known) if known else math.inf)


def _series(cells: pd.DataFrame) -> dict[tuple[str, str], list[pd.DataFrame]]:
    """Per family, the series of depths run with the same settings (apart from depth); most depths first."""
    out: dict[tuple[str, str], list[pd.DataFrame]] = {}
    for (arch, shortcut), fam in cells.groupby(["arch", "shortcut"], sort=True):
        groups = [g.sort_values("depth") for _, g in fam.groupby("series", sort=True)]
        out[(arch, shortcut)] = sorted(groups, key=lambda g: -len(g))
    return out


def _family_lines(cells: pd.DataFrame) -> list[str]:
    """One statement per consecutive pair of depths run alike; a pair with an unfinished net says so."""
    lines = []
    for series in _series(cells).values():
        for fam in series:
            for i in range(len(fam) - 1):
                p = step(fam.iloc[i + 1], fam.iloc[i])
                test = step(p.deep, p.shallow, "test")
                unfinished = [c["label"] for c in (p.shallow, p.deep) if not c["finished"]]
                note = f" ({', '.join(unfinished)} unfinished: not final, not used for the verdict)" * bool(unfinished)
                lines.append(f"- {p.phrase()} in training error; in test error, {test.gap:+.2f} points{note}.")
    return lines


def _steps(done: pd.DataFrame) -> dict[str, list[Step]]:
    """Each family's consecutive steps over its longest series of finished depths: what the verdict reads."""
    steps = {}
    for (arch, shortcut), series in _series(done).items():
        fam = series[0] if series else None
        if fam is not None and len(fam) > 1:
            steps[_family_name(arch, shortcut)] = [step(fam.iloc[i + 1], fam.iloc[i]) for i in range(len(fam) - 1)]
    return steps


def same_depth(cells: pd.DataFrame) -> list[str]:
    """Plain vs ResNet at each depth both have: the gap the shortcuts make."""
    lines = []
    plain, res = cells[cells["arch"] == "plain"], cells[(cells["arch"] == "resnet") & (cells["shortcut"] == "A")]
    for depth in sorted(set(plain["depth"]) & set(res["depth"])):
        p, r = plain[plain["depth"] == depth].iloc[0], res[res["depth"] == depth].iloc[0]
        lines.append(f"- At depth {depth}, {step(p, r).phrase()} in training error; "
                     f"in test error, {step(p, r, 'test').gap:+.2f} points.")
    return lines


def verdict(steps: dict[str, list[Step]]) -> str:
    """The paper's claim tested on these runs: shown, not shown or inconclusive (see RULE)."""
    plain, resnet = steps.get("plain"), steps.get("ResNet")
    if not plain or not resnet:
        missing = " and ".join(n for n, v in (("plain", plain), ("ResNet", resnet)) if not v)
        return f"Degradation cannot be judged: fewer than two depths of {missing} nets have finished runs."
    p_out, r_out = [s.outcome for s in plain], [s.outcome for s in resnet]
    detail = "; ".join(s.phrase() for s in plain + resnet)
    if "better" in p_out:
        head = "Degradation not shown: a deeper plain net trains better than the one before it"
    elif all(o == "worse" for o in p_out) and "worse" in r_out:
        head = "Degradation of both families: deeper plain nets and a deeper ResNet train worse, beyond the noise"
    elif all(o == "worse" for o in p_out):
        head = "Degradation shown: each deeper plain net trains worse, beyond the noise; no deeper ResNet does"
    else:
        head = "Inconclusive: the plain nets' depth gaps are not all larger than the noise"
    return f"{head} ({detail})."


def cifar_caveats(dataset: str, preset: str, runs: pd.DataFrame, cells: pd.DataFrame) -> list[str]:
    """How CIFAR-family runs differ from the paper's CIFAR-10 setting (its 50,000 training images, 64,000
    iterations, the CIFAR recipe): their data, their training subset, their iterations, their recipe."""
    out = []
    if dataset == "synthetic":
        out.append("These runs use synthetic data, not CIFAR-10: they show the shape of the effect, not the paper's "
                   "numbers.")
    elif dataset != "cifar10":
        out.append(f"These runs use {data_phrase(dataset, runs)}, not CIFAR-10: the paper's CIFAR-10 setting "
                   f"({PAPER_CIFAR_ITERS:,} iterations on {PAPER_CIFAR_TRAIN:,} images) is the reference for the "
                   "shape of the effect, not for its numbers.")
    subsets = distinct(runs, "train_subset")
    if any(n is not None for n in subsets):
        subset = subset_text(subsets)[2:]
        out.append(f"Trained on {'a ' if len(subsets) == 1 else ''}{subset} (the paper: all "
                   f"{PAPER_CIFAR_TRAIN:,} images), so errors are not the paper's.")
    iters = cells["total_iters"].dropna()
    if preset != "paper" or (len(iters) and int(iters.max()) != PAPER_CIFAR_ITERS):
        length = f"{int(iters.max()):,} iterations" if len(iters) else "a shorter schedule"
        out.append(f"The {preset} preset trains for {length} (the paper: {PAPER_CIFAR_ITERS:,}), so errors are not "
                   "the paper's.")
    if "imagenet" in distinct(runs, "recipe"):
        out.append("Trained with the ImageNet recipe (scale augmentation, evaluated on the val split's centre crop), "
                   "not the paper's CIFAR one (4-pixel pad and crop, flip, the test set).")
    return out


def _caveats(cells: pd.DataFrame, notes: list[str]) -> list[str]:
    out = []
    if not cells.empty and not cells["finished"].all():
        left = ", ".join(cells.loc[~cells["finished"], "label"])
        out.append(f"Unfinished, so left out of the verdict: {left}; their numbers are where they stand now.")
    out += notes
    return out


def _table(cells: pd.DataFrame) -> list[str]:
    lines = ["| network | final training error % | final test error % | seeds | finished |", "|---|---|---|---|---|"]
    for _, c in cells.sort_values(["arch", "shortcut", "depth", "differs"]).iterrows():
        train, test = f"{c['train_mean']:.2f}", f"{c['test_mean']:.2f}"
        if c["n_seeds"] > 1:
            train, test = f"{train} ± {c['train_std']:.2f}", f"{test} ± {c['test_std']:.2f}"
        lines.append(f"| {c['label']} | {train} | {test} | {c['n_seeds']} | {'yes' if c['finished'] else 'no'} |")
    return lines


def _with_series(cells: pd.DataFrame) -> pd.DataFrame:
    """A `series` key: the settings apart from the depth, so only nets run alike are compared across depths."""
    def key(text: object) -> str:
        try:
            settings = json.loads(text) if isinstance(text, str) else {}
        except ValueError:
            settings = {}
        settings.pop("model.depth", None)
        return json.dumps(settings, sort_keys=True)

    cells = cells.copy()
    settings = cells["settings"] if "settings" in cells.columns else pd.Series([None] * len(cells), index=cells.index)
    cells["series"] = [key(t) if isinstance(t, str) else f"variant {v}" for t, v in zip(settings, cells["variant"],
                                                                                      strict=True)]
    return cells


@dataclass
class Judgement:
    """One (data set, preset) pair judged: the verdict's line, the steps it read, and what it was read from."""

    dataset: str
    preset: str
    head: str  # the verdict ("" when no run of the pair has curves)
    steps: dict[str, list[Step]]  # per family, the consecutive steps the verdict read (finished runs only)
    cells: pd.DataFrame  # cell_stats of the selected runs, with their series
    selected: pd.DataFrame
    notes: list[str]  # runs left out or unfinished
    title: str = ""  # the data, subset and preset (and family, when the pair holds both), as titles name them


def judge(finals: pd.DataFrame, dataset: str, preset: str, family: str | None = None,
          named: str | None = None) -> Judgement:
    """The verdict of one (data set, preset) pair (of one network family when given; `named`: the family to name
    in its title) and the steps behind it (the summary's and the report's)."""
    mine = group(finals, dataset, preset, family)
    selected, notes = select_runs(mine)
    cells = _with_series(cell_stats(selected).merge(
        selected.drop_duplicates("variant")[["variant", "settings"]], on="variant", how="left"))
    done = cells[cells["finished"]] if not cells.empty else cells
    steps = _steps(done) if not done.empty else {}
    if cells.empty:
        head = ""
    elif done.empty:
        head = (f"No finished runs yet: degradation cannot be judged; the {len(cells)} networks below are "
                "unfinished and their numbers are where they stand now.")
    else:
        head = verdict(steps)
    return Judgement(dataset, preset, head, steps, cells, selected, notes, describe(dataset, preset, mine, named))


def build_summary(finals: pd.DataFrame) -> str:
    """The summary's markdown for every (data set, preset) pair in the results."""
    out = ["# Summary: does depth degrade plain nets and not ResNets?", ""]
    pairs, grouped = experiments(finals), groups(finals)
    out += [f"![{describe(d, p, group(finals, d, p, f), n)}: final error against depth]"
            f"(figures/depth{'' if len(pairs) == 1 else f'-{d}-{p}'}.png)"
            for d, p, f, n in grouped if f == "cifar"] + [""]  # the depth curves (figures/depthcurves.py) at a glance
    for dataset, preset, family, named in grouped:
        mine = group(finals, dataset, preset, family)
        images = bool((mine["recipe"] == "imagenet").all())  # the ImageNet recipe: val (centre crop) and 10-crop
        judged = judge(finals, dataset, preset, family, named)
        selected, notes, cells, head = judged.selected, judged.notes, judged.cells, judged.head
        out += [f"## {judged.title}", ""]
        if cells.empty:
            out += ["No runs with curves yet.", ""] + [f"- {n}" for n in notes] + [""]
            continue
        lines = _family_lines(cells) + same_depth(cells)
        if images:
            lines = [line.replace("in test error", "in validation error (centre crop)") for line in lines]
            lines += tencrop_lines(selected, cells, tables=family == "imagenet")
        table = image_table(selected, cells) if images else _table(cells)
        out += [head, ""] + lines + [""] + table + [""]
        setting = (image_caveats(dataset, preset, cells) if family == "imagenet"
                   else cifar_caveats(dataset, preset, mine, cells))
        caveats = setting + _caveats(cells, several_variants(mine) + notes)
        if caveats:
            out += ["Caveats:"] + [f"- {c}" for c in caveats] + [""]
    out += [RULE, "",
            "Training error: mean over the last logging window of each run; test error: the last evaluation "
            "(the final iteration), never the best one; with several seeds, mean ± std (ddof=1) over seeds. "
            "\"Above\" means worse (higher error). Only runs that differ in nothing but the seed are pooled."]
    return "\n".join(out) + "\n"


def write_summary(finals: pd.DataFrame, results_dir: Path) -> Path:
    path = Path(results_dir) / "summary.md"
    write_text_atomic(path, build_summary(finals))
    return path
