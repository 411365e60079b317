"""Figure 7: std of each 3x3 layer's response (after BN, before ReLU and addition), network order and sorted.

Data: responses.parquet (analysis/responses.py): std over all elements of the layer's output across the whole
test set, from each finished run's final checkpoint in eval mode.
"""

from __future__ import annotations

import math
from textwrap import fill
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogFormatterSciNotation, LogLocator, NullFormatter

from degradation.figures.experiment import Experiment
from degradation.figures.style import BAND_ALPHA, add_note, empty_panel, network_color, new_figure

NETWORKS = [("plain", 20), ("plain", 56), ("resnet", 20), ("resnet", 56), ("resnet", 110)]
WIDE = 10  # max/min std beyond which the y axis is logarithmic
FEW_DECADES = 3  # a log axis spanning at most this many decades is ticked at 1, 2, 5 x 10^k in plain numbers
BN_SETTLED = 1000  # iterations below which BN's running statistics (momentum 0.1) are barely trained
WARN_COLOR = "#A61B1B"
EXPECTED = ["plain-20", "plain-56", "ResNet-20", "ResNet-56", "ResNet-110"]
STYLES: dict[str, dict[str, Any]] = {"plain": {"linestyle": (0, (4, 2)), "marker": "o", "markerfacecolor": "white"},
          "resnet": {"linestyle": "-", "marker": "o"}}
PLUGIN_STYLE: dict[str, Any] = {"linestyle": "-.", "marker": "D"}  # the user's own networks


def _style(exp: Experiment, arch: str) -> dict[str, Any]:
    return STYLES.get(arch) or (PLUGIN_STYLE if arch in exp.other_networks() else STYLES["resnet"])


def response_curve(responses: pd.DataFrame, run_ids: list[str], sort: bool) -> pd.DataFrame:
    """layer (1-based), mean, lo, hi of the std over the given runs; sorted descending per run when asked."""
    rows = responses[responses["run_id"].isin(run_ids)]
    wide = rows.pivot_table(index="layer_index", columns="run_id", values="std", aggfunc="last").sort_index()
    if sort:
        wide = pd.DataFrame({c: sorted(wide[c].dropna(), reverse=True) for c in wide.columns})
        wide.index = range(1, len(wide) + 1)
    wide = wide.dropna(how="any")
    return pd.DataFrame({"layer": wide.index.to_numpy(), "mean": wide.mean(axis=1).to_numpy(),
                         "lo": wide.min(axis=1).to_numpy(), "hi": wide.max(axis=1).to_numpy()})


def _cells(exp: Experiment) -> tuple[list[tuple[pd.Series, list[str]]], list[str]]:
    """The paper's five networks that have responses (when none does: every plain/ResNet net up to 110 layers
    that has), each with the runs that have them; notes for nets that exist but have none, or are left out."""
    have = set(exp.responses["run_id"]) if exp.responses is not None else set()
    candidates = [(c, [r for r in c["run_ids"] if r in have]) for arch in ("plain", "resnet")
                  for _, c in exp.family(arch).iterrows()]
    paper = [(c, ids) for c, ids in candidates if (c["arch"], int(c["depth"])) in NETWORKS]
    notes = [f"{c['label']} has no responses (unfinished run or no checkpoint); not drawn"
             for c, ids in paper if not ids]
    chosen = [(c, ids) for c, ids in paper if ids]
    if not chosen:
        chosen = [(c, ids) for c, ids in candidates if ids and int(c["depth"]) <= 110]
    else:
        others = [c["label"] for c, ids in candidates if ids and (c["arch"], int(c["depth"])) not in NETWORKS]
        if others:
            notes.append(f"Figure 7 shows the paper's five networks; also in responses.parquet: {', '.join(others)}")
    order = {(a, d): i for i, (a, d) in enumerate(NETWORKS)}
    chosen.sort(key=lambda item: (order.get((item[0]["arch"], int(item[0]["depth"])), 99), item[0]["arch"] != "plain",
                                  int(item[0]["depth"])))
    for arch in exp.other_networks():  # the user's own networks, beside the paper's, when their layers are known
        for _, c in exp.family(arch).iterrows():
            ids = [r for r in c["run_ids"] if r in have]
            if ids:
                chosen.append((c, ids))
            else:
                notes.append(f"{c['label']}: no 3x3 layer responses (none found or declared, or unfinished); skipped")
    return chosen, notes


def _plain(value: float, _pos=None) -> str:
    """0.05, 0.2, 1, 20, 500: plain numbers, never 1e+03 beside 500."""
    return f"{value:.10f}".rstrip("0").rstrip(".") if value < 1 else f"{value:.0f}"


