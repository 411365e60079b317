"""The training step as one CUDA graph: forward, loss, backward, SGD update and the window's sums, replayed.

Why: a CIFAR ResNet at batch 128 is hundreds of small kernels per step, and on a fast GPU launching them from
Python costs more than running them. Captured once, the whole step is one launch. The recipe is untouched:
same network, loss, SGD (fused kernel; momentum, weight decay and the lr schedule as before), same batches.

What the capture needs, and how this class provides it:
- fixed addresses: the batch is copied into static input buffers; the learning rate lives in a device tensor
  that the schedule refills between replays; the window's [loss sum, misclassified] accumulator is the
  module's own tensor, updated in place.
- no host sync inside the step: nothing is read back; the module reads the accumulator once per window.
- warm-up iterations on a side stream before capture (cuDNN autotuning, lazy allocations, momentum buffers).
  They would change the weights, so everything they touch (parameters, BatchNorm statistics, momentum
  buffers, the accumulator) is copied before and written back, in place, after: the run's first real step
  is the replay, and a run captured after a resume continues exactly where the checkpoint left it.
- autocast without its weight-cast cache (a cached cast would be captured once and never refreshed).

`capture=False` runs the same step eagerly (warm-up, restore and all) on any device: the tests check the
graph path's bookkeeping on a CPU that way.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from degradation.compute.precision import autocast_dtype, precision_name
from degradation.train.layers import LayerFlow

WARMUP_ITERS = 3  # side-stream iterations before capture (PyTorch's whole-network capture recipe uses a few)
GRAPH_PRECISIONS = ("32-true", "tf32", "bf16-mixed")  # 16-mixed needs a grad scaler, which reads the device


class GraphedStep:
    """Callable `step(x, y, lr)`: one SGD step on the batch, added to `acc` as [batch loss, misclassified]."""

    def __init__(
        self,
        model: nn.Module,
        forward: Callable[[torch.Tensor], torch.Tensor],
        optimizer: torch.optim.SGD,
        acc: torch.Tensor,
        *,
        precision: str,
        capture: bool,
        flow: LayerFlow | None = None,
    ) -> None:
        if precision_name(precision) not in GRAPH_PRECISIONS:
            raise ValueError(f"precision {precision!r} cannot be graphed; use one of {', '.join(GRAPH_PRECISIONS)}")
        self.model, self.forward, self.optimizer, self.acc = model, forward, optimizer, acc
        self.autocast_dtype = autocast_dtype(precision)
        self.capture = capture
        self.flow = flow  # gradient flow per layer: summed inside the graph, between backward and the update
        self.device = acc.device
        self.lr = torch.zeros((), dtype=torch.float32, device=self.device)  # the fused CUDA kernel reads a float
        self._lr_value: float | None = None
        self.static_x: torch.Tensor | None = None
        self.static_y: torch.Tensor | None = None
        self.graph: torch.cuda.CUDAGraph | None = None

    # ---- the step ---------------------------------------------------------------------------------------
    def __call__(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> None:
        if self.static_x is None:
            self._prepare(x, y)
        assert self.static_x is not None and self.static_y is not None
        self.static_x.copy_(x)
        self.static_y.copy_(y)
        if lr != self._lr_value:  # a fill only when the schedule moves: no transfer, no sync
            self.lr.fill_(lr)
            self._lr_value = lr
        if self.graph is not None:
            self.graph.replay()
        else:
            self._eager_step()

    def _body(self) -> None:
        """What the graph holds. Gradients are not zeroed: the captured backward writes them afresh."""
        assert self.static_x is not None and self.static_y is not None
        with self._autocast():
            logits = self.forward(self.static_x)
            loss = F.cross_entropy(logits, self.static_y)
        loss.backward()
        if self.flow is not None:
            self.flow.accumulate(self.lr)
        self.optimizer.step()
        with torch.no_grad():
            wrong = (logits.argmax(1) != self.static_y).sum()
            self.acc.add_(torch.stack((loss.detach().float(), wrong.float())))

    def _eager_step(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self._body()

    def _autocast(self):
        if self.autocast_dtype is None:  # fp32: switch off any autocast around us (e.g. Lightning's)
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=self.autocast_dtype, cache_enabled=False)

    # ---- once: buffers, optimizer, warm-up, capture, restore ---------------------------------------------
    @property
    def ready(self) -> bool:
        """Prepared (and captured, on CUDA): from here on a failure cannot be undone."""
        return self.static_x is not None

    def _prepare(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Warm up and capture; if that fails, the model and optimizer are left as they were, and it raises."""
        lrs = [float(group["lr"]) for group in self.optimizer.param_groups]
        self._adopt_optimizer()
        saved = self._state_tensors()
        copies = [t.detach().clone() for t in saved]
        self.static_x = torch.empty_like(x).copy_(x)  # the body reads them during warm-up and capture
        self.static_y = torch.empty_like(y).copy_(y)
        try:
            if self.capture:
                self._capture()
            else:
                for _ in range(WARMUP_ITERS):
                    self._eager_step()
        except BaseException:
            self.graph, self.static_x, self.static_y = None, None, None
            self.optimizer.zero_grad(set_to_none=True)
            for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
                group.update(lr=lr, fused=False, foreach=None)  # the optimizer as the eager step uses it
            raise
        finally:  # a captured graph keeps its gradients: they live in its memory pool
            with torch.no_grad():
                for tensor, copy in zip(saved, copies, strict=True):
                    tensor.copy_(copy)

    def _adopt_optimizer(self) -> None:
        """Fused SGD reading its lr from a device tensor; momentum buffers made now (zero = SGD's first step).

        A zero buffer gives the first step's update exactly: buf = momentum * 0 + grad = grad.
        """
        momentum = 0.0
        for group in self.optimizer.param_groups:
            self.lr.fill_(float(group["lr"]))
            group.update(lr=self.lr, fused=True, foreach=False, differentiable=False)
            momentum = float(group["momentum"])
            if momentum:
                for p in group["params"]:
                    state = self.optimizer.state[p]
                    if state.get("momentum_buffer") is None:
                        state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        self._lr_value = None

    def _state_tensors(self) -> list[torch.Tensor]:
        """Every tensor a step changes: parameters, buffers (BN statistics, counters), momentum, accumulator."""
        tensors = [*self.model.parameters(), *self.model.buffers(), self.acc]
        if self.flow is not None and self.flow.acc is not None:
            tensors.append(self.flow.acc)
        for state in self.optimizer.state.values():
            tensors += [v for v in state.values() if isinstance(v, torch.Tensor)]
        return tensors

    def _capture(self) -> None:
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(WARMUP_ITERS):
                self._eager_step()
        torch.cuda.current_stream(self.device).wait_stream(side)
        self.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            self._body()
        torch.cuda.synchronize(self.device)
        self.graph = graph


def graph_mode(setting: object, device: torch.device, world_size: int, precision: str) -> tuple[str, str | None]:
    """("graph" | "emulate" | "eager", why not graphed or None) for trainer.cuda_graphs on this device.

    auto graphs a single-CUDA-device run in 32-true or bf16-mixed; elsewhere the eager step runs.
    true insists (the caller turns the reason into an error); emulate runs the graph path uncaptured.
    """
    text = str(setting).lower()
    if text in ("false", "off"):
        return "eager", "trainer.cuda_graphs=false"
    if text == "emulate":
        return "emulate", None
    reasons = []
    if device.type != "cuda":
        reasons.append(f"the device is {device.type}, not cuda")
    if world_size != 1:
        reasons.append(f"{world_size} devices (graphs are for one)")
    if precision_name(precision) not in GRAPH_PRECISIONS:
        reasons.append(f"precision {precision} (graphable: 32-true, tf32, bf16-mixed)")
    if reasons:
        return "eager", "; ".join(reasons)
    return "graph", None

