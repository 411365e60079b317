"""Lesion figure: test error with one block removed (by position) and with k random blocks removed, plain vs
ResNet (from results/lesion.parquet, `degradation lesion`)."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from degradation.figures.experiment import Experiment
from degradation.figures.style import add_note, empty_panel, legend_below, network_color, new_figure

STYLES = {"plain": "--", "resnet": "-", "preact": ":"}


def _first_run(cell, lesion):
    ids = [i for i in cell["run_ids"] if i in set(lesion["run_id"])]
    return lesion[lesion["run_id"] == ids[0]] if ids else None


def draw(exp: Experiment) -> tuple[Figure, dict]:
    fig, (single_ax, k_ax) = new_figure(2, width=5.0, height=3.8)
    lesion = exp.lesion
    panels: list[dict] = [{"title": "one block removed", "lines": []}, {"title": "k random blocks", "lines": []}]
    notes: list[str] = []
    for arch, style in STYLES.items():
        for _, cell in exp.family(arch).iterrows() if lesion is not None and not lesion.empty else []:
            rows = _first_run(cell, lesion)
            if rows is None:
                continue
            color = network_color(cell["arch"], cell["depth"])
            intact = 100 * rows.loc[rows["kind"] == "none", "test_error"].mean()
            single = rows[(rows["kind"] == "single") & (rows["skipped"] == "")]
            single_ax.plot(single["block_index"], 100 * single["test_error"], style, marker=".", color=color,
                           label=f"{cell['label']} (intact {intact:.1f}%)")
            skipped = int((rows["skipped"] != "").sum())
            if skipped:
                notes.append(f"{cell['label']}: {skipped} block(s) change the shape and cannot be removed (skipped)")
            by_k = rows[rows["kind"] == "random"].groupby("k")["test_error"].agg(["mean", "min", "max"])
            if not by_k.empty:
                k_ax.errorbar(by_k.index, 100 * by_k["mean"], yerr=[100 * (by_k["mean"] - by_k["min"]),
                              100 * (by_k["max"] - by_k["mean"])], fmt=style, marker=".", capsize=2, color=color,
                              label=cell["label"])
            panels[0]["lines"].append({"label": cell["label"], "points": len(single), "intact_pct": intact})
            panels[1]["lines"].append({"label": cell["label"], "ks": [int(k) for k in by_k.index]})
    for ax in (single_ax, k_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # blocks and k are counts
    for ax, title, xlabel in ((single_ax, "one block removed", "removed block (network order)"),
                              (k_ax, "k random blocks removed", "k")):
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test error (%)")
        if ax.get_lines():
            legend_below(ax, ax.get_legend_handles_labels()[0])
        else:
            empty_panel(ax, "no lesions measured:\nrun `degradation lesion`")
    notes.append("Residual blocks lose their branch and keep the shortcut; plain blocks become the identity. "
                 "k random: mean over seeded draws, bars min-max.")
    title = f"Lesion study (dashed = plain, solid = ResNet) — {exp.title}"
    fig.suptitle(title)
    add_note(fig, notes)
    return fig, {"figure": "lesion", "title": title, "panels": panels, "missing": [], "notes": notes}
