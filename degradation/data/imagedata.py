"""`data=imagenet` and `data=imagefolder`: an image folder as a run's DataBundle (train stream, val, 10-crop val).

The training split trains; the validation split (val/, or a seeded per-class holdout) gives Figure 4's bold
curves (centre crop, every eval_every iterations) and, at the end, the tables' 10-crop top-1/top-5 errors.
"""

from __future__ import annotations

from typing import Any

import torch

from degradation.data.bundle import DataBundle
from degradation.data.filestream import BadImages, FileEvalSet, FileStream, auto_workers, fit_image_normalizer
from degradation.data.folders import class_names, sample_size, scan
from degradation.data.headers import BYTES_PER_PIXEL, DEFAULT_MAX_PIXELS
from degradation.data.imageaug import AugmentSpec
from degradation.data.registry import recipe_of
from degradation.errors import UsageError


def check_classes(data_cfg: Any) -> tuple[str, ...]:
    """The class folders of data.root, checked against data.num_classes (ImageNet: 1000 wnids)."""
    name = str(data_cfg.name)
    classes = class_names(str(data_cfg.root), name)
    expected = data_cfg.get("num_classes", "auto")
    if expected != "auto" and int(expected) != len(classes):
        raise UsageError(
            f"data.root={data_cfg.root} has {len(classes)} class folders, but data.num_classes={expected}; "
            f"set data.num_classes={len(classes)} (or auto) or point data.root at the full set"
        )
    if len(classes) < 2:
        raise UsageError(f"data.root={data_cfg.root} has {len(classes)} class folder; a classifier needs at least 2")
    return classes


def max_pixels(data_cfg: Any) -> int:
    """data.max_pixels: the most pixels one image may declare (headers.py)."""
    return int(data_cfg.get("max_pixels", DEFAULT_MAX_PIXELS))


def scan_data(data_cfg: Any):
    """Every file of the configured folder listed and checked (UsageError naming the first bad one); under the
    CIFAR recipe every image the same size unless data.resize makes them so; data.train_subset applied."""
    check_classes(data_cfg)
    cifar = recipe_of(data_cfg) == "cifar"
    resize = data_cfg.get("resize")
    shorter = (int(resize) if resize else None) if cifar else AugmentSpec.from_cfg(data_cfg).largest_side
    subset = data_cfg.get("train_subset")
    return scan(str(data_cfg.root), str(data_cfg.name), holdout_per_class=int(data_cfg.holdout_per_class),
                split_seed=int(data_cfg.split_seed), verify=str(data_cfg.verify), max_pixels=max_pixels(data_cfg),
                shorter=shorter, same_size=cifar and not resize,
                train_subset=int(subset) if subset is not None else None)


def input_side(data_cfg: Any) -> int:
    """The side of the images an image folder's nets see: the ImageNet recipe's crop; under the CIFAR recipe the
    images' own size (data.resize when given), read from a sample of headers (what the estimate probes at)."""
    if recipe_of(data_cfg) == "imagenet":
        return int(data_cfg.crop)
    resize = data_cfg.get("resize")
    return int(resize) if resize else min(sample_size(str(data_cfg.root)))


def recipe_line(data_cfg: Any) -> str:
    """The plan's line on an image folder's recipe: which, why, and what it does."""
    why = data_cfg.get("recipe_why") or "data=imagenet"
    if recipe_of(data_cfg) == "cifar":
        side = input_side(data_cfg)
        resize = data_cfg.get("resize")
        size = f"every image resized to {side}x{side}" if resize else "no resize"
        return (f"recipe: cifar ({why}): held in memory; pad 4, random {side}x{side} crop, "
                f"{'flip, ' if data_cfg.get('flip', True) else ''}per-pixel mean; {size}; the val images are the "
                "test set, evaluated as they are (no 10-crop)")
    spec = AugmentSpec.from_cfg(data_cfg)
    return (f"recipe: imagenet ({why}): read from files; shorter side {spec.scale_min}-{spec.scale_max}, "
            f"crop {spec.crop}, {'flip, ' if spec.flip else ''}lighting {spec.lighting:g}; val: centre crop of "
            f"{spec.eval_resize}, 10-crop at the end")


def bad_images(data_cfg: Any) -> BadImages:
    """data.bad_images (skip | stop) and data.max_bad_images, as the policy object the stream counts with."""
    return BadImages(str(data_cfg.get("bad_images", "skip")), int(data_cfg.get("max_bad_images", 10)))


def memory_line(data_cfg: Any, workers: int, batch: int) -> str:
    """The plan's bound on one run's image-decoding memory: decoders x cap x bytes per pixel. Under
    data.decode=device the training process decodes each (per-rank) batch at once: `batch` images, not one."""
    cap = max_pixels(data_cfg)
    if str(data_cfg.get("decode", "workers")) == "device":
        decoders, who = batch, f"a batch of {batch} (data.decode=device: decoded together, on the device)"
    else:
        decoders = max(1, workers)
        who = f"{workers} worker{'s' * (workers != 1)}" if workers else "1 (the training process)"
    total = decoders * cap * BYTES_PER_PIXEL
    return (f"decoding memory per run: at most {who} x data.max_pixels={cap:,} x {BYTES_PER_PIXEL} B = "
            f"{total / 2**30:.1f} GiB")


def build_image_data(
    data_cfg: Any, *, batch_size: int, seed: int, device: torch.device | str = "cpu",
    memory_format: torch.memory_format = torch.contiguous_format, world_size: int = 1, rank: int = 0,
    eval_batch_size: int = 100,
):
    spec = AugmentSpec.from_cfg(data_cfg)
    spec.check()
    splits = scan_data(data_cfg)
    workers = auto_workers(data_cfg.get("workers", "auto"))
    cap, bad = max_pixels(data_cfg), bad_images(data_cfg)
    normalizer = fit_image_normalizer(splits.train, spec, str(data_cfg.normalize), int(data_cfg.mean_samples),
                                      int(data_cfg.split_seed), workers, cap, bad)
    stream = FileStream(splits.train, spec, normalizer, batch_size=batch_size, seed=seed, device=device,
                        memory_format=memory_format, world_size=world_size, rank=rank, workers=workers,
                        decode=str(data_cfg.get("decode", "workers")), max_pixels=cap, bad_images=bad)
    eval_batch = max(1, min(eval_batch_size, int(data_cfg.get("eval_batch_size", eval_batch_size))))

    def evalset(ten_crop: bool) -> FileEvalSet:
        return FileEvalSet(splits.val, spec, normalizer, batch_size=max(1, eval_batch // (10 if ten_crop else 1)),
                           device=device, memory_format=memory_format, workers=workers, ten_crop=ten_crop,
                           max_pixels=cap)

    info = {"split": "val" if splits.val_source == "val/" else "holdout", "val_source": splits.val_source,
            "train_size": len(splits.train), "val_size": len(splits.val), "test_size": 0,
            "workers": workers, "max_pixels": cap,
            "images_checked": splits.checked.record() if splits.checked else None}
    return DataBundle(str(data_cfg.name), stream, {"val": evalset(False)}, len(splits.train),
                      len(splits.train.classes), normalizer, info, evalset(True))
