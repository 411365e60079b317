"""The host's cost per training step outside the network: what a GPU step has to hide.

With the step replayed as one CUDA graph, the host still runs Lightning's loop, the batch stream's launches and
the module's bookkeeping for every iteration. If that takes longer than the GPU's step, the GPU waits. This
measures it on any machine: the tool's whole step with the network swapped for a single tiny layer, against a
bare loop over the same tiny layer; the difference is the framework's own time per step.

    python benchmarks/host_overhead.py [--iters 2000] [--mode emulate|eager]

Prints microseconds per step; nothing is asserted.
"""

from __future__ import annotations  # noqa: I001  (degradation.train goes before torch)

import argparse
import sys
import tempfile
import time
from pathlib import Path

import degradation.train  # noqa: F401  (before torch: its OpenMP wait policy)
import torch
import torch.nn.functional as F
from torch import nn

from degradation.bench.step import bench_cfg, tool_seconds
from degradation.data import build_data


class Tiny(nn.Module):
    """One 1x1 convolution and a pooled linear head: almost no arithmetic, the same kind of parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1, bias=False)
        self.fc = nn.Linear(4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x[:, :, :2, :2]).mean((2, 3)))


def bare_us(model: nn.Module, stream, iters: int) -> float:
    """Stream + forward + backward + SGD with no framework: the floor."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    start = time.perf_counter()
    for _ in range(iters):
        x, y = next(stream)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return 1e6 * (time.perf_counter() - start) / iters


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--mode", choices=["emulate", "eager"], default="emulate")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    graphs = {"emulate": "emulate", "eager": "false"}[args.mode]
    overrides = ["trainer.threads=1", f"trainer.cuda_graphs={graphs}"]
    cfg = bench_cfg("resnet", 20, "cpu", args.iters, Path(tempfile.gettempdir()), overrides)
    data = build_data(cfg.data, batch_size=128, seed=0, device="cpu", memory_format=torch.channels_last)
    stream_start = time.perf_counter()
    for _ in range(args.iters):
        next(data.train)
    stream = 1e6 * (time.perf_counter() - stream_start) / args.iters
    bare = min(bare_us(Tiny(), data.train, args.iters) for _ in range(2))
    tool = min(1e6 * tool_seconds(cfg, Tiny(), data, args.iters)[0] / args.iters for _ in range(2))
    print(f"per step, host only ({args.mode} step, 1 thread): batch stream {stream:.0f} us; bare loop {bare:.0f} us; "
          f"tool {tool:.0f} us; the tool's own overhead {tool - bare:.0f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
