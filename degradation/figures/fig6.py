"""Figure 6: training (dashed) and test (bold) error against iterations, plain nets | ResNets | ResNet-110/1202."""

from __future__ import annotations

from matplotlib.figure import Figure

from degradation.figures.curveplot import draw_cell, panel_entry, seeds_note, set_limits, x_extent
from degradation.figures.experiment import Experiment
from degradation.figures.style import (
    TEST_STYLE,
    TRAIN_STYLE,
    add_note,
    empty_panel,
    legend_below,
    network_handle,
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


PAPER_PLAIN_MAX = 56  # the paper's left panel: plain-20/32/44/56; plain-110 (above 60% error) is left out
PAPER_YLIM = (0.0, 20.0)  # the paper's error axis, kept for the paper preset on CIFAR-10


def off_panel(plain: list) -> tuple[list, list]:
    """(drawn, left out): plain nets deeper than 56 are left out of the plain panel when any of the paper's depths
    is there, since their scale (plain-110 above 60%) would squeeze the few-point gaps the panel exists to show."""
    paper = [c for c in plain if int(c["depth"]) <= PAPER_PLAIN_MAX]
    if not paper:
        return plain, []
    return paper, [c for c in plain if int(c["depth"]) > PAPER_PLAIN_MAX]


def _final_note(cell) -> str:
    return (f"{cell['label']}: not drawn, as in the paper (its error would squeeze the plain panel's scale); final "
            f"training error {cell['train_mean']:.1f}%, test error {cell['test_mean']:.1f}%")


def _paper_axes(exp: Experiment, axes: list, panels: list[dict], cells: list) -> list[str]:
    """The paper preset on CIFAR-10 (its whole training set) keeps the paper's 0-20% error axis; curves that end
    above it are named."""
    if not exp.paper or exp.preset != "paper":
        return []
    for ax, panel in zip(axes, panels, strict=True):
        ax.set_ylim(*PAPER_YLIM)
        panel["ylim"] = list(PAPER_YLIM)
    high = [c["label"] for c in cells if max(c["train_mean"], c["test_mean"]) > PAPER_YLIM[1]]
    return [f"Ends above the paper's 0-20% axis (out of view): {', '.join(high)}"] if high else []


def _style(cell, split: str) -> dict | None:
    """Pre-activation nets share the depth colours; triangles tell them apart."""
    if cell["arch"] != "preact":
        return None
    return {**(TRAIN_STYLE if split == "train" else TEST_STYLE), "marker": "^", "markevery": 0.1, "markersize": 3}


def draw(exp: Experiment) -> tuple[Figure, dict]:
    chosen = [[c for _, c in exp.family(arch).iterrows() if keep(int(c["depth"]))] for _, arch, keep, _ in PANELS]
    chosen[0], left_out = off_panel(chosen[0])
    chosen[2] += [c for _, c in exp.family("preact").iterrows()]  # He et al. 2016's nets, when run: beside 110/1202
    headings = [(title, expected) for title, _, _, expected in PANELS]
    plugins = [c for arch in exp.other_networks() for _, c in exp.family(arch).iterrows()]
    if plugins:  # the user's own networks: a fourth panel, beside the paper's three
        chosen.append(plugins)
        headings.append(("your networks: " + ", ".join(dict.fromkeys(c["network"].rsplit("-", 1)[0]
                                                                      for c in plugins)), []))
    fig, axes = new_figure(len(chosen), width=4.5, height=3.7)
    everything = [c for cells in chosen for c in cells]
    x_max = x_extent(everything, exp.curves)
    x_div, xlabel = x_scale(x_max)
    panels = []
    for ax, (title, expected), cells in zip(axes, headings, chosen, strict=True):
        lines = [draw_cell(ax, exp.curves, c, split, x_div, _style(c, split))
                 for c in cells for split in ("train", "test")]
        present = list(dict.fromkeys(c["network"] for c in cells))
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("error (%)")
        if cells:
            legend_below(ax, [network_handle(c["label"], c["arch"], c["depth"], _style(c, "test")) for c in cells]
                         + style_handles())
        else:
            empty_panel(ax, "not run:\n" + ", ".join(expected))
        panels.append(panel_entry(ax, title, lines, expected, present))
    set_limits(axes, panels, x_max / x_div)
    out_of_view = _paper_axes(exp, axes, panels, everything)
    missing = exp.not_run(list(dict.fromkeys(name for p in panels for name in p["missing"])))
    other = exp.cells[(exp.cells["arch"] == "resnet") & (exp.cells["shortcut"] != "A")]["label"].tolist()
    notes = ([f"Not run (not drawn): {', '.join(missing)}"] if missing else []) + seeds_note(everything)
    notes += [_final_note(c) for c in left_out] + out_of_view
    notes += exp.notes  # every run left out, failed or unfinished, drawn or not
    if other:
        notes.append(f"Not drawn here (Figure 6 shows shortcut A): {', '.join(other)}; see table6")
    title = f"Figure 6: dashed = training error, bold = test error — {exp.title}"
    fig.suptitle(title)
    add_note(fig, notes)
    return fig, {"figure": "fig6", "title": title, "panels": panels, "missing": missing,
                 "notes": notes, "x_unit": x_div, "not_drawn": [c["label"] for c in left_out]}

