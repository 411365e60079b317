"""One look for every figure: Agg backend, fonts, a colour per network kept across panels and figures, saving.

Each network has one colour in Figures 1, 6 and 7, so a reader can follow plain-56 from one figure to the
next. Legends and notes sit outside the axes, never over the curves.
"""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path
from textwrap import fill
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402

from degradation.models.registry import NETWORKS  # noqa: E402
from degradation.store.io import write_atomic  # noqa: E402

DPI = 150
PAD_INCHES = 0.15  # white margin around the tight box of a saved figure
FORMATS = ("png", "pdf")  # PNG for viewing, PDF (vector) for papers
RC: Any = {
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "legend.fontsize": 10,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "pdf.fonttype": 42,  # embedded TrueType: text stays editable in the PDF
}
# One colour per network, the same in Figures 1, 6 and 7: plain nets in warm hues, ResNets in cool ones (and
# ResNet-110 black, as the paper's deepest standard net), each family darker as it gets deeper. So plain-20
# and ResNet-20 never share a colour, and in Figures 1 and 6 line style stays free to mean the split
# (dashed = training, bold = test). Figure 7 adds plain dashed / residual solid and open / filled markers.
NETWORK_COLORS = {
    "plain": {20: "#F28E2B", 32: "#E15759", 44: "#B6392F", 56: "#7A1F1F", 110: "#3D0C02", 1202: "#FF9DA7"},
    "resnet": {20: "#4E9BD6", 32: "#2CA02C", 44: "#17BECF", 56: "#1F3F8F", 110: "#000000", 1202: "#8E5CC2"},
}
_SPARE = {  # other depths (smoke tests, 8 or 14 layers): the same hue families, the same colour every time
    "plain": ["#C8553D", "#D4A017", "#A0522D", "#E377C2", "#8C564B"],
    "resnet": ["#0072B2", "#009E73", "#5B5EA6", "#4A7C8C", "#7F7F7F"],
    "other": ["#1B7837", "#A6D96A", "#006D2C", "#BCBD22", "#66C2A5", "#556B2F"],  # plug-in networks: greens
}
TRAIN_STYLE: dict[str, Any] = {"linestyle": (0, (4, 2)), "linewidth": 1.2}  # dashed, thin: training error (the paper's)
TEST_STYLE: dict[str, Any] = {"linestyle": "-", "linewidth": 2.2}  # bold: test error
BAND_ALPHA = 0.2
BAND_TEXT = "shaded: min–max over seeds, line: mean"
LONG_RUN = 10_000  # iterations from which the x axis is in units of 1e4, as in the paper


