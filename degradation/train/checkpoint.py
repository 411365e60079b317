"""checkpoints/last.ckpt: written through Lightning to a temporary name, then renamed into place.

A kill at any instant leaves the previous checkpoint or the new one. The file is an ordinary Lightning
checkpoint: `state_dict` (network weights under `model.`), `optimizer_states`, loop state, and the run's own
state under `degradation` (see TrainModule.on_save_checkpoint).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from degradation.errors import UsageError
from degradation.store.io import atomic_path


def save_checkpoint(trainer, path: Path) -> None:
    """Call on every rank (Lightning gathers state collectively); rank zero writes a temporary file (the run
    store's atomic write: fsync, rename; a full disk keeps the previous checkpoint) that the others never touch."""
    path = Path(path)
    if trainer.global_rank == 0:
        with atomic_path(path) as tmp:
            trainer.save_checkpoint(tmp)
    else:
        trainer.save_checkpoint(path)  # collective; Lightning writes on rank zero only
    trainer.strategy.barrier("degradation.save_checkpoint")


class UnreadableCheckpoint(UsageError):
    """A checkpoint torch cannot load (cut short, overwritten); `cause` names the error."""

    def __init__(self, path: Path, cause: str) -> None:
        super().__init__(f"checkpoint {path} cannot be read ({cause}); delete it to start the run over")
        self.cause = cause


def checkpoint_iteration(path: Path) -> int:
    """The iteration a checkpoint holds (0 when it has none of the run's state)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # unpickling errors come in many types
        raise UnreadableCheckpoint(path, type(exc).__name__) from None
    return int(state.get("degradation", {}).get("iteration", 0))


def set_aside(path: Path) -> Path:
    """Move a damaged checkpoint to last.ckpt.corrupt-<time> beside it: out of the way, but not thrown away."""
    aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(path, aside)
    return aside
