"""One run on several devices and machines: Lightning's DDP, the rank layout, and the sharded evaluation.

The contract every data path follows (the device-resident CIFAR stream here; a file-backed loader likewise):

- ranks: W = trainer.devices x trainer.num_nodes; global rank r = node_rank x devices + local_rank (Lightning's).
- training: one global plan of (seed, epoch, position) -> (sample, augmentation), the same on every rank. The
  k-th global batch is positions [k*b, (k+1)*b) of that plan (b = schedule.batch_size, batches may straddle
  epochs); rank r takes the slice [k*b + r*b/W, k*b + (r+1)*b/W). The ranks together see exactly what one
  process sees, each sample once per epoch. The stream's state is the number of global samples handed out (the
  same number on every rank), so a checkpoint made by W ranks resumes on any W' that divides b.
- gradients: each rank's loss is the mean over its slice; DDP averages the gradients, which is the gradient of
  the mean over the global batch. BatchNorm: per device by default (the paper's 2 GPUs x 64 images);
  trainer.sync_batchnorm=true normalises over the global batch, which is then the one-device computation.
- evaluation: the eval set's fixed batches (the ones one process uses), batch i on rank i mod W; each rank fills
  its rows of one [batches, 2] table of (loss sum, errors) and a single all_reduce adds the tables. Every entry
  has one contributor and zeros elsewhere, so the reduced table is bit-identical to one process's, and so are
  the error counts and loss sums summed from it. Nothing is padded, so nothing is counted twice.
- files: rank zero writes run.json, curves, checkpoints and train.log (train/folder.py), atomically.
- one decision: rank zero alone takes the run's lock and reads whether the run is done (`rank_zero_decides`);
  every rank acts on its answer, so a locked or finished run, or a rank-0 failure there, ends every rank at once
  instead of leaving ranks 1+ in `fit` until the collective timeout (30 minutes) holding their GPUs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F

from degradation.errors import UsageError


def world_size(trainer_cfg: Any) -> int:
    """Ranks of one run: devices per node x nodes."""
    return int(trainer_cfg.devices) * int(trainer_cfg.get("num_nodes", 1))


def strategy(trainer_cfg: Any, accelerator: str) -> Any:
    """Lightning's strategy: "auto" for one rank, DDP otherwise (gloo on a CPU, NCCL on CUDA)."""
    if world_size(trainer_cfg) == 1:
        return "auto"
    from pytorch_lightning.strategies import DDPStrategy  # deferred: Lightning loads with the trainer only

    backend = "gloo" if accelerator == "cpu" else None  # None: Lightning's choice for the device (nccl on CUDA)
    return DDPStrategy(process_group_backend=backend)


