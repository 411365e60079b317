"""The update/weight ratio of every layer over training: lr * ||grad|| / ||weights||, per logging window.

train/layers.py records it (metric update_ratio of layers.parquet) next to the gradient norm that
figures/gradflow.py draws; this draws the ratio as layer x iteration heatmaps, one per network (the deepest
few of each family), on one log colour scale so networks compare. A healthy layer sits near 1e-3; a layer far
below barely moves, one far above is rewritten every step (the ratio leaves momentum and weight decay out).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from degradation.analysis.flow import grid
from degradation.figures.gradflow import heatmap
from degradation.figures.style import empty_panel, new_figure

METRIC = "update_ratio"
COLUMNS = ("run_id", "metric", "step", "layer_index", "value")  # what chosen() and grid() read of layers.parquet
PER_FAMILY = 3  # the deepest networks of each family drawn; the rest are named in the entry


def chosen(selected: pd.DataFrame, layers: pd.DataFrame | None) -> list[tuple[str, str]]:
    """(label, run id) per network with recorded ratios: the first seed, the deepest PER_FAMILY of each family."""
    if layers is None or layers.empty:
        return []
    recorded = set(layers.loc[layers["metric"] == METRIC, "run_id"].unique())  # not row by row: 1e5-1e6 rows
    mine = selected[selected["run_id"].isin(recorded)].sort_values(["arch", "shortcut", "depth", "seed"])
    out = []
    for _, family in mine.groupby(["arch", "shortcut"], sort=True):
        first = family.drop_duplicates("label")
        out += [(r["label"], r["run_id"]) for _, r in first.tail(PER_FAMILY).iterrows()]
    return out


def draw(selected: pd.DataFrame, layers: pd.DataFrame | None, title: str) -> tuple[Figure, dict]:
    picks = chosen(selected, layers)
    ncols = min(max(len(picks), 1), 3)
    nrows = max(1, -(-len(picks) // ncols))
    fig, axes = new_figure(ncols, nrows, width=4.2, height=3.3)
    entry: dict = {"panels": [label for label, _ in picks]}
    if not picks:
        empty_panel(axes[0], "no update/weight ratios recorded\n(trainer.record_layers=true records them)")
        fig.suptitle(f"Update/weight ratio — {title}")
        return fig, entry
    grids = [grid(layers, run_id, METRIC) for _, run_id in picks]
    values = np.concatenate([g.to_numpy().ravel() for g in grids])
    values = values[np.isfinite(values) & (values > 0)]
    norm = LogNorm(vmin=values.min(), vmax=values.max()) if values.size else None
    image = None
    for ax, g, (label, _) in zip(axes, grids, picks, strict=False):
        image = heatmap(ax, g, label, norm, cmap="magma")  # magma: not the gradient norm's viridis
    for ax in axes[len(picks):]:
        ax.set_visible(False)
    if image is not None:
        fig.colorbar(image, ax=axes[: len(picks)], label="update / weight (log scale)", shrink=0.9)
    fig.suptitle(f"Update/weight ratio per layer — {title}")
    return fig, entry