def network_color(arch: str, depth: int) -> str:
    """The paper's networks have fixed colours; any other depth gets a spare of its family, the same every time."""
    family = "plain" if str(arch) == "plain" else "resnet" if str(arch) in NETWORKS else "other"
    depth = int(depth)
    spare = _SPARE[family]
    if family == "other":  # one hue per plug-in, a different shade per depth
        return spare[(sum(map(ord, str(arch))) + depth // 6) % len(spare)]
    return NETWORK_COLORS[family].get(depth, spare[(depth // 6) % len(spare)])


def new_figure(ncols: int, nrows: int = 1, width: float = 4.6, height: float = 3.6) -> tuple[Figure, list]:
    with plt.rc_context(RC):
        fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), layout="constrained",
                                 squeeze=False)
    return fig, [ax for row in axes for ax in row]


def x_scale(max_step: float) -> tuple[float, str]:
    """Divide steps by this and label the axis so: iter. (1e4) for long runs, iterations otherwise."""
    return (1e4, "iter. (1e4)") if max_step >= LONG_RUN else (1.0, "iterations")


def nice_top(value: float) -> float:
    """Round an axis top up to a readable number (multiples of 1, 2, 5 or 10 percent, at most 100)."""
    if not math.isfinite(value) or value <= 0:
        return 100.0
    for step in (1, 2, 5, 10):
        if value <= step * 10:
            return min(100.0, math.ceil(value / step) * step)
    return 100.0


def error_top(late_values: list[float]) -> float:
    """Top of an error axis: the converged part of every curve visible (the paper clips the start at 20%)."""
    finite = [v for v in late_values if math.isfinite(v)]
    return nice_top(1.15 * max(finite)) if finite else 100.0


def error_bottom(late_lows: list[float], top: float) -> float:
    """0, as in the paper, unless every curve ends high up (a short or hard run at 80%): then zoom in."""
    finite = [v for v in late_lows if math.isfinite(v)]
    if not finite or min(finite) < 0.5 * top:
        return 0.0
    return float(10 * math.floor(0.9 * min(finite) / 10))


def style_handles() -> list[Line2D]:
    grey = "#555555"
    return [Line2D([], [], color=grey, label="training (dashed)", **TRAIN_STYLE),
            Line2D([], [], color=grey, label="test (bold)", **TEST_STYLE)]


def network_handle(label: str, arch: str, depth: int, style: dict | None = None) -> Line2D:
    return Line2D([], [], color=network_color(arch, depth), label=label, **(style or TEST_STYLE))


def legend_below(ax, handles: list, ncol: int = 2) -> None:
    """Legend under the axes (outside the plotting area, so it never hides a curve)."""
    if handles:
        with plt.rc_context(RC):
            ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=ncol, frameon=False,
                      handlelength=2.6)


def add_note(fig: Figure, lines: list[str]) -> None:
    """Small text under everything: runs not drawn, unfinished runs, what a band means."""
    if lines:
        fig.text(0.005, -0.01, "\n".join(lines), ha="left", va="top", fontsize=9, color="#333333", wrap=False)


def empty_panel(ax, text: str) -> None:
    """A panel with nothing to draw: its text sits inside the axes, away from the tick labels, on a white box
    that hides the grid behind it (wrapped to the panel's width)."""
    wrapped = "\n".join(fill(part, 32) for part in text.split("\n"))
    ax.text(0.5, 0.55, wrapped, ha="center", va="center", transform=ax.transAxes, fontsize=9,
            color="#555555", bbox={"facecolor": "white", "edgecolor": "#BBBBBB", "boxstyle": "round,pad=0.4"},
            clip_on=True)


def lay_out(fig: Figure, dpi: float = DPI) -> Bbox:
    """Lay the figure out once, as a PNG save at `dpi` lays it out (constrained layout, then the tight box that
    takes in the notes under the figure, padded), and keep that layout: each save then draws once, where
    bbox_inches="tight" lays out, draws with no output and measures before drawing, for every format. The PNG's
    pixels are those of a tight save (tests/test_figures.py compares them)."""
    fig.set_dpi(dpi)
    engine = fig.get_layout_engine()
    if engine is not None:
        engine.execute(fig)
    box = fig.get_tightbbox().padded(PAD_INCHES)  # measured by the renderer the layout used
    fig.set_layout_engine("none")
    return box


def page_formats(out_dir: Path, stem: str) -> tuple[str, ...]:
    """What `degradation report` writes of a figure: the PNG its page inlines, and the PDF only where one is there
    already (`plot` wrote it), so that no PDF is left older than its PNG; new PDFs are `plot`'s (they cost over a
    quarter of its time)."""
    return tuple(ext for ext in FORMATS if ext == "png" or (Path(out_dir) / f"{stem}.{ext}").is_file())


def save(fig: Figure, out_dir: Path, stem: str, formats: tuple[str, ...] | None = None) -> list[Path]:
    """PNG (for viewing) and PDF (vector, for papers), or the given formats, all from one layout (lay_out: the
    PNG's pixels are those a tight save draws; the PDF shares the PNG's box)."""
    box = lay_out(fig)
    paths = []
    for ext in formats or FORMATS:
        path = Path(out_dir) / f"{stem}.{ext}"
        write_atomic(path, partial(fig.savefig, format=ext, dpi=DPI, bbox_inches=box))
        paths.append(path)
    plt.close(fig)
    return paths
