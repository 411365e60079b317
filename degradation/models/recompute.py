"""Activation checkpointing for the nets' stages, without changing what one training step does.

ResNet-1202 keeps ~4 activation maps per block for the backward pass; checkpointing stores only each segment's
input and recomputes the segment during backward. Stages are split into ~sqrt(blocks) segments, the classic
sqrt(n) memory / one extra forward trade.

Why not plain `checkpoint(stage_segment)`: recomputing a segment re-runs its BatchNorm layers in train mode,
which would update running_mean/running_var and num_batches_tracked a second time (changing the eval-mode net
and the training itself). Here the recomputation runs with each BN's three buffers swapped for scratch tensors
(`torch.empty_like`, no kernel launch), so the real buffers see exactly one update per step. Not switching
`track_running_stats` off instead: that makes F.batch_norm save 4 tensors instead of 6 for backward, and the
non-reentrant checkpoint matches recomputed tensors to the forward's by position. Train-mode BN normalises
with batch statistics and its backward never reads the running ones, so the scratch values are never used.

Safe under CUDA-graph capture and autocast: use_reentrant=False, preserve_rng_state=False (the nets have no
randomness, and reading the CUDA RNG state is illegal during capture), no host syncs (the default BN momentum
needs no `float(num_batches_tracked)`). Eval mode or grad disabled: the plain forward runs, so Figure 7's
ResponseRecorder (eval, no grad) sees each forward exactly once. Forward hooks DO fire again during a
recomputation in a training step; a hook that must not count twice can check `recomputing()`.
State-dict keys and parameters are unchanged: the stage's class is swapped, its modules stay in place.

    enable_activation_checkpointing(model)          # in place; returns model
    disable_activation_checkpointing(model)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import partial
from typing import TypeVar

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

M = TypeVar("M", bound=nn.Module)
BN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
_recomputing = 0  # nesting depth of recomputations in progress (the backward runs them one at a time)


def recomputing() -> bool:
    """True while a checkpointed segment is being recomputed for backward (e.g. for a hook that counts calls)."""
    return _recomputing > 0


def default_segments(blocks: int) -> int:
    """~sqrt(blocks): stored segment inputs and one recomputed segment then cost about the same."""
    return max(1, min(blocks, round(math.sqrt(blocks))))


def segment_bounds(blocks: int, segments: int) -> list[tuple[int, int]]:
    """[start, stop) of `segments` contiguous, near-equal runs of blocks (the longer ones first)."""
    segments = max(1, min(blocks, segments))
    size, extra = divmod(blocks, segments)
    bounds, start = [], 0
    for index in range(segments):
        stop = start + size + (index < extra)
        bounds.append((start, stop))
        start = stop
    return bounds


def stages(model: nn.Module) -> list[nn.Sequential]:
    """The nets' stage1, stage2, ... (CifarNet and ImageNetNet): sequences of blocks."""
    found = [m for name, m in model.named_children() if name.startswith("stage") and isinstance(m, nn.Sequential)]
    if not found:
        raise ValueError(f"{type(model).__name__} has no stage1, stage2, ... to checkpoint")
    return found


@contextmanager
def _scratch_bn_buffers(modules: list[nn.Module]) -> Iterator[None]:
    """Recompute with each BN's running stats and counter swapped for scratch tensors; put the real ones back."""
    global _recomputing
    norms = [m for block in modules for m in block.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(bn, name, getattr(bn, name)) for bn in norms for name in BN_BUFFERS if getattr(bn, name) is not None]
    for bn, name, buffer in saved:
        setattr(bn, name, torch.empty_like(buffer))
    _recomputing += 1
    try:
        yield
    finally:  # also on checkpoint's early stop, which ends a recomputation with an exception
        _recomputing -= 1
        for bn, name, buffer in saved:
            setattr(bn, name, buffer)


class CheckpointedStage(nn.Sequential):
    """A stage whose blocks run as checkpointed segments in training (grad enabled); plainly otherwise."""

    segments: int

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and torch.is_grad_enabled()):
            return super().forward(x)
        blocks = list(self)
        for start, stop in segment_bounds(len(blocks), self.segments):
            run = blocks[start:stop]
            x = checkpoint(
                _run_blocks,
                run,
                x,
                use_reentrant=False,
                preserve_rng_state=False,
                context_fn=partial(_contexts, run),
            )
        return x


def _contexts(blocks: list[nn.Module]) -> tuple[AbstractContextManager, AbstractContextManager]:
    """checkpoint's context_fn: nothing around the forward, scratch BN buffers around the recomputation."""
    return nullcontext(), _scratch_bn_buffers(blocks)


def _run_blocks(blocks: list[nn.Module], x: torch.Tensor) -> torch.Tensor:
    for block in blocks:
        x = block(x)
    return x


def enable_activation_checkpointing(model: M, segments_per_stage: int | None = None) -> M:
    """Checkpoint every stage of `model` in place, in `segments_per_stage` segments (None: ~sqrt(blocks)).

    Training is unchanged to the bit (loss, gradients, BN statistics); a step costs one more forward of the
    stages. Calling it again changes the segment count; `disable_activation_checkpointing` undoes it.
    """
    if segments_per_stage is not None and segments_per_stage < 1:
        raise ValueError(f"segments_per_stage must be at least 1, got {segments_per_stage}")
    for stage in stages(model):
        stage.__class__ = CheckpointedStage
        stage.segments = default_segments(len(stage)) if segments_per_stage is None else segments_per_stage  # type: ignore[assignment]
    return model


def disable_activation_checkpointing(model: M) -> M:
    """Back to plain stages, in place."""
    for stage in stages(model):
        if isinstance(stage, CheckpointedStage):
            stage.__class__ = nn.Sequential  # type: ignore[assignment]
            del stage.segments
    return model


def activation_checkpointing(model: nn.Module) -> bool:
    """Whether any stage of `model` is checkpointed."""
    return any(isinstance(stage, CheckpointedStage) for stage in stages(model))


def segments_of(model: nn.Module) -> list[list[list[nn.Module]]]:
    """Per stage, its segments as lists of blocks (the split checkpointing uses, or would use by default)."""
    out = []
    for stage in stages(model):
        blocks = list(stage)
        count = stage.segments if isinstance(stage, CheckpointedStage) else default_segments(len(blocks))
        out.append([blocks[start:stop] for start, stop in segment_bounds(len(blocks), count)])
    return out
