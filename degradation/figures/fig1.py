"""Figure 1: plain-20 and plain-56, training error (left) and test error (right) against iterations."""

from __future__ import annotations

from matplotlib.figure import Figure

from degradation.figures.curveplot import draw_cell, panel_entry, seeds_note, set_limits, x_extent
from degradation.figures.experiment import Experiment
from degradation.figures.style import add_note, empty_panel, network_handle, new_figure, x_scale

EXPECTED = ["plain-20", "plain-56"]
SOLID = {"linestyle": "-", "linewidth": 1.8}  # one split per panel, so both are solid, as in the paper


def draw(exp: Experiment) -> tuple[Figure, dict]:
    fig, axes = new_figure(2, width=4.8, height=3.6)
    plain = exp.family("plain")
    cells = [c for depth in (20, 56) for _, c in plain[plain["depth"] == depth].iterrows()]  # every variant
    stand_in = []
    if not cells and len(plain) >= 1:  # neither of the paper's two: the shallowest and deepest plain nets run
        cells = [plain.iloc[0]] + ([plain.iloc[-1]] if len(plain) > 1 else [])
        stand_in = [f"Instead of plain-20 and plain-56 (not run): {' and '.join(c['label'] for c in cells)}"]
    x_max = x_extent(cells, exp.curves)
    x_div, xlabel = x_scale(x_max)
    present = list(dict.fromkeys(c["network"] for c in cells))
    panels = []
    for ax, split, name in zip(axes, ("train", "test"), ("training error (%)", "test error (%)"), strict=True):
        lines = [draw_cell(ax, exp.curves, c, split, x_div, SOLID) for c in cells]
        ax.set_xlabel(xlabel)
        ax.set_ylabel(name)
        ax.set_title(name.replace(" (%)", ""))
        if not cells:
            empty_panel(ax, "not run: " + ", ".join(EXPECTED))
        panels.append(panel_entry(ax, name.replace(" (%)", ""), lines, EXPECTED, present))
    set_limits(axes, panels, x_max / x_div)
    if cells:
        handles = [network_handle(c["label"], c["arch"], c["depth"]) for c in cells]
        fig.legend(handles=handles, loc="outside right upper", frameon=False)
    missing = exp.not_run([name for name in EXPECTED if name not in present])
    notes = stand_in or ([f"Not run (not drawn): {', '.join(missing)}"] if missing else [])
    notes += seeds_note(cells)
    notes += exp.notes_for(list(dict.fromkeys(EXPECTED + present)))
    title = f"Figure 1: {' vs '.join(present) if present else 'plain-20 vs plain-56'} — {exp.title}"
    fig.suptitle(title)
    add_note(fig, notes)
    return fig, {"figure": "fig1", "title": title, "panels": panels, "missing": missing,
                 "notes": notes, "x_unit": x_div}

