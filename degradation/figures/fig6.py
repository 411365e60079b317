"""Figure 6: training (dashed) and test (bold) error against iterations, plain nets | ResNets | ResNet-110/1202."""

from __future__ import annotations

from matplotlib.figure import Figure

from degradation.figures.curves import draw_cell, panel_entry, seeds_note, set_limits, x_extent
from degradation.figures.experiment import Experiment
from degradation.figures.style import (
    TEST_STYLE,
    TRAIN_STYLE,
    add_note,
    depth_handle,
    empty_panel,
    legend_below,
    new_figure,
    style_handles,
    x_scale,
)

# (title, arch, which depths, the paper's lines)
PANELS = (
    ("plain networks", "plain", lambda d: True, ["plain-20", "plain-32", "plain-44", "plain-56"]),
    ("ResNets", "resnet", lambda d: d <= 110, ["ResNet-20", "ResNet-32", "ResNet-44", "ResNet-56", "ResNet-110"]),
    ("ResNet-110 and ResNet-1202", "resnet", lambda d: d >= 110, ["ResNet-110", "ResNet-1202"]),
)


def _style(cell, split: str) -> dict | None:
    """Pre-activation nets share the depth colours; triangles tell them apart."""
    if cell["arch"] != "preact":
        return None
    return {**(TRAIN_STYLE if split == "train" else TEST_STYLE), "marker": "^", "markevery": 0.1, "markersize": 3}


def draw(exp: Experiment) -> tuple[Figure, dict]:
    fig, axes = new_figure(3, width=4.5, height=3.7)
    chosen = [[c for _, c in exp.family(arch).iterrows() if keep(int(c["depth"]))] for _, arch, keep, _ in PANELS]
    chosen[2] += [c for _, c in exp.family("preact").iterrows()]  # He et al. 2016's nets, when run: beside 110/1202
    everything = [c for cells in chosen for c in cells]
    x_max = x_extent(everything, exp.curves)
    x_div, xlabel = x_scale(x_max)
    panels = []
    for ax, (title, _, _, expected), cells in zip(axes, PANELS, chosen, strict=True):
        lines = [draw_cell(ax, exp.curves, c, split, x_div, _style(c, split))
                 for c in cells for split in ("train", "test")]
        present = [c["label"] for c in cells]
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("error (%)")
        if cells:
            legend_below(ax, [depth_handle(c["label"], c["depth"], _style(c, "test")) for c in cells] + style_handles())
        else:
            empty_panel(ax, "not run:\n" + ", ".join(expected))
        panels.append(panel_entry(ax, title, lines, expected, present))
    set_limits(axes, panels, x_max / x_div)
    missing = exp.not_run(list(dict.fromkeys(name for p in panels for name in p["missing"])))
    other = exp.cells[(exp.cells["arch"] == "resnet") & (exp.cells["shortcut"] != "A")]["label"].tolist()
    notes = ([f"Not run (not drawn): {', '.join(missing)}"] if missing else []) + seeds_note(everything)
    notes += exp.notes  # every run left out, failed or unfinished, drawn or not
    if other:
        notes.append(f"Not drawn here (Figure 6 shows shortcut A): {', '.join(other)}; see table6")
    title = f"Figure 6: dashed = training error, bold = test error — {exp.title}"
    fig.suptitle(title)
    add_note(fig, notes)
    return fig, {"figure": "fig6", "title": title, "panels": panels, "missing": missing,
                 "notes": notes, "x_unit": x_div}

