"""How far a sweep's estimate is from its wall time on this machine: plan a small grid, run it, print both.

    python benchmarks/estimate_check.py [--depths 8,20] [--iters 60] [--jobs 1] [--keep DIR]

The grid is the demo's shape at fewer iterations on the synthetic set (offline). The estimate is the plan's
(`sweep --dry-run` prints the same), from results/bench.parquet when it is in the grid's results folder, else
the short probe, scaled to each network by multiply-adds. A ratio within 2x either way is the target; a loaded
machine makes the measured time longer than the estimate (the probe keeps its fastest step).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from degradation.sweep.plan import build_plan
from degradation.sweep.report import format_duration
from degradation.sweep.request import SweepRequest

ROOT = Path(__file__).resolve().parent.parent
MAIN = "import sys; from degradation.cli import main; sys.exit(main(sys.argv[1:]))"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", default="8,20")
    parser.add_argument("--archs", default="plain,resnet")
    parser.add_argument("--iters", type=int, default=60)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--bench", type=Path, default=None, help="a bench.parquet to estimate from (else: probe)")
    parser.add_argument("--keep", type=Path, default=None, help="results folder to keep (default: a temp one)")
    args = parser.parse_args()

    results = args.keep or Path(tempfile.mkdtemp(prefix="estimate-check-")) / "results"
    results.mkdir(parents=True, exist_ok=True)
    if args.bench:
        shutil.copy2(args.bench, results / "bench.parquet")
    extra = [f"schedule.max_iters={args.iters}", f"schedule.milestones=[{args.iters // 2},{3 * args.iters // 4}]",
             "schedule.eval_every=30", "schedule.checkpoint_every=30", "trainer.accelerator=cpu"]
    flags = ["--data", "synthetic", "--preset", "demo", "--depths", args.depths, "--archs", args.archs,
             "--jobs", str(args.jobs), "--results", str(results)]
    request = SweepRequest.from_cli(depths=args.depths, archs=args.archs, seeds="0", shortcuts="A", data="synthetic",
                                    preset="demo", jobs=args.jobs, launcher="local", dry_run=True,
                                    results_dir=results, overrides=extra)
    began = time.perf_counter()
    plan = build_plan(request)
    planned_s = time.perf_counter() - began
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", MAIN, "sweep", *flags, "--", *extra], cwd=ROOT,
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        print(done.stdout[-2000:], done.stderr[-2000:])
        return 1
    print(f"grid: {args.archs} x depths {args.depths}, {args.iters} iterations at batch 128, jobs {args.jobs}")
    print(f"estimate basis: {plan.estimate_source} (planning took {planned_s:.1f} s)")
    for cell in plan.cells:
        print(f"  {cell.arch}-{cell.depth}: estimated {format_duration(plan.estimates[cell.run_id])}")
    ratio = wall / plan.total_s if plan.total_s else float("nan")
    print(f"estimated {plan.total_s:.0f} s, measured {wall:.0f} s wall (sweep incl. start-up and collect): "
          f"measured/estimated = {ratio:.2f}")
    if not args.keep:
        shutil.rmtree(results.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
