"""Hand-made results folders for the figures/table/summary tests: curves.parquet and runs.parquet per schema.

Curves have the paper's shape (fast fall, then steps down at 50% and 75% of the run) ending exactly at the
requested final errors, so tests can compare what is drawn and tabulated with known numbers.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from degradation.store.schema import CURVES_SCHEMA, RUN_COLUMNS, RUNS_SCHEMA

PARAMS = {8: 78042, 20: 269722, 32: 464154, 44: 658586, 56: 853018, 110: 1727962, 1202: 19421274}


def run_id(arch: str, depth: int, seed: int, dataset: str = "synthetic", preset: str = "demo") -> str:
    shortcut = "" if arch == "plain" else "-A"
    return f"{arch}-{depth}{shortcut}-{dataset}-{preset}-s{seed}-0000abcd"


def shape(step: int, total: int, final: float) -> float:
    """0.9 at the start, falling to about 2*final, then final*1.3 after 50%, final after 75%."""
    base = final * 2 + (0.9 - final * 2) * math.exp(-6 * step / total)
    if step > 0.75 * total:
        return final
    if step > 0.5 * total:
        return final * 1.3
    return base


def curve_rows(spec: dict) -> list[dict]:
    total, stop = spec.get("total", 240), spec.get("stop", spec.get("total", 240))
    log_every, eval_every = spec.get("log_every", 10), spec.get("eval_every", 40)
    evaluated = spec.get("eval_split", "test")  # ImageNet-recipe runs evaluate on their val split
    ids = {k: spec[k] for k in ("run_id", "arch", "depth", "shortcut", "dataset", "preset", "seed")}
    rows = []
    for step in range(log_every, stop + 1, log_every):
        value = shape(step, total, spec["train"])
        rows.append({**ids, "step": step, "epoch": step * 128 / 10000, "split": "train", "metric": "error",
                     "value": value, "wall_s": step * 0.1})
        rows.append({**ids, "step": step, "epoch": step * 128 / 10000, "split": "train", "metric": "loss",
                     "value": 3 * value, "wall_s": step * 0.1})
        if step % eval_every == 0:
            test = shape(step, total, spec["test"])
            if spec.get("dip") is not None and step == total // 2:
                test = spec["dip"]  # a best test point below the final one
            rows.append({**ids, "step": step, "epoch": step * 128 / 10000, "split": evaluated, "metric": "error",
                         "value": test, "wall_s": step * 0.1})
    return rows


def full_spec(spec: dict) -> dict:
    spec = {"seed": 0, "dataset": "synthetic", "preset": "demo", "status": "done", "total": 240, **spec}
    spec.setdefault("shortcut", "none" if spec["arch"] == "plain" else "A")
    spec.setdefault("run_id", run_id(spec["arch"], spec["depth"], spec["seed"], spec["dataset"], spec["preset"]))
    return spec


def run_row(spec: dict, rows: list[dict]) -> dict:
    train = [r for r in rows if r["split"] == "train" and r["metric"] == "error"]
    test = [r for r in rows if r["split"] == spec.get("eval_split", "test")]
    best = min(test, key=lambda r: r["value"]) if test else None
    row = {name: None for name in RUN_COLUMNS}
    row.update({k: spec[k] for k in ("run_id", "arch", "depth", "shortcut", "dataset", "preset", "seed", "status")})
    row.update(settings_of(spec))
    row.update(iteration=spec.get("stop", spec["total"]), total_iters=spec["total"], params=PARAMS.get(spec["depth"]),
               final_train_error=train[-1]["value"] if train else None,
               final_test_error=test[-1]["value"] if test else None,
               best_test_error=best["value"] if best else None, best_test_step=best["step"] if best else None,
               run_dir=f"runs/{spec['run_id']}", reason="nan loss" if spec["status"] == "failed" else None,
               warmup=spec.get("warmup", "none"),
               tencrop_top1_error=spec.get("tencrop"), tencrop_top5_error=spec.get("tencrop5"))
    return row


def settings_of(spec: dict) -> dict:
    """runs.parquet's variant and settings as a run folder would give them: the seed left out; spec["settings"]
    (dotted keys) adds the settings a variant differs in."""
    settings = {"model.arch": spec["arch"], "model.depth": spec["depth"], "model.shortcut": spec["shortcut"],
                "data.name": spec["dataset"], "schedule.name": spec["preset"], "schedule.batch_size": 128,
                "schedule.log_every": spec.get("log_every", 10), "schedule.max_iters": spec["total"],
                **spec.get("settings", {})}
    text = json.dumps(settings, sort_keys=True)
    return {"variant": hashlib.sha256(text.encode()).hexdigest()[:8], "settings": text}


def make_results(folder: Path, specs: list[dict]) -> Path:
    """Write curves.parquet and runs.parquet for the given runs; each spec: arch, depth, train, test (+ optional
    seed, status, total, stop, dip, dataset, preset, shortcut, settings, warmup, eval_split, tencrop, tencrop5)."""
    folder.mkdir(parents=True, exist_ok=True)
    curves, runs = [], []
    for spec in map(full_spec, specs):
        rows = curve_rows(spec)
        curves += rows
        runs.append(run_row(spec, rows))
    curve_frame = pd.DataFrame(curves, columns=CURVES_SCHEMA.names)
    pq.write_table(pa.Table.from_pandas(curve_frame, schema=CURVES_SCHEMA, preserve_index=False),
                   folder / "curves.parquet")
    pq.write_table(pa.Table.from_pandas(pd.DataFrame(runs, columns=list(RUN_COLUMNS)), schema=RUNS_SCHEMA,
                                        preserve_index=False), folder / "runs.parquet")
    return folder


def paper_like() -> list[dict]:
    """Plain 20/32/44/56 degrade, ResNet 20..110 improve, ResNet-110 with three seeds; no ResNet-1202."""
    specs = [{"arch": "plain", "depth": d, "train": t, "test": e}
             for d, t, e in ((20, 0.06, 0.095), (32, 0.07, 0.10), (44, 0.085, 0.12), (56, 0.10, 0.135))]
    specs += [{"arch": "resnet", "depth": d, "train": t, "test": e}
              for d, t, e in ((20, 0.05, 0.0875), (32, 0.035, 0.075), (44, 0.025, 0.0717), (56, 0.02, 0.0697))]
    specs += [{"arch": "resnet", "depth": 110, "seed": s, "train": 0.01 + s * 0.002, "test": 0.064 + s * 0.002}
              for s in range(3)]
    return specs
