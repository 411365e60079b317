"""What a training step holds in memory, measured on any device (no GPU needed): does a net fit at batch 128?

Activations are the tensors autograd saves for backward during one train-mode forward and the loss, seen
through torch.autograd.graph.saved_tensors_hooks, counted once per storage (an in-place ReLU's output shares
its input's storage), parameters and buffers excluded. Under bf16-mixed/16-mixed the forward runs in the
model's device's autocast, so saved maps are half size and weight casts are counted where they are saved.
Logical bytes: allocator rounding, cuDNN workspaces, the CUDA context and the backward's transient gradient
maps (a few layer-sized tensors) are not included.

Saved bytes are affine in the batch size (maps scale with it; BN statistics and weight casts do not), so
`training_memory` measures at batches 1 and 2 and extrapolates exactly: a depth-1202 net at batch 128 costs
two tiny forwards, not a 10 GB one.

    activation_bytes(model, 8)                          # measured at batch 8, as the model is configured
    training_memory(model, 128, "bf16-mixed", checkpointing=True)["total"]
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from degradation.compute.precision import autocast_dtype
from degradation.models.complexity import one_thread
from degradation.models.recompute import (
    CheckpointedStage,
    activation_checkpointing,
    disable_activation_checkpointing,
    enable_activation_checkpointing,
    segments_of,
    stages,
)

MEASURE_BATCHES = (1, 2)  # two points fix the affine size; 1 and 2 keep the measuring forwards tiny


class _Ledger:
    """Pack hook that records each new saved storage once, and the checkpoint segment it was saved in."""

    def __init__(self, exclude: set[int]) -> None:
        self.exclude = exclude
        self.bytes: dict[int, int] = {}
        self.owner: dict[int, object] = {}
        self.keep: list[torch.Tensor] = []  # holds each storage so its address cannot be reused mid-count
        self.segment: object = None

    def pack(self, tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        address = storage.data_ptr()
        if storage.nbytes() and address not in self.exclude and address not in self.bytes:
            self.bytes[address] = storage.nbytes()
            self.owner[address] = self.segment
            self.keep.append(tensor)
        return tensor

    def per_segment(self) -> dict[object, int]:
        totals: dict[object, int] = {}
        for address, size in self.bytes.items():
            if self.owner[address] is not None:
                totals[self.owner[address]] = totals.get(self.owner[address], 0) + size
        return totals


def _device(model: nn.Module) -> torch.device:
    reference = next(iter(model.parameters()), None)
    device = reference.device if reference is not None else torch.device("cpu")
    if device.type == "meta":
        raise ValueError("memory is measured by running the net: build it on a real device, not meta")
    return device


@contextmanager
def _untouched(model: nn.Module) -> Iterator[None]:
    """Train mode for the measurement; afterwards the previous mode and the BN statistics, as they were."""
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    was_training = model.training
    model.train()
    try:
        yield
    finally:
        model.train(was_training)
        with torch.no_grad():
            for buffer, copy in buffers:
                buffer.copy_(copy)


def _measure(model: nn.Module, batch_size: int, precision: str, input_size: int, split: list | None = None) -> _Ledger:
    """One train-mode forward and loss under the ledger's hooks (no backward: nothing is updated).

    `split` (segments_of's form) names the segment each saved tensor is charged to; default: the model's own.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    dtype = autocast_dtype(precision)
    device = _device(model)
    exclude = {t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}
    ledger = _Ledger(exclude)
    hooks = []
    for stage_index, segments in enumerate(segments_of(model) if split is None else split):
        for segment_index, segment in enumerate(segments):
            for block in segment:
                key = (stage_index, segment_index)
                hooks.append(block.register_forward_pre_hook(lambda *_, key=key: setattr(ledger, "segment", key)))
    for stage in stages(model):
        hooks.append(stage.register_forward_hook(lambda *_: setattr(ledger, "segment", None)))
    x = torch.zeros(batch_size, 3, input_size, input_size, device=device)
    y = torch.zeros(batch_size, dtype=torch.long, device=device)
    autocast = nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)
    try:
        with _untouched(model), torch.enable_grad(), one_thread(), autocast:
            with torch.autograd.graph.saved_tensors_hooks(ledger.pack, lambda t: t):
                loss = F.cross_entropy(model(x), y)
            del loss  # frees the graph; the ledger has the sizes
    finally:
        for hook in hooks:
            hook.remove()
    ledger.keep.clear()
    return ledger


