"""Depth curves: final training and test error against depth for each family, seed spread as error bars, the
papers' numbers as markers (CIFAR-10 on its whole training set only: elsewhere they are not the comparison). The
one picture that answers "does depth help or hurt?" (top of summary.md)."""

from __future__ import annotations

import math

from matplotlib.figure import Figure
from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

from degradation.figures.experiment import Experiment
from degradation.figures.style import add_note, empty_panel, legend_below, network_color, new_figure
from degradation.models.registry import NETWORKS

FAMILIES = (("plain", "plain", "#D62728", "s"), ("resnet", "ResNet (A)", "#1F77B4", "o"),
            ("preact", "PreAct ResNet (B)", "#2CA02C", "^"))


def _plugin_families(exp: Experiment) -> tuple[tuple[str, str, str, str], ...]:
    """The user's own networks, each a family of its own: its legend name, its colour, diamonds."""
    out = []
    for arch in exp.other_networks():
        cells = exp.family(arch)
        name = str(cells.iloc[0]["network"]).rsplit("-", 1)[0] if len(cells) else arch
        out.append((arch, name, network_color(arch, 20), "D"))
    return tuple(out)


def depth_ticks(ax, depths: list[int]) -> None:
    """A log depth axis labelled with the depths themselves (20, 32, 44, 56, 110), not powers of ten."""
    ax.set_xscale("log")
    if depths:
        ax.xaxis.set_major_locator(FixedLocator(depths))
        ax.xaxis.set_major_formatter(FixedFormatter([str(d) for d in depths]))
        ax.xaxis.set_minor_locator(NullLocator())


def draw(exp: Experiment) -> tuple[Figure, dict]:
    fig, axes = new_figure(2, width=4.8, height=3.8)
    panels = []
    marked: list[str] = []  # families drawn with the papers' numbers beside them
    for ax, key, title in zip(axes, ("train", "test"), ("final training error", "final test error"), strict=True):
        lines = []
        drawn: set[int] = set()
        for arch, name, color, marker in FAMILIES + _plugin_families(exp):
            cells = exp.family(arch)
            cells = cells[cells[f"{key}_mean"].notna()]
            if cells.empty:
                continue
            spread = [s if s is not None and math.isfinite(s) else 0.0 for s in cells[f"{key}_std"]]
            ax.errorbar(cells["depth"], cells[f"{key}_mean"], yerr=spread, color=color, marker=marker,
                        capsize=3, label=name)
            drawn.update(int(d) for d in cells["depth"])
            lines.append({"family": arch, "depths": [int(d) for d in cells["depth"]],
                          "values_pct": [float(v) for v in cells[f"{key}_mean"]],
                          "std_pct": spread, "seeds": [int(n) for n in cells["n_seeds"]]})
            paper = NETWORKS[arch].paper_test_error if arch in NETWORKS else {}  # test error %, CIFAR-10
            if key == "test" and exp.paper and paper:
                depths = sorted(paper)
                ax.scatter(depths, [paper[d] for d in depths], color=color, marker="x", s=40, zorder=3,
                           label=f"{name}: paper")
                drawn.update(depths)
                marked.append(arch)
        depth_ticks(ax, sorted(drawn))
        ax.set_xlabel("depth (layers)")
        ax.set_ylabel("error (%)")
        ax.set_title(title)
        if lines:
            legend_below(ax, ax.get_legend_handles_labels()[0])
        else:
            empty_panel(ax, "no finished runs")
        panels.append({"title": title, "lines": lines})
    notes = ["Points: mean over seeds of each run's final value; bars: std over seeds (ddof=1; none with one seed)."]
    if marked:
        notes.append("x: the papers' CIFAR-10 test errors (He et al. 2015 Table 6; He et al. 2016 for pre-activation).")
    title = f"Final error against depth — {exp.title}"
    fig.suptitle(title)
    add_note(fig, notes)
    return fig, {"figure": "depth", "title": title, "panels": panels, "missing": [], "notes": notes,
                 "paper_marks": marked}
