"""Figure 4: ImageNet training (thin) and centre-crop validation (bold) error against iterations;
left plain-18/34, right ResNet-18/34 (option A, no extra parameters)."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from degradation.figures.curveplot import draw_cell, panel_entry, seeds_note, set_limits, x_extent
from degradation.figures.experiment import Experiment
from degradation.figures.style import TEST_STYLE, add_note, empty_panel, legend_below, network_handle, new_figure
from degradation.figures.style import x_scale as _x_scale

THIN: dict[str, Any] = {"linestyle": "-", "linewidth": 0.8}  # the paper's Figure 4: thin = training error
PANELS = (("plain networks", "plain", ["plain-18", "plain-34"]), ("ResNets", "resnet", ["ResNet-18", "ResNet-34"]))


def _handles() -> list[Line2D]:
    grey = "#555555"
    return [Line2D([], [], color=grey, label="train (thin)", **THIN),
            Line2D([], [], color=grey, label="val, centre crop (bold)", **TEST_STYLE)]


def draw(exp: Experiment) -> tuple[Figure, dict]:
    fig, axes = new_figure(2, width=4.8, height=3.8)
    chosen = [[c for _, c in exp.family(arch).iterrows() if int(c["depth"]) in (18, 34)] for _, arch, _ in PANELS]
    everything = [c for cells in chosen for c in cells]
    x_max = x_extent(everything, exp.curves)
    x_div, xlabel = _x_scale(x_max)
    panels = []
    for ax, (title, _, expected), cells in zip(axes, PANELS, chosen, strict=True):
        lines = [draw_cell(ax, exp.curves, c, split, x_div, THIN if split == "train" else TEST_STYLE)
                 for c in cells for split in ("train", "val")]
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("error (%)")
        if cells:
            legend_below(ax, [network_handle(c["label"], c["arch"], c["depth"]) for c in cells] + _handles())
        else:
            empty_panel(ax, "not run:\n" + ", ".join(expected))
        panels.append(panel_entry(ax, title, lines, expected, [c["label"] for c in cells]))
    set_limits(axes, panels, x_max / x_div)
    missing = exp.not_run(list(dict.fromkeys(name for p in panels for name in p["missing"])))
    notes = ([f"Not run (not drawn): {', '.join(missing)}"] if missing else []) + seeds_note(everything) + exp.notes
    title = f"Figure 4: thin = training error, bold = validation error (centre crop) — {exp.title}"
    fig.suptitle(title)
    add_note(fig, notes)
    return fig, {"figure": "fig4", "title": title, "panels": panels, "missing": missing, "notes": notes,
                 "x_unit": x_div}

