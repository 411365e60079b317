"""Lesion study (Veit et al. 2016, "Residual networks behave like ensembles of relatively shallow networks").

From each finished run's final checkpoint, the test error (whole test set, eval mode, as in training's
evaluation) of the network with blocks removed:
- single: each block removed on its own. Residual blocks lose their branch and keep the shortcut (and the
  block's last ReLU on a post-activation net); a plain block becomes the identity where its input and output
  shapes agree, and is skipped, with the reason in the row, where they do not (the first block of a stage);
- the test set: whole, unless `images` caps it at its first N images (a coarser, cheaper lesion; the
  demo's), recorded per row;
- random: k blocks removed at once (k = 1..max_k, default n = blocks per stage), `draws` draws each, chosen
  from the removable blocks by a generator seeded with (run seed, k, draw): the same rows on every rerun.
Rows go to results/lesion.parquet, written after each run: a rerun skips runs already there (like
`degradation responses`), so a kill loses at most the run being measured.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch import nn

from degradation.analysis.trained import evaluation_set, load_network, run_ids, runs_to_measure
from degradation.compute.machine import device_kind
from degradation.data import build_data
from degradation.errors import UsageError, first_line
from degradation.store.io import write_atomic
from degradation.store.schema import LESION_COLUMNS, LESION_SCHEMA, LESION_TABLE


class Skip(nn.Module):
    """A residual block with its branch removed: forward is the block's own `skip` (shortcut only)."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block: Any = block  # a residual block: its skip(x) is the shortcut alone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block.skip(x)


def blocks(model: nn.Module) -> list[tuple[str, nn.Sequential, int, nn.Module]]:
    """(name, stage, position, block) of every block, in network order."""
    found = []
    for stage_name, stage in model.named_children():
        if stage_name.startswith(("stage", "layer")) and isinstance(stage, nn.Sequential):
            found += [(f"{stage_name}.{i}", stage, i, b) for i, b in enumerate(stage)]
    return found


def replacement(block: nn.Module) -> tuple[nn.Module | None, str]:
    """(what stands in for the removed block, "") or (None, why it cannot be removed)."""
    if hasattr(block, "skip"):
        return Skip(block), ""
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    if not convs or (convs[0].stride == (1, 1) and convs[0].in_channels == convs[-1].out_channels):
        return nn.Identity(), ""
    return None, "plain block changes the shape (stride or channels): no identity can replace it"


@contextmanager
def removed(chosen: list[tuple[str, nn.Sequential, int, nn.Module]]) -> Iterator[None]:
    """The network with the chosen blocks replaced; every block put back afterwards, whatever happens."""
    try:
        for _, stage, i, block in chosen:
            stage[i] = replacement(block)[0] or block  # the chosen are removable: None never comes here
        yield
    finally:
        for _, stage, i, block in chosen:
            stage[i] = block


@torch.no_grad()
def test_error(model: nn.Module, batches, device: str, limit: int | None = None) -> tuple[float, int]:
    """(error, images) over the test batches in order, the first `limit` images when given."""
    wrong, count = 0, 0
    for x, y in batches:
        if limit is not None:
            x, y = x[: limit - count], y[: limit - count]
        wrong += int((model(x.to(device)).argmax(1) != y.to(device)).sum())
        count += int(y.shape[0])
        if limit is not None and count >= limit:
            break
    return wrong / max(count, 1), count


