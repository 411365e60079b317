"""Everything one (data set, preset) pair needs to be drawn: its selected runs, curves, responses and notes."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from degradation.analysis.finals import cell_stats, evaluated, group, select_runs, several_variants
from degradation.analysis.setting import describe, paper_cifar
from degradation.models.registry import NETWORKS, legend_shortcut


@dataclass
class Experiment:
    dataset: str
    preset: str
    curves: pd.DataFrame  # error rows of the selected runs only
    cells: pd.DataFrame  # cell_stats of the selected runs
    notes: list[str] = field(default_factory=list)  # each starts with the label it is about
    responses: pd.DataFrame | None = None  # rows of finished selected runs only
    stem_suffix: str = ""  # "" when this is the only experiment, "-<dataset>-<preset>" otherwise
    ran: set[str] = field(default_factory=set)  # labels of every run of this pair, whatever its status
    layers: pd.DataFrame | None = None  # gradient flow rows of the selected runs (layers.parquet), if collected
    lesion: pd.DataFrame | None = None  # lesion rows of the selected runs (lesion.parquet), if measured
    net_family: str = "cifar"  # the network family drawn: cifar (Figures 1, 6, 7, ...) or imagenet (Figure 4)
    described: str = ""  # the data, subset and preset as titles name them ("" : from dataset and preset alone)
    paper: bool = False  # the paper's CIFAR-10 numbers are the comparison (CIFAR-10, whole training set)

    @property
    def title(self) -> str:
        return self.described or describe(self.dataset, self.preset)

    def cell(self, arch: str, depth: int, shortcut: str | None = None) -> pd.Series | None:
        """The selected cell for plain-<depth> (shortcut none) or ResNet-<depth> (shortcut A unless given)."""
        shortcut = shortcut or legend_shortcut(arch)
        hit = self.cells[(self.cells["arch"] == arch) & (self.cells["depth"] == depth)
                         & (self.cells["shortcut"] == shortcut)]
        return None if hit.empty else hit.iloc[0]

    def family(self, arch: str) -> pd.DataFrame:
        """Cells of the paper's figures: plain nets, ResNets with option-A shortcuts, pre-activation nets with
        their config's B, or a plug-in network, by depth."""
        shortcut = legend_shortcut(arch)
        cells = self.cells[(self.cells["arch"] == arch) & (self.cells["shortcut"] == shortcut)]
        return cells.sort_values("depth")

    def other_networks(self) -> list[str]:
        """Networks of this experiment beyond the built-in ones (plug-ins), in the order first run."""
        return [a for a in dict.fromkeys(self.cells["arch"]) if a not in NETWORKS]

    def notes_for(self, labels: list[str]) -> list[str]:
        return [n for n in self.notes if any(n.startswith((f"{name} ", f"{name},")) for name in labels)]

    def not_run(self, expected: list[str]) -> list[str]:
        """Expected networks with no run at all (failed or curve-less ones have notes of their own)."""
        return [name for name in expected if name not in self.ran]


SHOWN_SPLIT = {"cifar": "test", "imagenet": "val"}  # the evaluated split as each family's figures draw it


def shown_errors(curves: pd.DataFrame, run_ids: set[str], family: str) -> pd.DataFrame:
    """The error rows of the runs, the evaluated split of a run that lacks the family's own named as it: a
    CIFAR-family net evaluated on a val split draws in Figure 6's test panel, and the other way round."""
    errors = curves[(curves["metric"] == "error") & curves["run_id"].isin(run_ids)]
    shown = SHOWN_SPLIT[family]
    has = set(errors.loc[errors["split"] == shown, "run_id"])
    rename = evaluated(errors) & ~errors["run_id"].isin(has)
    if not rename.any():
        return errors
    errors = errors.copy()
    errors.loc[rename, "split"] = shown
    return errors


def build_experiment(dataset: str, preset: str, finals: pd.DataFrame, curves: pd.DataFrame,
                     responses: pd.DataFrame | None, suffix: str = "", layers: pd.DataFrame | None = None,
                     lesion: pd.DataFrame | None = None, family: str = "cifar", named: str | None = None) -> Experiment:
    """Select the runs of one (data set, preset) pair of one network family and gather what its figures draw;
    `named`: the family to name in titles (when the pair holds both)."""
    mine = group(finals, dataset, preset, family)
    runs, notes = select_runs(mine)
    errors = shown_errors(curves, set(runs["run_id"]), family)
    resp = None
    if responses is not None:
        resp = responses[responses["run_id"].isin(set(runs.loc[runs["finished"], "run_id"]))]
    notes = several_variants(mine) + notes
    ids = set(runs["run_id"])
    mine_layers = layers[layers["run_id"].isin(ids)] if layers is not None else None
    mine_lesion = lesion[lesion["run_id"].isin(ids)] if lesion is not None else None
    return Experiment(dataset, preset, errors, cell_stats(runs), notes, resp, suffix, set(mine["network"]),
                      mine_layers, mine_lesion, family, describe(dataset, preset, mine, named),
                      family == "cifar" and paper_cifar(dataset, mine))

