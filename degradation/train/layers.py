"""Gradient flow per weighted layer, recorded during training: the gradient's norm and the update-to-weight ratio.

Why: the degradation problem is about how signals and gradients move through depth; these two numbers per
layer and logging window show whether the early layers of a deep plain net get vanishing, exploding or healthy
gradients compared with its residual twin.

What is recorded, for every Conv2d and Linear weight in network order (layer_index 1-based):
- grad_norm: ||g||_2 of the loss gradient (after backward, before the SGD update; weight decay not included);
- update_ratio: lr * ||g|| / ||w||, the relative size of the plain gradient step (momentum and weight decay
  left out, so that it reads the gradient, not the optimizer's memory).
Both are means over the steps of a logging window. They are summed on the device with two fused norm calls
per step (no host read; inside the captured CUDA graph on that path) and read once per window.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch import nn

from degradation.store.io import write_atomic
from degradation.store.runs import LAYERS_DIR, part_name
from degradation.store.schema import LAYERS_SCHEMA

METRICS = ("grad_norm", "update_ratio")


def weighted_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every conv and fc, in registration order (= network order for the nets here)."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def stage_of(name: str) -> str:
    """The top-level part a layer sits in: stem, stage1..3 (layer1..4 on ImageNet), fc."""
    return name.split(".", 1)[0]


class LayerFlow:
    """The device-side [2, layers] accumulator of one fit, and the step that adds to it."""

    def __init__(self, model: nn.Module) -> None:
        named = weighted_layers(model)
        self.names = [n for n, _ in named]
        self.stages = [stage_of(n) for n in self.names]
        self.weights: list[torch.Tensor] = [m.weight for _, m in named]  # type: ignore[misc]
        self.acc: torch.Tensor | None = None

    def sums(self, device: torch.device) -> torch.Tensor:
        """The accumulator (one tensor for the whole fit: a captured graph holds its address)."""
        if self.acc is None:
            self.acc = torch.zeros(2, len(self.weights), device=device)
        return self.acc

    @torch.no_grad()
    def accumulate(self, lr: float | torch.Tensor) -> None:
        """Add this step's gradient norms and ratios; call after backward, before the optimizer step."""
        grads = [w.grad if w.grad is not None else torch.zeros_like(w) for w in self.weights]
        g = torch.stack(torch._foreach_norm(grads)).float()
        w = torch.stack(torch._foreach_norm([p.detach() for p in self.weights])).float()
        acc = self.sums(g.device)
        acc.add_(torch.stack((g, g * lr / w.clamp_min(1e-12))))

    def read(self, steps: int) -> list[tuple[int, str, str, str, float]]:
        """The window's means as (layer_index, layer, stage, metric, value) rows; one device read; resets."""
        if self.acc is None or steps <= 0:
            return []
        values = self.acc.tolist()
        self.acc.zero_()
        return [
            (i + 1, name, stage, metric, row[i] / steps)
            for metric, row in zip(METRICS, values, strict=True)
            for i, (name, stage) in enumerate(zip(self.names, self.stages, strict=True))
        ]


class LayerWriter:
    """Rows of one run, written as layers/part-<step>.parquet at each checkpoint (like the curve parts)."""

    def __init__(self, run_dir: Path, ids: dict) -> None:
        self.dir = Path(run_dir) / LAYERS_DIR
        self.ids = ids
        self.rows: list[tuple] = []

    def add(self, step: int, rows: list[tuple[int, str, str, str, float]]) -> None:
        self.rows += [(step, *row) for row in rows]

    def flush(self, step: int) -> Path | None:
        if not self.rows:
            return None
        n = len(self.rows)
        names = ("step", "layer_index", "layer", "stage", "metric", "value")
        columns = dict(zip(names, zip(*self.rows, strict=True), strict=True))
        arrays = [
            pa.array([self.ids[f.name]] * n if f.name in self.ids else columns[f.name], type=f.type)
            for f in LAYERS_SCHEMA
        ]
        table = pa.Table.from_arrays(arrays, schema=LAYERS_SCHEMA)
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / part_name(step)
        write_atomic(path, lambda tmp: pq.write_table(table, tmp))
        self.rows.clear()
        return path
