"""Gradient flow: layer x iteration heatmaps of the gradient norm, a plain net beside its residual twin, and the
first layer's gradient norm against iterations for every depth (from results/layers.parquet)."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from degradation.analysis.flow import early_verdict, grid
from degradation.figures.experiment import Experiment
from degradation.figures.style import add_note, empty_panel, legend_below, network_color, new_figure

# what draw reads of layers.parquet (pd.read_parquet's arguments): the gradient norm's rows, six of its columns
READ = {"columns": ["run_id", "step", "layer_index", "stage", "metric", "value"],
        "filters": [("metric", "==", "grad_norm")]}


def _pair(exp: Experiment, recorded: set[str]):
    """The deepest depth with both a plain net and a ResNet (A) that recorded layers."""
    plain, res = exp.family("plain"), exp.family("resnet")
    for depth in sorted(set(plain["depth"]) & set(res["depth"]), reverse=True):
        p, r = plain[plain["depth"] == depth].iloc[0], res[res["depth"] == depth].iloc[0]
        if set(p["run_ids"]) & recorded and set(r["run_ids"]) & recorded:
            return p, r
    return None


def heatmap(ax, values, title: str, norm, cmap: str = "viridis") -> AxesImage:
    """A layer x window grid (analysis/flow.grid) drawn in network order, first layer at the bottom."""
    steps = values.columns.to_numpy()
    image = ax.imshow(values.to_numpy(), aspect="auto", origin="lower", norm=norm, cmap=cmap,
                      extent=(steps.min(), steps.max(), 0.5, len(values) + 0.5), interpolation="nearest")
    ax.set_title(title)
    ax.set_xlabel("iterations")
    ax.set_ylabel("layer (1 = first conv)")
    ax.grid(False)
    return image


def draw(exp: Experiment) -> tuple[Figure, dict]:
    layers = exp.layers
    fig, axes = new_figure(3, width=4.6, height=3.8)
    entry: dict = {"figure": "gradflow", "panels": [], "missing": [], "notes": []}
    recorded = set(layers["run_id"].unique()) if layers is not None else set()  # not row by row: 1e5-1e6 rows
    pair = _pair(exp, recorded) if recorded else None
    notes = []
    if pair is None:
        for ax in axes[:2]:
            empty_panel(ax, "no plain/ResNet pair of one depth\nwith recorded gradients")
        notes.append("Heatmaps need a plain net and a ResNet of one depth run with trainer.record_layers=true.")
    else:
        plain, res = pair
        grids = [grid(layers, next(i for i in c["run_ids"] if i in recorded)) for c in (plain, res)]
        finite = np.concatenate([g.to_numpy().ravel() for g in grids])
        finite = finite[np.isfinite(finite) & (finite > 0)]
        norm = LogNorm(vmin=finite.min(), vmax=finite.max()) if finite.size else None
        for ax, g, c in zip(axes[:2], grids, (plain, res), strict=True):
            image = heatmap(ax, g, f"{c['label']}: gradient norm", norm)
        fig.colorbar(image, ax=axes[:2], label="||grad|| (log scale)", shrink=0.9)
        ratio, word = early_verdict(layers, list(plain["run_ids"]), list(res["run_ids"]))
        verdict = (f"Early layers (stem + stage 1) of {plain['label']}: gradient norm {ratio:.2f}x "
                   f"{res['label']}'s (median over windows): {word}") if math.isfinite(ratio) else ""
        entry.update(pair=[plain["label"], res["label"]], early_ratio=ratio, early_verdict=word)
        if verdict:
            notes.append(verdict)
        entry["panels"] += [{"title": f"{c['label']} heatmap", "layers": len(g), "windows": g.shape[1]}
                            for g, c in zip(grids, (plain, res), strict=True)]
    ax = axes[2]
    lines = []
    firsts = layers[(layers["metric"] == "grad_norm") & (layers["layer_index"] == 1)] if layers is not None else None
    families = [("plain", "--"), ("resnet", "-")] + [(arch, "-.") for arch in exp.other_networks()]  # plug-ins
    for arch, style in families:
        for _, c in exp.family(arch).iterrows():
            ids = [i for i in c["run_ids"] if i in recorded]
            if not ids or firsts is None:
                continue
            first = firsts[firsts["run_id"] == ids[0]].sort_values("step")
            ax.plot(first["step"], first["value"], style, color=network_color(c["arch"], c["depth"]), label=c["label"])
            lines.append({"label": c["label"], "points": len(first)})
    ax.set_title("first layer's gradient norm")
    ax.set_xlabel("iterations")
    ax.set_ylabel("||grad|| of layer 1")
    if lines:
        ax.set_yscale("log")
        legend_below(ax, ax.get_lines())
    else:
        empty_panel(ax, "no recorded gradients")
    entry["panels"].append({"title": "first layer", "lines": lines})
    title = f"Gradient flow (dashed = plain, solid = ResNet) — {exp.title}"
    fig.suptitle(title)
    add_note(fig, notes)
    entry.update(title=title, notes=notes)
    return fig, entry