def threads_per_rank(threads: int, trainer_cfg: Any, accelerator: str) -> int:
    """CPU ranks of one node share its cores: trainer.threads=auto is split among them."""
    devices = int(trainer_cfg.devices)
    if accelerator != "cpu" or devices == 1 or trainer_cfg.threads != "auto":
        return threads
    return max(1, threads // devices)


def keep_threads(threads: int, trainer_cfg: Any) -> None:
    """Lightning's DDP launcher sets torch's threads to cores / local ranks unless OMP_NUM_THREADS is set, after
    the run chose its own: a 2-"node" launch (1 local rank) would then compute with other threads than a 2-device
    one, and the same run would differ in its last bits by how it was launched. The variable says: chosen."""
    if world_size(trainer_cfg) > 1:
        os.environ["OMP_NUM_THREADS"] = str(threads)


DECIDED_ENV = "DEGRADATION_RANK0_DECIDED"  # the pid of a rank zero that decided before Lightning started its ranks


def rank_zero_decides(trainer: Any, decide: Callable[[], Any]) -> Any:
    """Rank zero's `decide()` (take the lock, read whether the run is done), its answer or its error on every rank.

    Where Lightning starts the ranks (one node, trainer.devices > 1), rank zero decides before they exist: it
    marks the environment, and the ranks it starts take the answer as "train". Where every rank was started
    outside (SLURM tasks, torchrun, a multi-node launch), the process group is opened now, rank zero decides,
    and one broadcast carries the answer (or rank zero's error, re-raised on every rank as a one-line error).
    Not covered: several nodes that each spread their own ranks through Lightning (the other nodes learn
    nothing); use SLURM or torchrun there.
    """
    world = int(trainer.world_size)
    if world == 1:
        return decide()
    if trainer.local_rank != 0 and os.environ.get(DECIDED_ENV) == str(os.getppid()):
        return None  # started by a rank zero that has decided already: it trains
    if not trainer.strategy.cluster_environment.creates_processes_externally:  # Lightning starts the ranks: none yet
        answer = decide() if trainer.global_rank == 0 else None  # (another node's first rank: it trains)
        os.environ[DECIDED_ENV] = str(os.getpid())  # the ranks it starts are its children
        return answer
    trainer.strategy.setup_environment()  # the process group, early (fit finds it open and keeps it)
    message: list[Any] = [None]
    error: BaseException | None = None
    if trainer.global_rank == 0:
        try:
            message = [("ok", decide())]
        except BaseException as exc:  # noqa: BLE001 - passed on to every rank, then re-raised here
            error = exc
            message = [("error", f"{type(exc).__name__}: {exc}".splitlines()[0][:300])]
    dist.broadcast_object_list(message, src=0)
    kind, payload = message[0]
    if error is not None:
        raise error
    if kind == "error":
        raise UsageError(f"rank 0 stopped before training: {payload}")
    return payload


def graph_note(world: int, device: torch.device, setting: Any) -> str | None:
    """Why a multi-rank run takes the eager step (said once in train.log), or None when nothing to say."""
    if world == 1 or device.type != "cuda" or str(setting).lower() in ("false", "off"):
        return None
    return (f"the eager step, not the CUDA graph: {world} DDP ranks. The graphed step bypasses Lightning's DDP "
            "wrapper, whose gradient all-reduce runs in autograd hooks that a captured graph does not hold; "
            "one device per run (and several runs per node) keeps the graph")


def shard(eval_set: Any, rank: int, world: int) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """(batch index, x, y) of this rank's batches: i mod world == rank, in the one-process batch boundaries."""
    if hasattr(eval_set, "shard"):
        yield from eval_set.shard(rank, world)
        return
    for index, (x, y) in enumerate(eval_set):  # an eval set without shard(): correct, every rank reads all
        if index % world == rank:
            yield index, x, y


def num_batches(eval_set: Any) -> int:
    """Batches of an eval set in one process's boundaries."""
    if hasattr(eval_set, "num_batches"):
        return int(eval_set.num_batches)
    return sum(1 for _ in eval_set)


def reduce_table(table: torch.Tensor, world: int) -> torch.Tensor:
    """Sum the ranks' tables (one all_reduce). Exact: each entry is non-zero on at most one rank."""
    if world > 1:
        dist.all_reduce(table, op=dist.ReduceOp.SUM)
    return table


@torch.no_grad()
def evaluate_sets(model: torch.nn.Module, forward: Callable[[torch.Tensor], torch.Tensor], eval_sets: dict[str, Any],
                  rank: int, world: int, context: Callable[[], Any] = nullcontext) -> dict[str, tuple[float, float]]:
    """split -> (error, mean loss) over each whole set, sharded over the ranks and reduced once; `model` is in eval
    mode. The same numbers as one process's, exactly (see the module docstring)."""
    broadcast_buffers(model, world)
    device = next(model.parameters()).device
    tables = {}
    for split, images in eval_sets.items():
        table = torch.zeros(num_batches(images), 2, device=device)
        with context():
            for index, x, y in shard(images, rank, world):
                logits = forward(x)
                table[index, 0] = F.cross_entropy(logits.float(), y, reduction="sum")
                table[index, 1] = (logits.argmax(1) != y).sum()
        tables[split] = table
    if not tables:
        return {}
    joined = reduce_table(torch.cat(list(tables.values())), world).double()  # the one device read
    sums = [part.sum(0).tolist() for part in joined.split([len(t) for t in tables.values()])]
    results = {}
    for (split, images), (loss_sum, wrong) in zip(eval_sets.items(), sums, strict=True):
        count = max(len(images), 1)
        results[split] = (wrong / count, loss_sum / count)
    return results


def broadcast_buffers(model: torch.nn.Module, world: int) -> None:
    """Every rank evaluates rank zero's network (the one its checkpoint holds). Parameters already agree under
    DDP; BN running statistics of per-device BN differ after the last step, so rank zero's are sent out."""
    if world == 1:
        return
    by_dtype: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
    for buffer in model.buffers():
        by_dtype.setdefault((buffer.dtype, buffer.device), []).append(buffer)
    for buffers in by_dtype.values():
        flat = torch.cat([b.reshape(-1) for b in buffers])
        dist.broadcast(flat, src=0)
        offset = 0
        for b in buffers:
            b.copy_(flat[offset : offset + b.numel()].view_as(b))
            offset += b.numel()


class _AllReduceSum(torch.autograd.Function):
    """Sum over the ranks; its gradient is the sum of the ranks' gradients (every rank's loss used the sum)."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        out = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out


class CpuSyncBatchNorm(torch.nn.BatchNorm2d):
    """BatchNorm over the global batch for CPU ranks (gloo), where torch's SyncBatchNorm does not run (GPUs only).

    The statistics are BatchNorm's, taken over every rank's images: the per-channel sum, then the sum of squared
    deviations from the global mean, each all-reduced with an autograd-aware all_reduce (its backward all-reduces
    the gradients, as SyncBatchNorm's does). Running statistics use the unbiased global variance, like BatchNorm.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        dims = (0, 2, 3)
        count = x.numel() // x.shape[1] * dist.get_world_size()
        mean = _AllReduceSum.apply(x.sum(dims)) / count
        centred = x - mean.view(1, -1, 1, 1)
        var = _AllReduceSum.apply((centred * centred).sum(dims)) / count
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                assert self.num_batches_tracked is not None  # tracked with the running statistics
                self.num_batches_tracked.add_(1)
                factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - factor).add_(mean.detach(), alpha=factor)
                self.running_var.mul_(1 - factor).add_(var.detach() * (count / max(count - 1, 1)), alpha=factor)
        out = centred * torch.rsqrt(var + self.eps).view(1, -1, 1, 1)
        if self.affine:
            out = out * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return out


def sync_batchnorm(model: torch.nn.Module, trainer_cfg: Any, accelerator: str) -> torch.nn.Module:
    """trainer.sync_batchnorm=true on several ranks: BatchNorm over the global batch (one rank: plain BatchNorm is
    already that). Same parameter and buffer names, so checkpoints move between layouts."""
    if not trainer_cfg.get("sync_batchnorm", False) or world_size(trainer_cfg) == 1:
        return model
    if accelerator != "cpu":
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return _convert_cpu(model)


def _convert_cpu(module: torch.nn.Module) -> torch.nn.Module:
    if isinstance(module, torch.nn.BatchNorm2d) and not isinstance(module, CpuSyncBatchNorm):
        sync = CpuSyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                module.track_running_stats)
        sync.load_state_dict(module.state_dict())
        sync.train(module.training)
        return sync
    for name, child in module.named_children():
        module.add_module(name, _convert_cpu(child))
    return module