def activation_bytes(model: nn.Module, batch_size: int, precision: str = "32-true", input_size: int = 32) -> int:
    """Bytes saved for backward by one training forward + loss at `batch_size`, as the model is configured
    (checkpointed stages save only their segments' inputs). The model's weights, statistics and mode are
    left as they were. precision: "32-true"/"32", "bf16-mixed" or "16-mixed" (autocast on the model's device).
    """
    return sum(_measure(model, batch_size, precision, input_size).bytes.values())


def _extrapolate(values: tuple[int, int], batch_size: int) -> int:
    """The affine size through the measurements at MEASURE_BATCHES, at `batch_size`."""
    (b1, b2), (v1, v2) = MEASURE_BATCHES, values
    return v1 + (v2 - v1) * (batch_size - b1) // (b2 - b1)


@contextmanager
def _checkpointing_as(model: nn.Module, enabled: bool, segments_per_stage: int | None) -> Iterator[None]:
    """The model checkpointed (or not) for the block, then configured as before."""
    before = {id(s): s.segments for s in stages(model) if isinstance(s, CheckpointedStage)}
    if enabled:
        enable_activation_checkpointing(model, segments_per_stage)
    else:
        disable_activation_checkpointing(model)
    try:
        yield
    finally:
        disable_activation_checkpointing(model)
        for stage in stages(model):
            if id(stage) in before:
                stage.__class__ = CheckpointedStage
                stage.segments = before[id(stage)]  # type: ignore[assignment]


def training_memory(
    model: nn.Module,
    batch_size: int = 128,
    precision: str = "32-true",
    checkpointing: bool | None = None,
    *,
    segments_per_stage: int | None = None,
    momentum: bool = True,
    input_size: int = 32,
) -> dict[str, int | str | bool]:
    """Bytes one SGD training step holds at its peak (the start of backward), by part:

    params, grads (fp32, also under mixed precision), momentum (SGD's buffer per parameter), buffers (BN
    statistics), activations (saved for backward at the end of the forward), recompute (checkpointing only:
    the largest segment re-run during backward, held with the stored segment inputs), total = their sum.
    checkpointing None: as the model is configured; True/False: measured so, the model left as it was.
    Measured at batches 1 and 2 and extrapolated to `batch_size` (exact: the sizes are affine in the batch).
    """
    autocast_dtype(precision)  # refuses an unknown precision before any forward
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    enabled = activation_checkpointing(model) if checkpointing is None else bool(checkpointing)
    recompute, split = 0, None
    if enabled:  # the model's own segments when it is checkpointed and no other count is asked for
        keep = activation_checkpointing(model) and segments_per_stage is None
        with nullcontext() if keep else _checkpointing_as(model, True, segments_per_stage):
            split = segments_of(model)
            stored = [activation_bytes(model, b, precision, input_size) for b in MEASURE_BATCHES]
    with _checkpointing_as(model, False, None):
        plain = [_measure(model, b, precision, input_size, split) for b in MEASURE_BATCHES]
    activations = _extrapolate(tuple(sum(led.bytes.values()) for led in plain), batch_size)  # type: ignore[arg-type]
    if enabled:
        one, two = (led.per_segment() for led in plain)
        recompute = max(_extrapolate((one.get(k, 0), two[k]), batch_size) for k in two)
        activations = _extrapolate(tuple(stored), batch_size)  # type: ignore[arg-type]
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    parts = {
        "params": params,
        "grads": trainable,
        "momentum": trainable if momentum else 0,
        "buffers": sum(b.numel() * b.element_size() for b in model.buffers()),
        "activations": activations,
        "recompute": recompute,
    }
    return {
        "batch_size": batch_size,
        "precision": str(precision),
        "checkpointing": enabled,
        **parts,
        "total": sum(parts.values()),
    }
