"""One entry per data set: what the rest of the tool asks about it (its name in titles, whether it is held in
memory or read from files, its classes, image size, test-set size and augmentation recipe).

Torch-free on purpose: config checks, sweep plans, estimates and figures read it without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from degradation.errors import UsageError, did_you_mean


@dataclass(frozen=True)
class DataSet:
    name: str  # data.name, conf/data/<name>.yaml
    display: str  # what titles and tables call it
    file_backed: bool  # image folders: a file stream, a val split (centre crop) and a 10-crop test at the end
    classes: int | None  # None: counted from the class folders
    image_size: int  # the side the family's nets see (CIFAR 32; image folders: the crop, 224 by default)
    test_size: int | None  # images of one test evaluation; None: the config says (synthetic) or 50 per class
    recipe: str  # the paper's augmentation: "cifar" (pad 4, crop, flip) | "imagenet" (scale, crop, lighting) | "auto"
    fetch: bool = False  # `degradation data fetch` downloads and verifies it
    train_size: int | None = None  # training images of the official set (what data.train_subset is checked against)

    def eval_images(self, data_cfg: Any) -> int:
        """Images of one evaluation: the test set (plus the validation split when held out); image folders: the
        val set, taken as 50 per class (ILSVRC-2012's val set exactly; a holdout at most that)."""
        if self.file_backed:
            return 50 * int(data_cfg.get("num_classes"))
        test = self.test_size if self.test_size is not None else int(data_cfg.get("test_size"))
        return test + (int(data_cfg.get("val_size")) if data_cfg.get("split") == "holdout" else 0)


DATASETS: dict[str, DataSet] = {
    d.name: d
    for d in (
        DataSet("cifar10", "CIFAR-10", False, 10, 32, 10_000, "cifar", fetch=True, train_size=50_000),
        DataSet("cifar100", "CIFAR-100", False, 100, 32, 10_000, "cifar", fetch=True, train_size=50_000),
        DataSet("synthetic", "synthetic data", False, None, 32, None, "cifar"),
        DataSet("imagenet", "ImageNet (ILSVRC-2012)", True, 1000, 224, None, "imagenet"),
        DataSet("imagefolder", "image folder", True, None, 224, None, "auto"),  # data.recipe, by the images' size
    )
}
DATA_NAMES = tuple(DATASETS)
RECIPES = ("cifar", "imagenet")  # what data.recipe=auto resolves to (conf.compose) for an image folder
SUBSET_DATA = ("cifar10", "cifar100", "imagefolder")  # data.train_subset: a class-balanced part of the training set
FILE_BACKED = tuple(name for name, d in DATASETS.items() if d.file_backed)  # what "image data" means everywhere
FETCHABLE = tuple(name for name, d in DATASETS.items() if d.fetch)


def dataset(name: object) -> DataSet:
    """A data set's entry; a one-line UsageError naming the choices (and the closest) otherwise."""
    if name in DATASETS:
        return DATASETS[str(name)]
    raise UsageError(f"unknown data set '{name}'; choose from {', '.join(DATA_NAMES)}"
                     f"{did_you_mean(str(name), DATA_NAMES)}")


def display_name(name: str) -> str:
    """The data set's name in titles (an unknown one as it is)."""
    return DATASETS[name].display if name in DATASETS else name


def is_file_backed(name: object) -> bool:
    return name in DATASETS and DATASETS[str(name)].file_backed


def recipe_of(data_cfg: Any) -> str:
    """The augmentation recipe a run's data get: the data set's own, or an image folder's data.recipe (resolved
    from `auto` when the config is composed; a config written before the key existed: imagenet)."""
    entry = DATASETS.get(str(data_cfg.get("name")))
    own = entry.recipe if entry is not None else "cifar"
    if own != "auto":
        return own
    chosen = data_cfg.get("recipe", "imagenet")
    return "imagenet" if chosen in (None, "auto") else str(chosen)


def streams_files(data_cfg: Any) -> bool:
    """Read from files batch by batch (ImageNet's recipe: scale, crop, lighting, a val split and 10-crop), not held
    in memory as CIFAR is (a small-image folder under the CIFAR recipe is decoded once and held like CIFAR-10)."""
    return is_file_backed(data_cfg.get("name")) and recipe_of(data_cfg) == "imagenet"
