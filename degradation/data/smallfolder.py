"""An image folder under the CIFAR recipe (data.recipe=cifar): decoded once into memory and trained as CIFAR-10 is.

The paper's CIFAR augmentation needs the images at one size and no resizing: 4 pixels of zero padding, a random
crop at the images' own size, a horizontal flip, the per-pixel training mean subtracted, and the plain image at
evaluation (no 10-crop). So the folder becomes the same uint8 arrays the official CIFAR batches do, and from there
one path (data/build.py) serves both. The folder's val/ (or its seeded per-class holdout) is the TEST set, as
CIFAR-10's test batch is: the curves get test errors, the figures are Figures 1 and 6.

Small images only: a 32x32 set of 50,000 is 150 MB held in memory. Mixed sizes are refused by the scan (naming a
file) unless data.resize=N asks for every image's shorter side resized to N and its centre N x N kept.
"""

from __future__ import annotations

from typing import Any

import torch

from degradation.data.decode import read_rgb
from degradation.data.folders import ImageList
from degradation.data.imageaug import resized_centre
from degradation.data.imagedata import max_pixels, scan_data
from degradation.errors import UsageError


def _decode_all(images: ImageList, cap: int, resize: int | None) -> torch.Tensor:
    """uint8 [N, 3, H, W] of every image, in the list's order (one size: the scan checked it, or resize made it)."""
    out: torch.Tensor | None = None
    for i, path in enumerate(images.paths):
        image = read_rgb(path, cap, resize)
        if resize:
            image = resized_centre(image, resize, resize)
        if out is None:
            out = torch.empty((len(images), *image.shape), dtype=torch.uint8)
        elif image.shape != out.shape[1:]:  # data.verify=none skipped the scan's size check
            raise UsageError(f"{path} is {image.shape[2]}x{image.shape[1]} px but the first image is "
                             f"{out.shape[3]}x{out.shape[2]}: data.recipe=cifar needs one size; give data.resize=N")
        out[i] = image
    assert out is not None  # folders.scan refuses a split without images
    return out


def load_folder_arrays(data_cfg: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The folder as CIFAR's arrays (train_x, train_y, test_x, test_y; uint8 NCHW, int64) with data.train_subset
    applied, and what the run records of it (where its test images come from, what the scan saw)."""
    splits = scan_data(data_cfg)
    resize = data_cfg.get("resize")
    cap = max_pixels(data_cfg)
    arrays = {
        "train_x": _decode_all(splits.train, cap, int(resize) if resize else None),
        "train_y": torch.tensor(splits.train.labels, dtype=torch.int64),
        "test_x": _decode_all(splits.val, cap, int(resize) if resize else None),
        "test_y": torch.tensor(splits.val.labels, dtype=torch.int64),
    }
    info = {"test_source": splits.val_source, "images_checked": splits.checked.record() if splits.checked else None}
    return arrays, info
