"""Gradient flow read from results/layers.parquet: the layer x window grid, and the early layers' verdict.

The verdict compares the early layers (the stem and the first stage) of a plain net with its residual twin:
the median over logging windows of the ratio of their mean gradient norms. Below 1/2: the plain net's early
layers get vanishing gradients by comparison; above 2: exploding; between: comparable (healthy, as far as
the norm tells). The thresholds are a factor of two either way: BN keeps both nets' norms within a small
factor when nothing goes wrong, so a factor two is a difference worth naming, not noise between seeds.
"""

from __future__ import annotations

import math

import pandas as pd

EARLY_STAGES = ("stem", "stage1", "layer1")
VANISHING, EXPLODING = 0.5, 2.0


def grid(layers: pd.DataFrame, run_id: str, metric: str = "grad_norm") -> pd.DataFrame:
    """layer_index x step values of one run (rows: layers in network order; columns: window ends)."""
    mine = layers.loc[(layers["run_id"] == run_id) & (layers["metric"] == metric), ["layer_index", "step", "value"]]
    return mine.pivot_table(index="layer_index", columns="step", values="value", aggfunc="last").sort_index()


def early_norm(layers: pd.DataFrame, run_ids: list[str]) -> pd.Series:
    """Mean gradient norm of the early layers per window, averaged over the given runs (seeds)."""
    mine = layers.loc[layers["run_id"].isin(run_ids) & (layers["metric"] == "grad_norm")
                      & layers["stage"].isin(EARLY_STAGES), ["step", "value"]]
    return mine.groupby("step")["value"].mean()


def early_verdict(layers: pd.DataFrame, plain_ids: list[str], res_ids: list[str]) -> tuple[float, str]:
    """(median ratio plain / residual of the early layers' gradient norm, vanishing | exploding | comparable)."""
    plain, res = early_norm(layers, plain_ids), early_norm(layers, res_ids)
    both = pd.concat([plain, res], axis=1, keys=["plain", "res"]).dropna()
    both = both[both["res"] > 0]
    if both.empty:
        return math.nan, "no common windows"
    ratio = float((both["plain"] / both["res"]).median())
    word = "vanishing" if ratio < VANISHING else "exploding" if ratio > EXPLODING else "comparable"
    return ratio, word
