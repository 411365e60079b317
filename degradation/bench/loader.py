"""`degradation bench --data imagenet|imagefolder`: images/s of the tool's image loader beside torchvision's.

Both read the same training files with the same number of worker processes and the same batch size, in the same
run, in alternating rounds (each keeps its fastest: other processes' load only ever slows a round down):

- tool: the run's own FileStream (torchvision.io decoding in workers; resize to a drawn shorter side, random
  crop and flip per image; PCA lighting and mean subtraction batched in the main process), as training uses it;
- baseline: torchvision.datasets.ImageFolder + PIL decoding + transforms.v2 (RandomResize, RandomCrop,
  RandomHorizontalFlip, ToImage, ToDtype, Normalize) in a DataLoader. It does no lighting: a little less work.

The first batch of each round (worker start-up) is not timed. Nothing is asserted; the table is printed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from degradation.data.registry import FILE_BACKED, is_file_backed
from degradation.errors import UsageError


def _timed(batches: Iterator, count: int) -> float:
    """Images/s over `count` batches after a first, untimed one."""
    x, _ = next(batches)
    images, start = 0, time.perf_counter()
    for _ in range(count):
        x, _ = next(batches)
        images += x.shape[0]
    return images / (time.perf_counter() - start)


def _baseline(root: str, spec, batch: int, workers: int) -> Iterator:
    from torchvision import datasets
    from torchvision.transforms import v2

    transform = v2.Compose([
        v2.RandomResize(spec.scale_min, spec.scale_max + 1, antialias=True), v2.RandomCrop(spec.crop),
        v2.RandomHorizontalFlip(), v2.ToImage(), v2.ToDtype(torch.float32, scale=True),
        v2.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    folder = datasets.ImageFolder(root, transform=transform)  # PIL loader, .convert("RGB")
    sampler = torch.utils.data.RandomSampler(folder, replacement=True, num_samples=10**9)
    loader = torch.utils.data.DataLoader(folder, batch_size=batch, sampler=sampler, num_workers=workers,
                                         prefetch_factor=2 if workers else None)
    return iter(loader)


def run_loader_bench(data: str, iters: int, rounds: int, overrides: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Print and return rows: loader, workers, batch, images/s, ratio to the baseline."""
    # deferred: the image-folder modules load torchvision; the CLI imports this module only for --data
    from degradation.conf import compose
    from degradation.data.filestream import FileStream, auto_workers
    from degradation.data.folders import train_folder
    from degradation.data.imageaug import AugmentSpec
    from degradation.data.imagedata import scan_data
    from degradation.data.normalize import Normalizer

    if not is_file_backed(data):
        raise UsageError(f"--data {data}: the loader bench reads image folders; choose {' or '.join(FILE_BACKED)}")
    cfg = compose([f"data={data}", *overrides])
    spec = AugmentSpec.from_cfg(cfg.data)
    spec.check()
    splits = scan_data(cfg.data)
    workers = auto_workers(cfg.data.workers)
    batch = int(cfg.schedule.batch_size)
    normalizer = Normalizer("channel", torch.full((3, spec.crop, spec.crop), 0.45), torch.full((3,), 4.0))
    best = {"tool": 0.0, "baseline": 0.0}
    for _ in range(rounds):
        stream = FileStream(splits.train, spec, normalizer, batch_size=batch, seed=0, workers=workers)
        best["tool"] = max(best["tool"], _timed(stream, iters))
        stream.close()
        baseline = _baseline(str(train_folder(cfg.data.root)), spec, batch, workers)
        best["baseline"] = max(best["baseline"], _timed(baseline, iters))
        del baseline
    rows = [{"loader": name, "workers": workers, "batch": batch, "crop": spec.crop, "images_per_s": rate,
             "vs_baseline": rate / best["baseline"]} for name, rate in best.items()]
    print(f"image loader, {len(splits.train):,} training images in {cfg.data.root}; {iters} batches per round, "
          f"best of {rounds} rounds; decode + augment on the CPU")
    print(f"{'loader':<40} {'workers':>7} {'batch':>6} {'crop':>5} {'images/s':>10} {'vs baseline':>12}")
    names = {"tool": "degradation FileStream (torchvision.io)", "baseline": "torchvision ImageFolder + PIL"}
    for row in rows:
        print(f"{names[str(row['loader'])]:<40} {row['workers']:>7} {row['batch']:>6} {row['crop']:>5} "
              f"{row['images_per_s']:>10.1f} {row['vs_baseline']:>11.2f}x")
    return rows
