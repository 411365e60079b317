"""What a group of runs was trained on, as figures, tables and the summary read it: the network family, the data
recipe, the training subset, and whether the paper's numbers are the comparison.

Figures follow the network family and the data, not the loader: a CIFAR-family net on an image folder gets
Figures 1/6 and Table 6 like one on CIFAR-10; an ImageNet-family net gets Figure 4 and Tables 2-3. The paper's
CIFAR numbers are a comparison only for CIFAR-10 trained on the whole training set; its Tables 2-3 only for
ImageNet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from degradation.conf import preset_changes
from degradation.data.registry import FILE_BACKED, display_name

FAMILIES = ("cifar", "imagenet")  # the order figures and sections are drawn in
KIND_COLUMNS = ("family", "recipe", "train_subset", "classes")
PAPER_CIFAR = "cifar10"  # the paper's CIFAR numbers (Table 6, Figure 6's axis, the depth figure's marks)
PAPER_IMAGENET = "imagenet"  # the paper's Tables 2-3
PAPER_CIFAR_TRAIN = 50_000  # the paper's CIFAR-10 training images
PAPER_CIFAR_ITERS = 64_000  # and its iterations
RECIPE_NAMES = {"cifar": "CIFAR recipe", "imagenet": "ImageNet recipe"}
FAMILY_NAMES = {"cifar": "CIFAR", "imagenet": "ImageNet"}


@dataclass(frozen=True)
class RunKind:
    family: str  # cifar | imagenet: the network family, so which figures and tables the run belongs to
    recipe: str  # cifar | imagenet: how it was trained and evaluated (test split; or val split and 10-crop)
    train_subset: int | None  # training images of a class-balanced subset; None: the whole set
    classes: int | None  # the number of classes, where the settings say


def _whole(value: object) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value else None


def run_kind(dataset: str, settings: object) -> RunKind:
    """A run's family, recipe and subset from runs.parquet's `settings` (JSON of dotted keys). What a run did not
    record is the data set's default: an image folder or ImageNet trains ImageNet-family nets on the ImageNet
    recipe, every other data set CIFAR-family nets on the CIFAR recipe."""
    try:
        values = json.loads(settings) if isinstance(settings, str) else {}
    except ValueError:
        values = {}
    values = values if isinstance(values, dict) else {}
    default = "imagenet" if dataset in FILE_BACKED else "cifar"
    family = values.get("model.family") if values.get("model.family") in FAMILIES else default
    recipe = values.get("data.recipe") if values.get("data.recipe") in RECIPE_NAMES else default
    return RunKind(str(family), str(recipe), _whole(values.get("data.train_subset")),
                   _whole(values.get("data.num_classes")))


def with_kinds(table: pd.DataFrame) -> pd.DataFrame:
    """`table` (dataset and settings columns) with the run's family, recipe, train_subset and classes."""
    settings = table["settings"] if "settings" in table.columns else [None] * len(table)
    kinds = [run_kind(str(d), s) for d, s in zip(table["dataset"], settings, strict=True)]
    table = table.copy()
    for column in KIND_COLUMNS:
        table[column] = pd.Series([getattr(k, column) for k in kinds], index=table.index, dtype=object)
    return table


def families(runs: pd.DataFrame) -> list[str]:
    """The network families among `runs`, in drawing order (CIFAR first)."""
    if "family" in runs.columns:
        present = set(runs["family"])
    else:  # a table made before families were read: each data set's default
        present = {run_kind(str(d), None).family for d in runs["dataset"]}
    return [f for f in FAMILIES if f in present]


def distinct(runs: pd.DataFrame | None, column: str) -> list:
    """The values of a column among the runs, first seen first; None for a value not recorded."""
    if runs is None or column not in runs.columns or runs.empty:
        return []
    return list(dict.fromkeys(None if v is None or v != v else v for v in runs[column]))  # NaN: not recorded


def subset_text(subsets: list) -> str:
    """", 5,000-image training subset"; several: each named, the whole set too."""
    if not subsets or subsets == [None]:
        return ""
    named = [f"{int(n):,}" for n in sorted(n for n in subsets if n is not None)]
    if len(subsets) == 1:
        return f", {named[0]}-image training subset"
    whole = " and the whole set" if None in subsets else ""
    return f", training subsets of {' and '.join(named)} images{whole}"


def data_title(dataset: str, runs: pd.DataFrame | None = None) -> str:
    """The data a group of runs trained on: its name; an image folder's classes and recipe; the subset."""
    text = display_name(dataset)
    if dataset == "imagefolder":
        details = []
        classes = [c for c in distinct(runs, "classes") if c is not None]
        if classes:
            details.append(f"{' or '.join(str(int(c)) for c in sorted(classes))} classes")
        if "cifar" in distinct(runs, "recipe"):
            details.append(" and ".join(RECIPE_NAMES[r] for r in distinct(runs, "recipe")))
        text += f" ({', '.join(details)})" if details else ""
    return text + subset_text(distinct(runs, "train_subset"))


def data_phrase(dataset: str, runs: pd.DataFrame | None = None) -> str:
    """data_title as a sentence's object: "these runs use an image folder (10 classes)"."""
    return ("an " if dataset == "imagefolder" else "") + data_title(dataset, runs)


def changed_text(preset: str, runs: pd.DataFrame | None) -> str:
    """", changed: max_iters=1000, milestones=[500, 750]": the preset's schedule values every one of the runs
    overrode (values only some changed are their variants, named on their own lines)."""
    if runs is None or runs.empty or "settings" not in runs.columns:
        return ""
    common: set[tuple[str, str]] | None = None
    for settings in runs["settings"]:
        try:
            values = json.loads(settings) if isinstance(settings, str) else None
        except ValueError:
            values = None
        if not isinstance(values, dict):
            return ""  # a run without its settings: nothing can be said of all of them
        mine = {(key.removeprefix("schedule."), json.dumps(v)) for key, v in preset_changes(preset, values).items()}
        common = mine if common is None else common & mine
    return ", changed: " + ", ".join(f"{k}={v}" for k, v in sorted(common)) if common else ""


def describe(dataset: str, preset: str, runs: pd.DataFrame | None = None, family: str | None = None) -> str:
    """Names the data and preset (and, given the runs, the folder's classes and the subset; given a family, which
    one), so a demo figure is never taken for CIFAR-10, nor a subset for the whole set."""
    text = f"{data_title(dataset, runs)}, {preset} preset{changed_text(preset, runs)}"
    if dataset == "synthetic":
        text += " (not CIFAR-10)"
    return text + (f", {FAMILY_NAMES[family]}-family nets" if family else "")


def paper_cifar(dataset: str, runs: pd.DataFrame | None = None) -> bool:
    """Whether the paper's CIFAR-10 numbers are the comparison: CIFAR-10 on its whole training set, CIFAR recipe."""
    if dataset != PAPER_CIFAR:
        return False
    return distinct(runs, "train_subset") in ([], [None]) and distinct(runs, "recipe") in ([], ["cifar"])


def paper_imagenet(dataset: str) -> bool:
    """Whether the paper's Tables 2-3 rows belong beside these runs: ImageNet itself."""
    return dataset == PAPER_IMAGENET
