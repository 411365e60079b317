"""The CPU preset on real CIFAR-10 photographs, through the image-folder path: the paper's shape, and the wall time.

    .venv/bin/python benchmarks/cpu_real.py [--results DIR] [--jobs 2] [-- OVERRIDE ...]

The shared real subset (../shared/data/real-cifar10-subset.npz: 4,660 training and 846 test images, the exact bytes
of the official batches' leading rows) is written out as train/<class>/*.png and val/<class>/*.png, and
`make cpu-real IMAGES=<that folder>` runs on it as a user would: `degradation sweep --data imagefolder --preset cpu
--depths 20,56 --archs plain,resnet` (the folder's 32x32 images get CIFAR's recipe), then `plot` and `report`.
Printed: the wall time of the sweep and of the whole target, each net's final training and test error, and the
paper's shape points:

- plain-56's training error above plain-20's over the second half of the run (the windows where it is, and the
  mean gap);
- ResNet-56 at or below ResNet-20 at the end (final training error, the last window);
- the verdict line of summary.md (its noise rule decides "shown", "not shown" or "inconclusive").

Nothing is asserted. Where the file is absent it says so in one line and exits 0. A rerun with the same --results
resumes (or reuses) the runs, so the wall time printed is that of the work left.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real-cifar10-subset.npz"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def write_folder(npz: Path, out: Path) -> tuple[int, int]:
    """The arrays as PNG files, class per folder (official class names); (train, val) counts."""
    from PIL import Image

    real = np.load(npz)
    counts = []
    for split, (x, y) in {"train": (real["x_train"], real["y_train"]), "val": (real["x_val"], real["y_val"])}.items():
        for name in CLASSES:
            (out / split / name).mkdir(parents=True, exist_ok=True)
        for i, (image, label) in enumerate(zip(x, y, strict=True)):
            Image.fromarray(image).save(out / split / CLASSES[int(label)] / f"{i:05d}.png")
        counts.append(len(y))
    return counts[0], counts[1]


def shape_points(results: Path) -> list[str]:
    """The paper's shape on these curves, as lines to print."""
    curves = pd.read_parquet(results / "curves.parquet")
    runs = pd.read_parquet(results / "runs.parquet").set_index("run_id")
    train = curves[(curves["metric"] == "error") & (curves["split"] == "train")]
    net = {f"{runs.at[r, 'arch']}-{runs.at[r, 'depth']}": group.set_index("step")["value"]
           for r, group in train.groupby("run_id")}
    lines = []
    for name in ("plain-20", "plain-56", "resnet-20", "resnet-56"):
        rid = next((r for r in runs.index if f"{runs.at[r, 'arch']}-{runs.at[r, 'depth']}" == name), None)
        if rid is None:
            lines.append(f"{name}: not run")
            continue
        row = runs.loc[rid]
        lines.append(f"{name}: final training error {100 * row['final_train_error']:.2f}%, test error "
                     f"{100 * row['final_test_error']:.2f}% ({row['status']}, {int(row['iteration'])} iterations, "
                     f"{row['wall_s'] / 60:.1f} min)")
    if {"plain-20", "plain-56"} <= net.keys():
        a, b = net["plain-20"], net["plain-56"]
        steps = a.index.intersection(b.index)
        half = steps[steps > steps.max() / 2]
        above = int((b[half] > a[half]).sum())
        lines.append(f"plain-56 above plain-20 (training error) in {above} of {len(half)} windows of the second half; "
                     f"mean gap {100 * (b[half] - a[half]).mean():+.2f} points")
    if {"resnet-20", "resnet-56"} <= net.keys():
        end20, end56 = net["resnet-20"].iloc[-1], net["resnet-56"].iloc[-1]
        lines.append(f"ResNet-56 {'at or below' if end56 <= end20 else 'ABOVE'} ResNet-20 at the end (last window's "
                     f"training error): {100 * end56:.2f}% vs {100 * end20:.2f}%")
    summary = results / "summary.md"
    if summary.is_file():
        verdict = [line for line in summary.read_text().splitlines() if "verdict" in line.lower()]
        lines += [f"summary.md: {line.strip()}" for line in verdict[:3]]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=None, help="results folder (default: a temporary one)")
    parser.add_argument("--jobs", default="", help="runs at once (default: the target's, auto)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run, after --")
    args = parser.parse_args()
    if not REAL.is_file():
        print(f"skipped: the real CIFAR-10 subset is not at {REAL} (only the workplace's machines have it)")
        return 0
    with tempfile.TemporaryDirectory(prefix="cpu-real-") as scratch:
        folder = Path(scratch) / "real-cifar10"
        n_train, n_val = write_folder(REAL, folder)
        results = args.results or Path(scratch) / "results"
        print(f"real CIFAR-10 subset: {n_train:,} training and {n_val:,} test images as PNGs in {folder}")
        command = ["make", "--no-print-directory", "cpu-real", f"IMAGES={folder}", f"CPU_RESULTS={results}"]
        if args.jobs:
            command.append(f"JOBS={args.jobs}")
        if args.overrides:
            command.append(f"CPU_ARGS={' '.join(args.overrides)}")
        print("$ " + " ".join(command), flush=True)
        start = time.perf_counter()
        code = subprocess.call(command, cwd=ROOT)
        wall = time.perf_counter() - start
        print(f"\nmake cpu-real: exit {code}, {wall / 60:.1f} min wall (sweep, plot and report)")
        if (results / "curves.parquet").is_file():
            for line in shape_points(results):
                print(line)
        return code


if __name__ == "__main__":
    sys.exit(main())
