"""Figure 7's layer responses: each 3x3 conv's output after its BN, before ReLU and before the addition.

The layers are found structurally (a BN registered right after a 3x3 conv), so this works for every net
here, plain or residual: CIFAR depth 6n+2 gives 6n+1 layers (the first conv and the 6n block convs),
ImageNet basic nets all block convs, bottleneck nets the middle conv of each block (the 7x7 stem and the
1x1 convs, including projection shortcuts, are not 3x3 layers).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import TracebackType

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle


def response_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, BN) for the BN right after every 3x3 conv, in network order (= registration order here).

    A network of the user's may declare its layers instead: an attribute `response_layers`, the names of the
    submodules whose outputs are its 3x3 layers' responses, in network order (a net without BN has no BN to find).
    """
    declared = getattr(model, "response_layers", None)
    if declared is not None and not callable(declared):
        modules = dict(model.named_modules())
        return [(str(name), modules[str(name)]) for name in declared if str(name) in modules]
    found: list[tuple[str, nn.Module]] = []
    previous: nn.Module | None = None
    for name, module in model.named_modules():
        if next(iter(module.children()), None) is not None:
            continue  # containers: look at leaves only
        if (
            isinstance(module, nn.modules.batchnorm._BatchNorm)
            and isinstance(previous, nn.Conv2d)
            and tuple(previous.kernel_size) == (3, 3)
        ):
            found.append((name, module))
        previous = module
    return found


class ResponseRecorder:
    """Forward hooks on response_layers that accumulate float64 sum, sum of squares and element count.

    Statistics are over all elements (batch, channel, pixel) of every batch seen while the context is
    open, kept on the output's device so no step waits on a host copy. The hooks return nothing, so the
    forward computation is unchanged; they are removed on exit.

        with ResponseRecorder(model) as recorder:
            for x, _ in batches:
                model(x)
        recorder.std()  # {"stem.bn": 0.93, "stage1.0.bn1": ..., ...}
    """

    def __init__(self, model: nn.Module) -> None:
        self.layers = response_layers(model)
        if not self.layers:
            raise ValueError(f"{type(model).__name__} has no BN right after a 3x3 conv to record")
        self._handles: list[RemovableHandle] = []
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.sumsqs: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {name: 0 for name, _ in self.layers}

    def __enter__(self) -> ResponseRecorder:
        for name, module in self.layers:
            self._handles.append(module.register_forward_hook(self._hook(name)))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, name: str) -> Callable[[nn.Module, tuple[torch.Tensor, ...], torch.Tensor], None]:
        def record(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            values = output.detach().to(torch.float64)
            total, squares = values.sum(), (values * values).sum()
            # Out of place: an in-place add would fail on tensors made under torch.inference_mode.
            if name in self.sums:
                total, squares = self.sums[name] + total, self.sumsqs[name] + squares
            self.sums[name], self.sumsqs[name] = total, squares
            self.counts[name] += values.numel()

        return record

    def mean(self) -> dict[str, float]:
        return {
            name: float(self.sums[name]) / count if (count := self.counts[name]) else math.nan
            for name, _ in self.layers
        }

    def std(self) -> dict[str, float]:
        """Per layer, in network order; Bessel-corrected like torch.std (nan before two elements are seen)."""
        out: dict[str, float] = {}
        for name, _ in self.layers:
            count = self.counts[name]
            if count < 2:
                out[name] = math.nan
                continue
            total, squares = float(self.sums[name]), float(self.sumsqs[name])
            out[name] = math.sqrt(max(squares - total * total / count, 0.0) / (count - 1))
        return out
