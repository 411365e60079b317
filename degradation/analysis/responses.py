"""Figure 7's data: the std of every 3x3 layer's response, from each finished run's final checkpoint.

Which images and which std (the paper says neither): the whole TEST set (a run without one: its val split),
unaugmented and normalised as in training, through the network in eval mode (BN uses its running statistics);
a layer's response is the output of the BN right after its 3x3 conv, before the ReLU and before the shortcut
addition; its std is taken over all elements (images, channels, pixels) together, Bessel-corrected, accumulated
in float64.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch import nn

from degradation.analysis.load import load_responses
from degradation.analysis.trained import evaluation_set, load_network, run_ids, runs_to_measure
from degradation.compute.machine import device_kind
from degradation.data import build_data
from degradation.errors import UsageError, first_line
from degradation.models.response_hooks import ResponseRecorder, response_layers
from degradation.store.io import write_atomic
from degradation.store.schema import RESPONSE_COLUMNS, RESPONSES_TABLE, arrow_schema

SCHEMA = arrow_schema(RESPONSE_COLUMNS)


@torch.no_grad()
def layer_stds(model: nn.Module, batches, device: str = "cpu") -> list[tuple[str, float]]:
    """(layer name, std) in network order over every batch of `batches` (iterable of (x, y))."""
    model = model.to(device).eval()
    with ResponseRecorder(model) as recorder:
        for x, _ in batches:
            model(x.to(device))
    return list(recorder.std().items())


def run_responses(run_dir: Path, ids: dict, device: str = "cpu") -> pd.DataFrame:
    """Rows of responses.parquet for one finished run: its test set through its final checkpoint."""
    model, cfg = load_network(run_dir)
    if not response_layers(model):
        raise UsageError(f"{cfg.model.arch}: no 3x3 layers found (a BN right after a 3x3 conv) or declared (the "
                         "network's `response_layers` attribute); Figure 7 skips it")
    bundle = build_data(cfg.data, batch_size=int(cfg.schedule.batch_size), seed=int(cfg.seed), device=device)
    stds = layer_stds(model, evaluation_set(bundle.eval_sets), device)
    rows = [{**ids, "layer_index": i, "layer": name, "std": std} for i, (name, std) in enumerate(stds, start=1)]
    return pd.DataFrame(rows, columns=list(RESPONSE_COLUMNS))


def write_responses(frame: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(frame[list(RESPONSE_COLUMNS)].reset_index(drop=True), schema=SCHEMA,
                                 preserve_index=False)
    write_atomic(path, lambda tmp: pq.write_table(table, tmp))


def _old_rows(results_dir: Path) -> pd.DataFrame | None:
    """The rows already computed; a damaged table is dropped (and rebuilt) with a warning."""
    try:
        return load_responses(results_dir)
    except UsageError as exc:
        print(f"warning: {exc}; recomputing every run", file=sys.stderr)
        return None


def compute_responses(results_dir: str | Path, *, device: str = "auto", recompute: bool = False) -> Path:
    """<results>/responses.parquet for every finished run; rows already there are kept unless `recompute`.

    A run whose checkpoint or data cannot be loaded is skipped with a line on stderr naming it; when no run
    at all yields responses, a UsageError says why.
    """
    results_dir = Path(results_dir)
    done = runs_to_measure(results_dir, "responses")
    path = results_dir / RESPONSES_TABLE
    old = None if recompute else _old_rows(results_dir)
    keep = old[old["run_id"].isin(set(done["run_id"]))] if old is not None else None
    have = set(keep["run_id"]) if keep is not None else set()
    frames, failures = ([keep] if keep is not None and not keep.empty else []), []
    device = device_kind("auto") if device == "auto" else device
    for _, run in done.iterrows():
        if run["run_id"] in have:
            continue
        ids = run_ids(run)
        print(f"responses: {ids['run_id']} ...", file=sys.stderr, flush=True)
        try:
            frames.append(run_responses(Path(run["run_dir"]), ids, device))
        except (UsageError, OSError, KeyError, RuntimeError, ValueError) as exc:
            text = first_line(exc)
            failures.append(f"{ids['run_id']}: {text}")
            print(f"warning: no responses for {ids['run_id']}: {text}", file=sys.stderr)
    if not frames:
        raise UsageError(f"no responses could be computed ({failures[0] if failures else 'no runs'})")
    frame = pd.concat(frames, ignore_index=True).sort_values(["run_id", "layer_index"], kind="stable")
    write_responses(frame, path)
    return path