def run_lesions(run_dir: Path, ids: dict, device: str, draws: int, max_k: int | None,
                images: int | None = None) -> pd.DataFrame:
    """Every lesion of one finished run, one line per error on stderr."""
    model, cfg = load_network(run_dir)
    model = model.to(device).eval()
    bundle = build_data(cfg.data, batch_size=int(cfg.schedule.batch_size), seed=int(cfg.seed), device=device)
    test = evaluation_set(bundle.eval_sets)
    every = blocks(model)
    if not every:
        raise UsageError(f"{type(model).__name__} has no stages of blocks to remove")
    if cfg.model.get("_target_") is not None and not any(hasattr(b[3], "skip") for b in every):
        raise UsageError(f"{cfg.model.arch}: no residual blocks declared (a block with a skip(x) method, the "
                         "shortcut alone, in a stage*/layer* nn.Sequential); the lesion study skips it")
    removable = [b for b in every if replacement(b[3])[0] is not None]
    rows = []

    def row(kind: str, k: int, draw: int, chosen: list, index: int, skipped: str = "") -> None:
        error, count = float("nan"), 0
        if not skipped:
            with removed(chosen):
                error, count = test_error(model, test, device, images)
        names = " ".join(b[0] for b in chosen)
        rows.append({**ids, "kind": kind, "k": k, "draw": draw, "removed": names, "block_index": index,
                     "test_error": error, "images": count,
                     "skipped": skipped})
        shown = skipped if skipped else f"{100 * error:.2f}%"
        print(f"lesion {ids['run_id']}: {kind} {names or '(intact)'}: {shown}", file=sys.stderr, flush=True)

    row("none", 0, 0, [], 0)
    for index, b in enumerate(every, start=1):
        why = replacement(b[3])[1]
        row("single", 1, 0, [b], index, why)
    top = min(len(removable), max_k if max_k is not None else len(every) // 3)
    for k in range(1, top + 1):
        for draw in range(draws):
            rng = random.Random(f"{ids['seed']}-{k}-{draw}")  # str seeds hash stably (sha512)
            row("random", k, draw, sorted(rng.sample(removable, k), key=every.index), 0)
    return pd.DataFrame(rows, columns=list(LESION_COLUMNS))


def _write(frame: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(frame[list(LESION_COLUMNS)].reset_index(drop=True), schema=LESION_SCHEMA,
                                 preserve_index=False)
    write_atomic(path, lambda tmp: pq.write_table(table, tmp))


def load_lesion(results_dir: str | Path) -> pd.DataFrame:
    path = Path(results_dir) / LESION_TABLE
    if not path.is_file():
        raise UsageError(f"{path} does not exist; run `degradation lesion --results {path.parent}` first")
    try:
        return pq.read_table(path).to_pandas()
    except Exception as exc:
        raise UsageError(f"{path} is not a readable lesion table ({first_line(exc)}); rerun with --recompute") from None


def compute_lesions(results_dir: str | Path, *, device: str = "auto", draws: int = 5, max_k: int | None = None,
                    recompute: bool = False, images: int | None = None) -> Path:
    """<results>/lesion.parquet for every finished run; runs already there are kept unless `recompute`."""
    results_dir = Path(results_dir)
    if device not in ("auto", "cpu", "cuda", "mps"):
        raise UsageError(f"--device {device!r}: choose auto, cpu, cuda or mps")
    if draws < 1:
        raise UsageError(f"--draws {draws} must be >= 1 (random draws per k)")
    if images is not None and images < 1:
        raise UsageError(f"--images {images} must be >= 1 (leave it out for the whole test set)")
    if max_k is not None and max_k < 0:
        raise UsageError(f"--max-k {max_k} must be >= 0 (0: single-block lesions only)")
    done = runs_to_measure(results_dir, "lesions")
    path = results_dir / LESION_TABLE
    old = None
    if path.is_file() and not recompute:
        try:
            old = load_lesion(results_dir)
        except UsageError as exc:
            print(f"warning: {exc}; recomputing every run", file=sys.stderr)
    frame = old[old["run_id"].isin(set(done["run_id"]))] if old is not None else pd.DataFrame(
        columns=list(LESION_COLUMNS))
    device, failures, measured = device_kind("auto") if device == "auto" else device, [], 0
    for _, run in done.iterrows():
        if run["run_id"] in set(frame["run_id"]):
            continue
        ids = run_ids(run)
        try:
            new = run_lesions(Path(run["run_dir"]), ids, device, draws, max_k, images)
        except (UsageError, OSError, KeyError, RuntimeError, ValueError) as exc:
            failures.append(f"{ids['run_id']}: {first_line(exc)}")
            print(f"warning: no lesions for {failures[-1]}", file=sys.stderr)
            continue
        frame = new if frame.empty else pd.concat([frame, new], ignore_index=True)
        _write(frame, path)  # after each run: a kill loses at most the run being measured
        measured += 1
    if frame.empty:
        raise UsageError(f"no lesions could be measured ({failures[0] if failures else 'no runs'})")
    if not measured and not path.is_file():
        _write(frame, path)
    return path
