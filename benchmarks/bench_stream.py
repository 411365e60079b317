"""How fast is the augmented batch stream, and what does it cost next to one ResNet-20 training step?

Prints images/s of BatchStream (pad 4, random crop, random flip, normalise; one gather per batch) on a
CIFAR-sized set (50k uint8 images; their content does not change the cost), and the time of one batch as a
fraction of one ResNet-20 SGD step at the same batch size. Asserts nothing (the target is under 5%).

    .venv/bin/python benchmarks/bench_stream.py [--device cpu] [--threads 2] [--batch-size 128]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from degradation.data import BatchStream, fit_normalizer


def _seconds_per_call(fn, calls: int, warmup: int, device: torch.device) -> float:
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / calls


def stream_seconds(images: torch.Tensor, labels: torch.Tensor, batch_size: int, device: torch.device,
                   memory_format: torch.memory_format, batches: int) -> float:
    stream = BatchStream(images, labels, fit_normalizer(images), batch_size=batch_size, seed=0, device=device,
                         memory_format=memory_format)
    return _seconds_per_call(lambda: next(stream), batches, 5, device)


def resnet20_step_seconds(
    batch_size: int, device: torch.device, memory_format: torch.memory_format, steps: int
) -> float:
    from degradation.models import cifar_net

    model = cifar_net("resnet", 20).to(device=device, memory_format=memory_format)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(batch_size, 3, 32, 32, device=device).contiguous(memory_format=memory_format)
    y = torch.randint(0, 10, (batch_size,), device=device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    return _seconds_per_call(step, steps, 3, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--batches", type=int, default=100, help="stream batches timed")
    parser.add_argument("--steps", type=int, default=10, help="ResNet-20 steps timed")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.images, 3, 32, 32), generator=gen, dtype=torch.uint8)
    labels = torch.randint(0, 10, (args.images,), generator=gen)
    print(f"device {device}, {torch.get_num_threads()} threads, batch {args.batch_size}, {args.images} images")
    step = resnet20_step_seconds(args.batch_size, device, torch.channels_last, args.steps)
    print(f"ResNet-20 training step (channels_last): {step * 1e3:.1f} ms")
    for name, fmt in (("contiguous", torch.contiguous_format), ("channels_last", torch.channels_last)):
        per_batch = stream_seconds(images, labels, args.batch_size, device, fmt, args.batches)
        print(
            f"stream {name:>13}: {args.batch_size / per_batch:>10,.0f} images/s, {per_batch * 1e3:6.2f} ms/batch, "
            f"{per_batch / step:6.2%} of a ResNet-20 step"
        )


if __name__ == "__main__":
    main()
