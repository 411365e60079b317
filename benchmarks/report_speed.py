"""How long `degradation report` takes for a study of 100 runs (issue 30: at most 10 s on this machine).

The study is hand-made in the shape of the paper's: plain and ResNet nets of 20, 32, 44, 56 and 110 layers, ten
seeds each, 64,000 iterations logged every 100 (tests/_figures_helpers.py writes the curves), and gradient-flow
statistics for every run every 1,000 iterations. Printed, each as wall and CPU seconds (CPU time is what other
load on the machine cannot inflate much; the load average is printed first):

- the whole report: `degradation report` on freshly collected tables (figures, tables and summary drawn, then
  the page; the figures as PNG, the page's format);
- the page alone: `report` again, the figures already drawn (`plot` then `report`);
- `plot` alone: every figure as PNG and PDF, the tables and the summary.

Nothing is asserted. To compare two revisions under the same load, run it once per checkout; it names the
`degradation` it timed:

    python benchmarks/report_speed.py [--runs-per-net 10]
    PYTHONPATH=<other checkout> python benchmarks/report_speed.py
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _figures_helpers import make_results  # noqa: E402  (the tests' hand-made results, in the paper's shape)

import degradation  # noqa: E402
from degradation.figures import render_all  # noqa: E402
from degradation.report.page import write_report  # noqa: E402
from degradation.store.results import _write_table  # noqa: E402
from degradation.store.schema import LAYER_COLUMNS, LAYERS_SCHEMA  # noqa: E402

DEPTHS = (20, 32, 44, 56, 110)
ITERS, LOG_EVERY, LAYER_EVERY = 64_000, 100, 1_000


def specs(seeds: int) -> list[dict]:
    out = []
    for i, depth in enumerate(DEPTHS):
        for seed in range(seeds):
            common = {"depth": depth, "seed": seed, "total": ITERS, "log_every": LOG_EVERY, "eval_every": 400,
                      "dataset": "cifar10", "preset": "paper"}
            spread = 0.001 * seed
            out.append({**common, "arch": "plain", "train": 0.05 + 0.01 * i + spread, "test": 0.09 + 0.01 * i})
            out.append({**common, "arch": "resnet", "train": 0.05 - 0.008 * i + spread, "test": 0.088 - 0.005 * i})
    return out


def layers(runs: pd.DataFrame) -> pd.DataFrame:
    """Gradient norm and update ratio of every conv and the fc, every LAYER_EVERY iterations, for every run."""
    frames = []
    for run in runs.itertuples(index=False):
        count = run.depth  # depth-1 convs and the fc
        steps = range(LAYER_EVERY, ITERS + 1, LAYER_EVERY)
        index = pd.MultiIndex.from_product([steps, range(1, count + 1), ("grad_norm", "update_ratio")],
                                           names=["step", "layer_index", "metric"]).to_frame(index=False)
        index["value"] = [1e-3 * (1 + (i % 7)) for i in range(len(index))]
        index["layer"] = "layer" + index["layer_index"].astype(str)
        index["stage"] = "stage1"
        for name in ("run_id", "arch", "depth", "shortcut", "dataset", "preset", "seed"):
            index[name] = getattr(run, name)
        frames.append(index[list(LAYER_COLUMNS)])
    return pd.concat(frames, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-per-net", type=int, default=10, help="seeds of each of the 10 networks")
    args = parser.parse_args()
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"{os.cpu_count()} CPUs, load average {load} (1, 5, 15 min); degradation from "
          f"{Path(degradation.__file__).parent}")
    with tempfile.TemporaryDirectory() as tmp:
        results = make_results(Path(tmp) / "study", specs(args.runs_per_net))
        runs = pd.read_parquet(results / "runs.parquet")
        _write_table(results / "layers.parquet", layers(runs), LAYERS_SCHEMA)
        curves = len(pd.read_parquet(results / "curves.parquet"))
        print(f"study: {len(runs)} runs, {curves:,} curve rows, {ITERS:,} iterations each")
        steps = (("whole report (figures drawn first)", lambda: write_report(results)[-1]),
                 ("page alone (figures already drawn)", lambda: write_report(results)[-1]),
                 ("plot alone (PNG and PDF)", lambda: render_all(results)[0].parent))
        for what, step in steps:
            wall, cpu = time.perf_counter(), time.process_time()
            written = step()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            size = f"; page {written.stat().st_size / 1e6:.2f} MB" if written.is_file() else ""
            print(f"{what}: {wall:.1f} s wall, {cpu:.1f} s CPU{size}", flush=True)

if __name__ == "__main__":
    main()
