"""The finished runs of a results folder and their trained networks: where every analysis that reads final
checkpoints (responses, lesions, the notebook API) starts, so they agree on which runs count and how a
checkpoint becomes a network."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import torch
from omegaconf import OmegaConf
from torch import nn

from degradation.errors import UsageError
from degradation.models import build_model
from degradation.store.results import read_runs
from degradation.store.runs import CHECKPOINT, CONFIG_FILE
from degradation.store.schema import RUN_IDENTITY, RunStatus

IDS = tuple(RUN_IDENTITY)


def strip_prefix(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """The checkpoint's weights keyed as `model` names them, whatever wrapper prefix they carry.

    Lightning stores `model.<name>`, torch.compile adds `_orig_mod.`; the prefix is found by matching the
    model's own first key, so any wrapper works and other entries in the state dict are ignored.
    """
    wanted = list(model.state_dict())
    if not wanted or all(k in state for k in wanted):
        return {k: state[k] for k in wanted if k in state}
    first = wanted[0]
    prefixes = sorted({k[: -len(first)] for k in state if k.endswith(first) and k[: -len(first)].endswith(".")},
                      key=len)
    for prefix in prefixes:
        if all(prefix + k in state for k in wanted):
            return {k: state[prefix + k] for k in wanted}
    raise KeyError(f"no prefix of the checkpoint's keys matches the network's {len(wanted)} weights "
                   f"(first wanted: {first!r}; checkpoint has e.g. {next(iter(state), None)!r})")


def load_network(run_dir: Path) -> tuple[nn.Module, Any]:
    """(network with the run's final weights in eval mode, the run's config)."""
    cfg = OmegaConf.load(run_dir / CONFIG_FILE)
    model = build_model(cfg.model)
    checkpoint = torch.load(run_dir / CHECKPOINT, map_location="cpu", weights_only=True)
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else checkpoint
    model.load_state_dict(strip_prefix(state, model), strict=True)
    return model.eval(), cfg


def evaluation_set(eval_sets: dict[str, Any]) -> Any:
    """The split a trained network is measured on (Figure 7's responses, lesions): its run's evaluated split, the
    test set, or the val split of data that has none (an image folder on the ImageNet recipe)."""
    return eval_sets["test"] if "test" in eval_sets else eval_sets["val"]


def finished_runs(results_dir: Path) -> pd.DataFrame:
    """Run folders whose run.json says done (read now, so this works before any collect)."""
    runs = read_runs(results_dir, quiet=True)
    return runs[runs["status"] == RunStatus.DONE].reset_index(drop=True)


def runs_to_measure(results_dir: Path, what: str) -> pd.DataFrame:
    """The finished runs, or a UsageError saying why there are none; `what` completes "... need a final
    checkpoint" in that message (e.g. "responses", "lesions")."""
    if not results_dir.is_dir():
        raise UsageError(f"results folder {results_dir} does not exist; run `degradation sweep` first")
    done = finished_runs(results_dir)
    if done.empty:
        raise UsageError(f"no finished runs under {results_dir / 'runs'}; {what} need a final checkpoint")
    return done


def run_ids(run: pd.Series) -> dict:
    """A run's identity columns (RUN_IDENTITY) as plain Python values, for the rows measured from it."""
    return {k: (int(run[k]) if k in ("depth", "seed") else str(run[k])) for k in IDS}
