"""One look for every figure: Agg backend, fonts, a colour per depth kept across panels and figures, saving.

Lines of one depth share a colour in Figures 1, 6 and 7, so a reader can follow plain-56 from one panel to
the next. Legends and notes sit outside the axes, never over the curves.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from degradation.io import write_atomic  # noqa: E402

DPI = 150
FORMATS = ("png", "pdf")  # PNG for viewing, PDF (vector) for papers
RC = {
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
DEPTH_COLORS = {20: "#1F77B4", 32: "#2CA02C", 44: "#9467BD", 56: "#D62728", 110: "#000000", 1202: "#FF7F0E"}
_SPARE = ["#17BECF", "#8C564B", "#BCBD22", "#E377C2", "#7F7F7F", "#0072B2", "#009E73"]
TRAIN_STYLE = {"linestyle": (0, (4, 2)), "linewidth": 1.2}  # dashed, thin: training error (the paper's)
TEST_STYLE = {"linestyle": "-", "linewidth": 2.2}  # bold: test error
BAND_ALPHA = 0.2
BAND_TEXT = "shaded: min–max over seeds, line: mean"
LONG_RUN = 10_000  # iterations from which the x axis is in units of 1e4, as in the paper


def depth_color(depth: int) -> str:
    """The paper's depths have fixed colours; any other depth gets a spare one, the same every time."""
    depth = int(depth)
    return DEPTH_COLORS.get(depth, _SPARE[(depth // 6) % len(_SPARE)])


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


def depth_handle(label: str, depth: int, style: dict | None = None) -> Line2D:
    return Line2D([], [], color=depth_color(depth), label=label, **(style or TEST_STYLE))


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
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=10, color="#666666", wrap=True)


def save(fig: Figure, out_dir: Path, stem: str) -> list[Path]:
    """PNG (for viewing) and PDF (vector, for papers); the tight box takes in the notes under the figure."""
    paths = []
    for ext in FORMATS:
        path = Path(out_dir) / f"{stem}.{ext}"
        write_atomic(path, lambda tmp, ext=ext: fig.savefig(tmp, format=ext, dpi=DPI, bbox_inches="tight",
                                                              pad_inches=0.15))
        paths.append(path)
    plt.close(fig)
    return paths
