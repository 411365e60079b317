"""bench.parquet (`degradation bench`) as a plot: the tool's images/s beside a bare PyTorch loop's, per network,
and the ratio of the two (1 = the tool costs nothing over the bare loop)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from degradation.figures.style import new_figure

BENCH_TABLE = "bench.parquet"  # written by degradation/bench/step.py
NEEDS = ("arch", "depth", "device", "tool_images_per_s", "bare_images_per_s", "ratio")


def load_bench(results_dir: Path) -> pd.DataFrame | None:
    """bench.parquet, or None when absent; a damaged or foreign one is said once and skipped."""
    path = Path(results_dir) / BENCH_TABLE
    if not path.is_file():
        return None
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several kinds for a damaged file; the page goes on without it
        print(f"{path}: not readable ({type(exc).__name__}); the report has no bench plot", file=sys.stderr)
        return None
    missing = [c for c in NEEDS if c not in frame.columns]
    if missing or frame.empty:
        print(f"{path}: {'lacks ' + ', '.join(missing) if missing else 'has no rows'}; the report has no bench plot",
              file=sys.stderr)
        return None
    return frame


def _names(bench: pd.DataFrame) -> list[str]:
    """Each bar's network, with its precision and device where the file holds several (fp32 and bf16 rows)."""
    precisions = bench["precision"] if "precision" in bench.columns else pd.Series("32-true", index=bench.index)
    several = precisions.nunique() > 1
    return [f"{a}-{d}" + (f"\n{p}" if several else "") + (f"\n{dev}" if bench["device"].nunique() > 1 else "")
            for a, d, p, dev in zip(bench["arch"], bench["depth"], precisions, bench["device"], strict=True)]


def draw(bench: pd.DataFrame) -> Figure:
    names = _names(bench)
    x = np.arange(len(bench))
    fig, (speed, ratio) = new_figure(2, width=max(4.6, 0.9 * len(bench) + 2.2), height=3.4)
    speed.bar(x - 0.2, bench["tool_images_per_s"], 0.4, label="the tool (Lightning, stream, bookkeeping)",
              color="#1F3F8F")
    speed.bar(x + 0.2, bench["bare_images_per_s"], 0.4, label="bare PyTorch loop", color="#BBBBBB")
    speed.set_xticks(x, names)
    speed.set_ylabel("training images / s")
    speed.set_title("speed")
    speed.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), frameon=False, fontsize=9)
    ratio.bar(x, bench["ratio"], 0.5, color="#4E9BD6")
    ratio.axhline(1.0, color="#333333", lw=0.8)
    ratio.set_xticks(x, names)
    ratio.set_ylabel("tool / bare images/s")
    ratio.set_title("tool against bare loop")
    for xi, r in zip(x, bench["ratio"], strict=True):
        ratio.text(xi, r, f"{r:.2f}", ha="center", va="bottom", fontsize=9)
    devices = ", ".join(sorted(bench["device"].astype(str).unique()))
    fig.suptitle(f"degradation bench ({devices}; batch {int(bench['batch_size'].iloc[0])})"
                 if "batch_size" in bench.columns else f"degradation bench ({devices})")
    return fig
