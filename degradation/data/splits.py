"""Which training images train and which validate: `full` (all of them) or `holdout` (a fixed random val set); and
which part of the training images trains under data.train_subset (class-balanced, chosen by data.split_seed).

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


def _quotas(counts: list[int], size: int, order: list[int]) -> list[int]:
    """Images per class: as even as the classes' counts allow (a class with fewer than its share gives all it has,
    the rest share what it could not), the remainder one each to the classes first in `order`."""
    quota = [0] * len(counts)
    open_classes = sorted(range(len(counts)), key=lambda c: counts[c])
    left = size
    while open_classes and counts[open_classes[0]] <= left // len(open_classes):
        c = open_classes.pop(0)
        quota[c], left = counts[c], left - counts[c]
    if open_classes:
        share, extra = divmod(left, len(open_classes))
        ranked = sorted(open_classes, key=order.index)
        for i, c in enumerate(ranked):
            quota[c] = share + (1 if i < extra else 0)
    return quota


def balanced_subset(labels: torch.Tensor, size: int, seed: int, what: str) -> torch.Tensor:
    """Sorted indices of `size` of the images whose labels are `labels`, class-balanced (see _quotas) and chosen by
    `seed` (data.split_seed: the same subset for every run of a sweep, whatever its seed). `what` names the set in
    the one-line errors (a size over the set's, or under its number of classes)."""
    labels = torch.as_tensor(labels, dtype=torch.int64)
    classes = sorted(set(labels.tolist()))
    if size > len(labels):
        raise UsageError(f"data.train_subset={size} is larger than {what} ({len(labels):,} training images); "
                         f"choose at most {len(labels)}, or null for all of them")
    if size < len(classes):
        raise UsageError(f"data.train_subset={size} is fewer than the {len(classes)} classes of {what}; choose at "
                         f"least {len(classes)} (one image per class)")
    gen = torch.Generator().manual_seed(int(seed))
    members = [torch.nonzero(labels == c).flatten() for c in classes]
    order = torch.randperm(len(classes), generator=gen).tolist()
    quota = _quotas([len(m) for m in members], size, order)
    chosen = [m[torch.randperm(len(m), generator=gen)[:q]] for m, q in zip(members, quota, strict=True)]
    return torch.cat(chosen).sort().values
