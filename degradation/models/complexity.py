"""Parameters and multiply-adds, measured on the module itself rather than by a formula.

MACs come from torch.utils.flop_counter: it counts the matrix products (convolutions, the fc) and
reports 2 FLOPs per multiply-add, so MACs = FLOPs / 2. BN, ReLU, additions, padding and pooling are not
counted, which is the published convention (ResNet-20: 40.55M here vs the quoted ~40.8M; ResNet-56:
125.5M vs ~125.8M). A model built on the meta device is counted without allocating or computing anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module) -> int:
    """Every parameter (trainable or not); buffers such as BN running statistics are not parameters."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_shape: tuple[int, ...] = (1, 3, 32, 32)) -> int:
    """Multiply-adds of one forward pass on an input of `input_shape` (batch 1 = per image).

    Runs in eval mode without gradients (so BN running statistics are untouched) and restores the mode.
    One CPU thread: a batch-1 forward gains nothing from more, and on a shared CPU two spinning threads
    made a depth-1202 count take 6 s instead of 0.8 s. The first call in a process also imports
    torch._dynamo (the flop counter's dispatch needs it): 1.5-3 s once.
    """
    reference = next(iter(model.parameters()), None)
    device = reference.device if reference is not None else torch.device("cpu")
    dtype = reference.dtype if reference is not None else torch.float32
    was_training = model.training
    model.eval()
    try:
        counter = FlopCounterMode(display=False)
        inputs = torch.zeros(input_shape, device=device, dtype=dtype)
        with torch.no_grad(), one_thread(), counter:
            model(inputs)
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the block with torch on one intra-op CPU thread, then restore the previous setting."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
