"""Which training images train and which validate: `full` (all of them) or `holdout` (a fixed random val set).

The holdout split is the one the paper used to choose its 64k-iteration schedule (45k / 5k); it depends only
on the number of images, `val_size` and `split_seed`, never on the run's seed, so every run of a sweep sees
the same validation images.
"""

from __future__ import annotations

import torch

from degradation.errors import UsageError

SPLITS = ("full", "holdout")


def split_indices(num_images: int, split: str, val_size: int, split_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, val indices), each sorted int64; val is empty for `full`. Disjoint, together complete."""
    if split not in SPLITS:
        raise UsageError(f"data.split={split!r}; choose full or holdout")
    everything = torch.arange(num_images, dtype=torch.int64)
    if split == "full":
        return everything, everything[:0]
    if not 0 < val_size < num_images:
        raise UsageError(
            f"data.val_size={val_size} must be between 1 and {num_images - 1} "
            f"(the training set has {num_images} images)"
        )
    order = torch.randperm(num_images, generator=torch.Generator().manual_seed(int(split_seed)))
    val, train = order[:val_size], order[val_size:]
    return train.sort().values, val.sort().values
