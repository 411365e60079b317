"""Error curves of one cell (one network, one or more seeds) on an axis, and what was drawn, for the manifest.

Several seeds: the mean curve with a min–max band, over the steps every seed has reached (so the mean never
jumps where one seed stops early).
"""

from __future__ import annotations

import pandas as pd

from degradation.figures.style import BAND_ALPHA, TEST_STYLE, TRAIN_STYLE, error_bottom, error_top, network_color

OUTLIER = 3  # a panel whose curves need a y range this many times another's gets its own
LATE = 0.6  # the y range is set by each curve past this fraction of its steps (after the first lr drop)


def seed_curve(errors: pd.DataFrame, run_ids: list[str], split: str) -> pd.DataFrame:
    """step, mean, lo, hi (percent) over the given runs, at the steps all of them have."""
    rows = errors[(errors["split"] == split) & errors["run_id"].isin(run_ids)]
    wide = rows.pivot_table(index="step", columns="run_id", values="value", aggfunc="last").sort_index()
    wide = wide.dropna(how="any") * 100
    return pd.DataFrame({"step": wide.index.to_numpy(), "mean": wide.mean(axis=1).to_numpy(),
                         "lo": wide.min(axis=1).to_numpy(), "hi": wide.max(axis=1).to_numpy()})


def draw_cell(ax, errors: pd.DataFrame, cell: pd.Series, split: str, x_div: float, style: dict | None = None) -> dict:
    """One line (mean over seeds) plus a band when there are several seeds; returns its manifest entry."""
    curve = seed_curve(errors, cell["run_ids"], split)
    color = network_color(cell["arch"], cell["depth"])
    style = style or (TRAIN_STYLE if split == "train" else TEST_STYLE)
    x = curve["step"] / x_div
    ax.plot(x, curve["mean"], color=color, label=f"{cell['label']} {split}", **style)
    several = cell["n_seeds"] > 1
    if several and not curve.empty:
        ax.fill_between(x, curve["lo"], curve["hi"], color=color, alpha=BAND_ALPHA, linewidth=0)
    late = curve[curve["step"] >= LATE * curve["step"].max()] if not curve.empty else curve
    return {
        "label": cell["label"],
        "split": split,
        "arch": cell["arch"],
        "depth": int(cell["depth"]),
        "shortcut": cell["shortcut"],
        "color": color,
        "run_ids": list(cell["run_ids"]),
        "seeds": list(cell["seeds"]),
        "band": "min-max" if several else None,
        "points": len(curve),
        "last_step": int(curve["step"].iloc[-1]) if not curve.empty else None,
        "last_value_pct": float(curve["mean"].iloc[-1]) if not curve.empty else None,
        "late_max_pct": float(late["hi"].max()) if not late.empty else None,
        "late_min_pct": float(late["lo"].min()) if not late.empty else None,
    }


def seeds_note(cells: list[pd.Series]) -> list[str]:
    """Which lines are means over seeds, and what their bands are."""
    several = list(dict.fromkeys(f"{c['label']} ({c['n_seeds']} seeds)" for c in cells if c["n_seeds"] > 1))
    return [f"Mean over seeds, shaded min–max: {', '.join(several)}"] if several else []


def x_extent(cells: list[pd.Series], errors: pd.DataFrame) -> float:
    """Right end of the x axis: the planned length of the longest drawn run (a partial run stops short)."""
    planned = [float(c["total_iters"]) for c in cells if pd.notna(c["total_iters"])]
    if planned:
        return max(planned)
    return float(errors["step"].max()) if not errors.empty else 1.0


def panel_entry(ax, title: str, lines: list[dict], expected: list[str], present: list[str]) -> dict:
    return {
        "title": title,
        "xlabel": ax.get_xlabel(),
        "ylabel": ax.get_ylabel(),
        "lines": lines,
        "labels": present,
        "missing": [name for name in expected if name not in present],
    }


def set_limits(axes: list, panels: list[dict], x_max: float) -> None:
    """y from 0 to a readable top that shows every curve's converged part (the start is clipped, as in the paper).

    Panels share one range, so they compare by eye, except a panel whose curves sit far higher than another's
    (plain-110 at 60% beside ResNets at 7%): it gets its own.
    """
    tops = [error_top([line["late_max_pct"] for line in p["lines"] if line["late_max_pct"] is not None])
            if p["lines"] else None for p in panels]
    drawn = [t for t in tops if t is not None]
    low = min(drawn) if drawn else 100.0
    outlier = [t is not None and t > OUTLIER * low for t in tops]
    shared = max([t for t, out in zip(tops, outlier, strict=True) if t is not None and not out], default=100.0)
    lows = [line["late_min_pct"] for p in panels for line in p["lines"] if line["late_min_pct"] is not None]
    for ax, panel, top, own in zip(axes, panels, tops, outlier, strict=True):
        top = top if own and top is not None else shared
        bottom = error_bottom(lows, top)
        ax.set_ylim(bottom, top)
        ax.set_xlim(0, x_max)
        panel["ylim"] = [bottom, top]
        panel["xlim"] = [0.0, x_max]
