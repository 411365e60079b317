"""The verdict as a plot: each consecutive depth pair's gap in final training error, ± one standard error, beside
the band of ±2 standard errors inside which the summary calls a gap "within noise" (analysis/summary.py's rule).

One row per pair, grouped by family; a dot right of its band is "worse" (the deeper net ends higher), left of
it "better". The numbers are the summary's own Steps, so the plot and the verdict's sentence cannot disagree.
"""

from __future__ import annotations

import math
from textwrap import fill

from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from degradation.analysis.summary import Judgement, Z
from degradation.figures.style import empty_panel, new_figure

LABEL_WIDTH = 44  # characters per line of a pair's name (a variant's name lists its settings)
OUTCOME_COLORS = {"worse": "#B6392F", "better": "#1F3F8F", "within noise": "#777777"}


def rows(judged: Judgement) -> list[dict]:
    """One entry per step the verdict read: family, pair label, gap, se, outcome (top of the plot first)."""
    out = []
    for family, steps in judged.steps.items():
        for s in steps:
            out.append({"family": family, "pair": f"{s.deep['label']} vs {s.shallow['label']}", "gap": s.gap,
                        "se": s.se, "outcome": s.outcome})
    return out


def draw(judged: Judgement, title: str) -> Figure:
    entries = rows(judged)
    lines = sum(len(fill(f"{e['family']}: {e['pair']}", LABEL_WIDTH).splitlines()) for e in entries)
    fig, (ax,) = new_figure(1, width=8.4, height=0.9 + 0.3 * max(lines, 3))
    if not entries:
        empty_panel(ax, "no family has two finished depths:\nno gap to show")
        ax.set_title(title)
        return fig
    for y, e in enumerate(reversed(entries)):
        color = OUTCOME_COLORS[e["outcome"]]
        if math.isfinite(e["se"]):
            ax.fill_betweenx([y - 0.32, y + 0.32], -Z * e["se"], Z * e["se"], color="#DDDDDD", lw=0)
            ax.errorbar(e["gap"], y, xerr=e["se"], fmt="o", color=color, capsize=3, ms=6)
        else:
            ax.plot(e["gap"], y, "o", color=color, ms=6)
    ax.axvline(0, color="#333333", lw=0.8)
    ax.set_yticks(range(len(entries)), [fill(f"{e['family']}: {e['pair']}", LABEL_WIDTH) for e in reversed(entries)],
                  fontsize=9)
    ax.set_ylim(-0.6, len(entries) - 0.4)
    ax.set_xlabel("gap in final training error (points; + = deeper net worse)")
    ax.set_title(title)
    ax.grid(axis="y", visible=False)
    handles: list[Artist] = [Patch(color="#DDDDDD", label=f"±{Z:g} SE: within noise")]
    handles += [Line2D([], [], marker="o", ls="", color=c, label=o) for o, c in OUTCOME_COLORS.items()]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False, fontsize=9)
    return fig