def _set_yscale(axes: list, values: list[float]) -> str:
    """Linear from 0 as in the paper, unless one net's responses dwarf the rest (>10x): then log, so all show.

    A log axis has one notation: over a few decades ticks at 1, 2, 5 x 10^k written as plain numbers; over more,
    one tick per decade (or fewer) written 10^k. Minor ticks are unlabelled, so no two labels overlap."""
    positive = [v for v in values if v > 0]
    scale = "log" if positive and max(positive) > WIDE * min(positive) else "linear"
    decades = math.log10(max(positive) / min(positive)) if scale == "log" else 0.0
    for ax in axes:
        if scale == "log":
            ax.set_yscale("log")
            if decades <= FEW_DECADES and min(positive) >= 1e-3 and max(positive) <= 1e4:
                ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
                ax.yaxis.set_major_formatter(FuncFormatter(_plain))
            else:
                ax.yaxis.set_major_locator(LogLocator(subs=(1.0,), numticks=7))
                ax.yaxis.set_major_formatter(LogFormatterSciNotation())
            ax.yaxis.set_minor_formatter(NullFormatter())
            ax.set_ylabel("std (log scale)")
        else:
            ax.set_ylim(bottom=0)
    return scale


def bn_note(chosen: list[tuple[pd.Series, list[str]]], values: list[float]) -> str | None:
    """When a drawn run trained too few iterations for BN's running statistics to settle, eval-mode responses
    reflect those estimates rather than the trained net (a std of 2e6, say): the figure says so."""
    short = [(c["label"], int(c["iteration"])) for c, _ in chosen
             if pd.notna(c.get("iteration")) and int(c["iteration"]) < BN_SETTLED]
    if not short:
        return None
    iterations = sorted({it for _, it in short})
    runs = f"{iterations[0]}" if len(iterations) == 1 else f"{iterations[0]}–{iterations[-1]}"
    peak = max(values, default=0.0)
    scale = f"; their scale (up to {peak:,.0f}) says little about the trained net" if peak > 10 else ""
    return (f"BN statistics barely trained ({runs} iterations, under {BN_SETTLED}): eval-mode responses use "
            f"running means/variances from few steps{scale}. Use --preset quick or paper for Figure 7.")


def draw(exp: Experiment) -> tuple[Figure, dict]:
    fig, axes = new_figure(1, nrows=2, width=7.5, height=3.0)
    chosen, notes = _cells(exp)
    panels: list[dict[str, Any]] = []
    for ax, sort, xlabel in zip(axes, (False, True), ("layer index (original)", "layer index (sorted by magnitude)"),
                                strict=True):
        lines = []
        for cell, ids in chosen:
            curve = response_curve(exp.responses, ids, sort)
            color, style = network_color(cell["arch"], cell["depth"]), _style(exp, cell["arch"])
            ax.plot(curve["layer"], curve["mean"], color=color, linewidth=1.5, markersize=3, **style)
            if len(ids) > 1:
                ax.fill_between(curve["layer"], curve["lo"], curve["hi"], color=color, alpha=BAND_ALPHA, linewidth=0)
            lines.append({"label": cell["label"], "arch": cell["arch"], "depth": int(cell["depth"]), "run_ids": ids,
                          "band": "min-max" if len(ids) > 1 else None, "layers": len(curve), "color": color,
                          "values": [float(v) for v in curve["mean"]]})
        ax.set_xlabel(xlabel)
        ax.set_ylabel("std")
        ax.set_xlim(left=0)
        if not chosen:
            empty_panel(ax, "no responses: no finished runs of " + ", ".join(EXPECTED))
        present = [line["label"] for line in lines]
        panels.append({"title": "network order" if not sort else "sorted descending", "xlabel": xlabel,
                       "ylabel": "std", "lines": lines, "labels": present,
                       "missing": [name for name in EXPECTED if name not in present]})
    values = [v for p in panels for line in p["lines"] for v in line["values"]]
    yscale = _set_yscale(axes, values)
    for ax, panel in zip(axes, panels, strict=True):
        panel["yscale"], panel["ylabel"] = yscale, ax.get_ylabel()
    warning = bn_note(chosen, values)
    if warning:  # on the figure itself, above the top panel, not only in the notes
        axes[0].set_title(fill(warning, 95), fontsize=9, color=WARN_COLOR, loc="left")
    if chosen:
        handles = [Line2D([], [], color=network_color(c["arch"], c["depth"]), label=c["label"], linewidth=1.5,
                          markersize=4,
                          **_style(exp, c["arch"])) for c, _ in chosen]
        fig.legend(handles=handles, loc="outside right upper", frameon=False)
    not_drawn = panels[0]["missing"]
    missing = exp.not_run(not_drawn)
    no_responses = [name for name in not_drawn if name not in missing]
    notes = ([f"Not run (not drawn): {', '.join(missing)}"] if missing else []) + notes + exp.notes_for(EXPECTED)
    several = [f"{c['label']} ({len(ids)} seeds)" for c, ids in chosen if len(ids) > 1]
    notes += [f"Mean over seeds, shaded min–max: {', '.join(several)}"] if several else []
    notes.append("Response: a 3x3 layer's output after BN, before ReLU/addition; std over all its elements "
                 "across the test set, final checkpoint, eval mode")
    title = f"Figure 7: layer responses — {exp.title}"
    fig.suptitle(title)
    add_note(fig, notes)
    return fig, {"figure": "fig7", "title": title, "panels": panels, "missing": missing,
                 "no_responses": no_responses, "notes": notes, "bn_warning": warning}

