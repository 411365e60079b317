"""From the bench tables of benchmarks/gpu_check.sh: the time of each paper run and of the Figure 6 sweep.

    python benchmarks/gpu_projection.py WORK [OUT]

Reads WORK/*/bench.parquet (one per bench stage) and WORK/bench_share.parquet; writes OUT/bench_all.parquet
(all stages in one table, a `stage` column naming each). Per network it takes the fastest measured setting;
depths that were not benched (32, 44) are interpolated linearly in depth, since a CIFAR net's step time is a
fixed part plus a part per layer. The sweep's wall time is bounded below by its longest run (ResNet-1202) and
by the summed GPU time divided by the aggregate speed-up that sharing the GPU measured.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

FIGURE6 = [("plain", d) for d in (20, 32, 44, 56, 110)] + [("resnet", d) for d in (20, 32, 44, 56, 110, 1202)]
TARGETS_S = {("resnet", 20): 60, ("resnet", 110): 300}
SWEEP_TARGET_S = 3600


def load_stages(work: Path) -> pd.DataFrame:
    frames = []
    for path in sorted(work.glob("*/bench.parquet")):
        frame = pd.read_parquet(path)
        frames.append(frame.assign(stage=path.parent.name))
    if not frames:
        raise SystemExit(f"error: no */bench.parquet under {work}; run the bench stages first")
    return pd.concat(frames, ignore_index=True)


def run_seconds(bench: pd.DataFrame) -> dict[tuple[str, int], tuple[float, str]]:
    """(arch, depth) -> (fastest projected 64k-iteration seconds, the stage it came from); 32/44 interpolated."""
    best = bench.sort_values("projected_64k_s").groupby(["arch", "depth"], as_index=False).first()
    seconds = {(r.arch, int(r.depth)): (float(r.projected_64k_s), str(r.stage)) for r in best.itertuples()}
    for arch in ("plain", "resnet"):
        known = sorted((d, s) for (a, d), (s, _) in seconds.items() if a == arch and d <= 110)
        if len(known) < 2:
            continue
        depths, times = zip(*known, strict=True)
        for depth in (20, 32, 44, 56, 110):
            if (arch, depth) not in seconds:
                seconds[(arch, depth)] = (float(np.interp(depth, depths, times)), "interpolated")
    if ("plain", 110) not in seconds and ("resnet", 110) in seconds:
        seconds[("plain", 110)] = (seconds[("resnet", 110)][0], "as resnet-110")
    return seconds


def share_speedup(work: Path) -> tuple[int, float]:
    """(runs per GPU, aggregate speed-up) from bench_share.parquet; (1, 1.0) when it is missing."""
    path = work / "bench_share.parquet"
    if not path.is_file():
        return 1, 1.0
    share = pd.read_parquet(path)
    k = int(share["runs_per_device"].min())  # the most cautious network's choice, as the sweep takes it
    rows = share[share["runs"] == k]
    return k, float(rows["speedup"].min()) if len(rows) else 1.0


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[2].strip())
        return 2
    work = Path(argv[0])
    out = Path(argv[1]) if len(argv) > 1 else work
    bench = load_stages(work)
    out.mkdir(parents=True, exist_ok=True)
    bench.to_parquet(out / "bench_all.parquet", index=False)
    shown = bench[["stage", "arch", "depth", "precision", "step", "tool_images_per_s", "bare_images_per_s", "ratio",
                   "peak_memory_mb", "projected_64k_s"]]  # fmt: skip
    print(shown.round(2).to_string(index=False))

    seconds = run_seconds(bench)
    print("\n64k-iteration runs (fastest setting measured):")
    for key, (s, stage) in sorted(seconds.items()):
        target = TARGETS_S.get(key)
        verdict = "" if target is None else f"  target {target} s: {'met' if s <= target else 'NOT met'}"
        print(f"  {key[0]}-{key[1]}: {s / 60:6.1f} min ({stage}){verdict}")
    missing = [f"{a}-{d}" for a, d in FIGURE6 if (a, d) not in seconds]
    if missing:
        print(f"Figure 6 sweep: cannot project, no numbers for {', '.join(missing)}")
        return 0
    total = sum(seconds[key][0] for key in FIGURE6)
    runs, speedup = share_speedup(work)
    longest = max(seconds[key][0] for key in FIGURE6)
    wall = max(longest, total / speedup)
    print(f"Figure 6 sweep (11 runs): {total / 60:.1f} GPU-minutes one at a time; {runs} run(s) per GPU "
          f"(aggregate x{speedup:.2f}) -> at least {wall / 60:.1f} min wall (longest run {longest / 60:.1f} min); "
          f"target {SWEEP_TARGET_S // 60} min: {'met' if wall <= SWEEP_TARGET_S else 'NOT met'} "
          "(training steps only; evaluation adds about 3%)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
