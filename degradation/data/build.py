"""Data for one run: load (CIFAR, synthetic, small-image folders), split, normalise, batch on the device.

`build_data(cfg.data, batch_size=..., seed=..., device=...)` is the one entry point a run needs. The data's recipe
(data/registry.py) says which path it takes: the CIFAR recipe holds the images in memory (CIFAR-10/100, synthetic
data, an image folder under data.recipe=cifar: data/smallfolder.py); the ImageNet recipe streams files
(data/imagedata.py).
"""

from __future__ import annotations

from typing import Any

import torch

from degradation.data.bundle import DataBundle
from degradation.data.cifar import SPECS, load_cifar
from degradation.data.normalize import fit_normalizer
from degradation.data.registry import dataset, recipe_of, streams_files
from degradation.data.splits import balanced_subset, split_indices
from degradation.data.stream import BatchStream, EvalSet
from degradation.data.synthetic import make_synthetic
from degradation.errors import UsageError

EVAL_BATCH_SIZE = 1000  # evaluation needs no gradients: bigger batches, fewer calls


def load_arrays(data_cfg: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The raw uint8 images and int64 labels of the configured data set (train and test), on the CPU, and what the
    run records of where they came from (an image folder: its test source and header check)."""
    name = data_cfg.get("name")
    if name == "synthetic":
        return make_synthetic(
            int(data_cfg.get("train_size")),
            int(data_cfg.get("test_size")),
            int(data_cfg.get("num_classes", 10)),
            int(data_cfg.get("seed", 0)),
        ), {}
    if name in SPECS:
        return load_cifar(name, data_cfg.get("root", "data"), bool(data_cfg.get("download", True))), {}
    if dataset(name).file_backed and not streams_files(data_cfg):
        from degradation.data.smallfolder import load_folder_arrays  # deferred: torchvision, for folders only

        return load_folder_arrays(data_cfg)
    raise UsageError(f"data set '{name}' is not held in memory; build_data reads it from its files")


def _check_labels(arrays: dict[str, torch.Tensor], num_classes: int, name: str) -> None:
    for split in ("train", "test"):
        labels = arrays[f"{split}_y"]
        if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
            raise UsageError(
                f"{name} {split} labels run from {int(labels.min())} to {int(labels.max())}, but data.num_classes="
                f"{num_classes}; set data.num_classes to the data set's number of classes"
            )


def build_data(
    data_cfg: Any,
    *,
    batch_size: int,
    seed: int,
    device: torch.device | str = "cpu",
    memory_format: torch.memory_format = torch.contiguous_format,
    world_size: int = 1,
    rank: int = 0,
    eval_batch_size: int = EVAL_BATCH_SIZE,
) -> DataBundle:
    """Load, split (full | holdout), normalise with training-split statistics, and stream on `device`."""
    name = str(data_cfg.get("name"))
    if streams_files(data_cfg):
        from degradation.data.imagedata import build_image_data  # deferred: torchvision, for image folders only

        return build_image_data(data_cfg, batch_size=batch_size, seed=seed, device=device,
                                memory_format=memory_format, world_size=world_size, rank=rank)
    num_classes = int(data_cfg.get("num_classes", 10))
    arrays, source = load_arrays(data_cfg)
    _check_labels(arrays, num_classes, name)
    split = str(data_cfg.get("split", "full"))
    train_idx, val_idx = split_indices(
        len(arrays["train_y"]), split, int(data_cfg.get("val_size", 0)), int(data_cfg.get("split_seed", 0))
    )
    subset = data_cfg.get("train_subset")
    if subset is not None and name in SPECS:  # an image folder's subset was taken by its scan (folders.subset)
        part = balanced_subset(arrays["train_y"][train_idx], int(subset), int(data_cfg.get("split_seed", 0)),
                               f"{dataset(name).display}'s training {'split' if split == 'holdout' else 'set'}")
        train_idx = train_idx[part]
    train_x, train_y = arrays["train_x"][train_idx], arrays["train_y"][train_idx]
    normalizer = fit_normalizer(train_x, str(data_cfg.get("normalize", "mean_image")))
    stream = BatchStream(
        train_x,
        train_y,
        normalizer,
        batch_size=batch_size,
        seed=seed,
        device=device,
        memory_format=memory_format,
        world_size=world_size,
        rank=rank,
    )

    def evalset(x: torch.Tensor, y: torch.Tensor) -> EvalSet:
        return EvalSet(x, y, normalizer, batch_size=eval_batch_size, device=device, memory_format=memory_format)

    eval_sets = {"test": evalset(arrays["test_x"], arrays["test_y"])}
    if split == "holdout":
        eval_sets["val"] = evalset(arrays["train_x"][val_idx], arrays["train_y"][val_idx])
    info = {"split": split, "train_size": len(train_y), "val_size": len(val_idx), "test_size": len(arrays["test_y"]),
            "recipe": recipe_of(data_cfg), "train_subset": subset, **source}
    return DataBundle(name, stream, eval_sets, len(train_y), num_classes, normalizer, info)
