"""Training loss and learning rate against iterations, with where the warm-up ended and where the lr drops fall.

curves.parquet records both (metric loss and lr of the train split, one value per logging window) but no figure
drew them. The drops are the schedule's milestones from each run's recorded settings (exact, not read off the
windowed lr curve); the warm-up end is runs.parquet's warmup_ended_at. Each network keeps its colour from
figures/style.py; plain nets dashed, ResNets solid, as in the gradient-flow figure. The lr is logged once a window,
so its step is drawn half-way between two windows: within half a window of the drop it marks.
"""

from __future__ import annotations

import json

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from degradation.figures.style import empty_panel, legend_below, network_color, new_figure, x_scale

DROP_STYLE = {"color": "#555555", "linestyle": ":", "linewidth": 1.2}
WARMUP_STYLE = {"color": "#8E5CC2", "linestyle": "--", "linewidth": 1.2}


def milestones(settings: object) -> list[int]:
    """The lr drops of a run: its recorded schedule.milestones ([] when not recorded)."""
    try:
        values = json.loads(settings).get("schedule.milestones") if isinstance(settings, str) else None
    except ValueError:
        return []
    return [int(v) for v in values] if isinstance(values, list) else []


def marks(selected: pd.DataFrame, runs: pd.DataFrame) -> tuple[list[int], list[int]]:
    """(lr drop iterations, warm-up end iterations) over the selected runs, each sorted and distinct."""
    drops = sorted({m for s in selected["settings"] for m in milestones(s)})
    ended = runs.loc[runs["run_id"].isin(set(selected["run_id"])), "warmup_ended_at"] \
        if "warmup_ended_at" in runs.columns else pd.Series(dtype=float)
    return drops, sorted({int(v) for v in ended.dropna()})


def draw(selected: pd.DataFrame, curves: pd.DataFrame, runs: pd.DataFrame, title: str) -> tuple[Figure, dict]:
    """Two panels (loss, lr) for the selected runs of one (data set, preset), one line per network (the mean over
    its seeds, as in the paper's figures); the entry says what was drawn."""
    fig, (loss_ax, lr_ax) = new_figure(2, width=5.6, height=3.6)
    names = selected[["run_id", "label"]]  # curves carry arch and depth themselves
    train = curves[(curves["split"] == "train") & curves["metric"].isin(["loss", "lr"])].merge(names, on="run_id")
    scale, xlabel = x_scale(float(train["step"].max()) if len(train) else 0.0)
    drops, warm = marks(selected, runs)
    entry: dict = {"lines": [], "drops": drops, "warmup_ends": warm}
    order = selected.drop_duplicates("label").sort_values(["arch", "depth", "label"])["label"].tolist()
    for ax, metric, ylabel in ((loss_ax, "loss", "training loss (window mean)"), (lr_ax, "lr", "learning rate")):
        mine = train[train["metric"] == metric]
        groups = dict(tuple(mine.groupby("label", sort=False)))
        for name in [n for n in order if n in groups]:
            rows = groups[name]
            mean = rows.groupby("step")["value"].mean()
            arch, depth = rows["arch"].iloc[0], rows["depth"].iloc[0]
            ax.plot(mean.index / scale, mean.to_numpy(), "--" if arch == "plain" else "-",
                    color=network_color(arch, depth), lw=1.3, label=name,
                    drawstyle="steps-mid" if metric == "lr" else "default")
            if metric == "loss":
                entry["lines"].append({"label": name, "points": len(mean), "seeds": rows["run_id"].nunique()})
        for d in drops:
            ax.axvline(d / scale, **DROP_STYLE)
        for w in warm:
            ax.axvline(w / scale, **WARMUP_STYLE)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        values = mine.loc[mine["value"] > 0, "value"]
        if groups and len(values) and values.max() > 10 * values.min():  # log only where it spans a decade
            ax.set_yscale("log")
            if metric == "loss":  # 0.3, 2 rather than 3x10^-1, 2x10^0
                ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "25" else ""))
        elif not groups:
            empty_panel(ax, f"no {metric} recorded")
    legend_below(loss_ax, list(loss_ax.get_lines())[: len(entry["lines"])], ncol=2)
    keys = [lr_ax.plot([], [], **DROP_STYLE, label="lr drop (schedule milestone)")[0]] * bool(drops)
    keys += [lr_ax.plot([], [], **WARMUP_STYLE, label="warm-up ended")[0]] * bool(warm)
    legend_below(lr_ax, keys, ncol=1)
    seeds = " (line: mean over seeds)" if any(line["seeds"] > 1 for line in entry["lines"]) else ""
    fig.suptitle(f"Training loss and learning rate{seeds} — {title}")
    return fig, entry
