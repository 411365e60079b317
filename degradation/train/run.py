"""train(cfg): one run from a composed config to a finished run folder; resumes when the folder has a checkpoint.

Order matters for "no half-written run folder": validate, check the results folder is writable, build the
data and the model (either may refuse with a UsageError), and only then create the folder.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from degradation.compute.machine import device_name, unused_gpu_warning
from degradation.compute.precision import apply_precision, lightning_precision, precision_name, precision_record
from degradation.compute.ranks import split_batch
from degradation.conf import run_dir, validate
from degradation.data import build_data
from degradation.data.fetch import prepare_config
from degradation.errors import RunFailed, UsageError, first_line
from degradation.models import build_model, count_macs, count_params, input_shape
from degradation.models.recompute import enable_activation_checkpointing
from degradation.store.io import remove_stale_temps
from degradation.store.lock import run_lock
from degradation.store.runs import (
    CHECKPOINT,
    RESTARTS,
    CorruptFile,
    ForeignSchema,
    check_writable,
    has_checkpoint,
    missing_windows,
    read_run_json,
    trim_parts,
)
from degradation.store.schema import SCHEMA_VERSION, RunStatus
from degradation.text import percent
from degradation.train import determinism, distributed
from degradation.train.checkpoint import UnreadableCheckpoint, checkpoint_iteration, set_aside
from degradation.train.console import quiet_lightning
from degradation.train.curvewriter import rebuild_parts
from degradation.train.folder import GRAPH_TAG, RunFolder, static_info
from degradation.train.graphed import graph_mode
from degradation.train.lifeline import die_hard
from degradation.train.module import Ticks, TrainModule
from degradation.train.tencrop import ten_crop_errors
from degradation.train.threads import cpu_threads, pin_threads


def configure_runtime(trainer_cfg: Any) -> int:
    """Threads, cuDNN autotuning and the TF32 switches of the precision, set once before any tensor work; returns the
    thread count."""
    accelerator = {"cuda": "gpu"}.get(str(trainer_cfg.accelerator), str(trainer_cfg.accelerator))
    threads = distributed.threads_per_rank(cpu_threads(trainer_cfg.threads), trainer_cfg, accelerator)
    distributed.keep_threads(threads, trainer_cfg)
    torch.set_num_threads(threads)
    torch.backends.cudnn.benchmark = bool(trainer_cfg.cudnn_benchmark) and not determinism.enabled(trainer_cfg)
    torch.backends.cudnn.deterministic = determinism.enabled(trainer_cfg)
    apply_precision(trainer_cfg.precision)
    quiet_lightning()
    return threads


def seed_everything(seed: int) -> None:
    """Seeds the weights' initialisation (the stream has its own generator, seeded by build_data)."""
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:
        pass


def build_trainer(trainer_cfg: Any, max_steps: int, root_dir: Path | str, callbacks: list | None = None):
    """A Lightning Trainer that only runs the loop: no logger, bar, summary, sanity check or validation loop."""
    import pytorch_lightning as pl

    accelerator = {"cuda": "gpu"}.get(str(trainer_cfg.accelerator), str(trainer_cfg.accelerator))
    devices, nodes = int(trainer_cfg.devices), int(trainer_cfg.get("num_nodes", 1))
    precision = lightning_precision(trainer_cfg.precision)
    try:
        return pl.Trainer(
            accelerator=accelerator,
            devices=devices,
            num_nodes=nodes,
            strategy=distributed.strategy(trainer_cfg, accelerator),
            precision=precision,  # type: ignore[arg-type]  # Lightning types the names as literals
            max_steps=max_steps,
            max_epochs=-1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            limit_val_batches=0,
            use_distributed_sampler=False,
            **determinism.lightning_flags(trainer_cfg, accelerator),
            default_root_dir=str(root_dir),
            callbacks=callbacks or [],
        )
    except Exception as exc:  # Lightning's MisconfigurationException: no such device, too many devices
        what = f"trainer.accelerator={trainer_cfg.accelerator} devices={devices} num_nodes={nodes}"
        hint = ""
        if os.environ.get("SLURM_JOB_ID") and devices > 1 and accelerator in ("gpu", "auto"):
            hint = (f"; this SLURM task sees CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '')!r}: each "
                    "task must see all the node's GPUs (srun --gpu-bind=none, which --launcher slurm asks for)")
        raise UsageError(f"{what}: {first_line(exc)}{hint}") from None


def step_mode(trainer_cfg: Any, trainer) -> str:
    """How the training step runs (train/graphed.py): graph on one CUDA device unless trainer.cuda_graphs says no."""
    setting = trainer_cfg.get("cuda_graphs", "auto")
    precision = precision_name(trainer_cfg.precision)
    mode, why_not = graph_mode(setting, trainer.strategy.root_device, trainer.world_size, precision)
    if str(setting).lower() == "true" and mode != "graph":
        raise UsageError(f"trainer.cuda_graphs=true, but {why_not}; use trainer.cuda_graphs=auto or false")
    return mode


def device_label(trainer, threads: int, precision: str) -> str:
    device = trainer.strategy.root_device
    if device.type == "cuda":
        return f"{trainer.world_size}x cuda {device_name(device)} {precision}"
    if device.type == "mps":
        return f"mps {precision}"
    ranks = f"{trainer.world_size}x " if trainer.world_size > 1 else ""
    return f"{ranks}cpu {threads} threads {precision}"


def build_parts(cfg: DictConfig, trainer) -> tuple[torch.nn.Module, Any, dict]:
    """Model (seeded, on device, memory format set) and data for this rank; counts measured on a copy."""
    world, rank = trainer.world_size, trainer.global_rank
    batch = int(cfg.schedule.batch_size)
    split_batch(batch, world)
    device = trainer.strategy.root_device
    memory_format = torch.channels_last if cfg.trainer.channels_last else torch.contiguous_format
    seed_everything(int(cfg.seed))
    model = build_model(cfg.model)
    counts = {"params": count_params(model), "macs": count_macs(model, input_shape(cfg.model.family))}
    accelerator = {"cuda": "gpu"}.get(str(cfg.trainer.accelerator), str(cfg.trainer.accelerator))
    model = distributed.sync_batchnorm(model, cfg.trainer, "cpu" if device.type == "cpu" else accelerator)
    if cfg.trainer.get("activation_checkpointing", False):
        enable_activation_checkpointing(model)  # the same training, bit for bit, in less memory
    model = model.to(device=device, memory_format=memory_format)  # type: ignore[call-overload]  # torch's stubs
    prepare_config(cfg.data, say=lambda line: print(line, file=sys.stderr))  # once per data root, under its lock
    data = build_data(
        cfg.data, batch_size=batch, seed=int(cfg.seed), device=device, memory_format=memory_format,
        world_size=world, rank=rank,
    )
    return model, data, counts


def train(cfg: DictConfig) -> dict:
    """Train (or resume, or report as done) the run `cfg` names; returns its final run.json content.

    Raises UsageError before anything is written when the config or the results folder is bad.
    A NaN/inf loss ends with status failed and the reason (returned, not raised); an interrupt with status
    partial (KeyboardInterrupt re-raised); any other crash with status failed (re-raised as RunFailed).
    """
    validate(cfg)
    check_writable(cfg.results_dir)
    path = run_dir(cfg)
    cfg, pin_note = pin_threads(cfg, path)  # a resumed run computes with the threads it started with
    threads = configure_runtime(cfg.trainer)
    max_iters = int(cfg.schedule.max_iters)
    warning = unused_gpu_warning(str(cfg.trainer.accelerator))
    if warning:
        print(warning, file=sys.stderr, flush=True)
    trainer = build_trainer(cfg.trainer, max_steps=max_iters, root_dir=path)
    if trainer.world_size > 1:
        die_hard()  # under a sweep: a DDP rank whose parent dies stops at once, not in Lightning's SIGTERM dance
    writer = trainer.global_rank == 0

    previous = previous_run(path)
    if previous and previous.get("status") == RunStatus.DONE:  # every rank: none of them trains
        if writer:
            print(f"{path.name}: already done ({previous.get('iteration')}/{previous.get('total_iters')} iterations)")
        return previous

    mode = step_mode(cfg.trainer, trainer)
    model, data, counts = build_parts(cfg, trainer)
    device = device_label(trainer, threads, str(cfg.trainer.precision)) + (GRAPH_TAG if mode == "graph" else "")
    static = static_info(cfg, path, counts["params"], counts["macs"], device, data.train_size)
    static["precision"] = precision_record(str(cfg.trainer.precision))  # the switches as torch reads them now
    folder_info = ("images_checked", "max_pixels", "test_source")  # image folders: what the scan saw
    static.update({k: data.info[k] for k in folder_info if k in data.info})
    static["deterministic"] = {"setting": determinism.enabled(cfg.trainer), **determinism.record()}
    static.update(ranks=trainer.world_size, batch_per_rank=int(cfg.schedule.batch_size) // trainer.world_size,
                  sync_batchnorm=bool(cfg.trainer.get("sync_batchnorm", False)))
    folder = RunFolder(cfg, path, static, writer=writer, progress_mode=str(cfg.trainer.progress))
    with contextlib.ExitStack() as stack:

        def claim() -> dict | None:
            """Rank 0: the run's lock, its folder, and run.json as it is now (another process may have finished it)."""
            path.mkdir(parents=True, exist_ok=True)
            stack.enter_context(run_lock(path))
            folder.create()
            if pin_note:
                folder.log(pin_note)
            return previous_run(path)

        now = distributed.rank_zero_decides(trainer, claim)  # every rank: rank 0's answer, or its error
        if writer or now is not None:
            previous = now
        if previous and previous.get("status") == RunStatus.DONE:  # finished by another process meanwhile
            return previous
        return _fit(cfg, trainer, folder, model, data, previous, mode)


def previous_run(path: Path) -> dict | None:
    """The run.json a previous process left (None when none, or when it is damaged: this run rewrites it)."""
    try:
        return read_run_json(path)
    except ForeignSchema as exc:
        raise UsageError(
            f"run folder {path} was written under schema_version {exc.version} (this tool writes "
            f"{SCHEMA_VERSION}); move it away to train the run again"
        ) from None
    except CorruptFile:
        return None


def _fit(cfg: DictConfig, trainer, folder: RunFolder, model, data, previous: dict | None, mode: str) -> dict:
    ckpt, start = _resume_point(folder)
    if folder.writer:
        for part in (folder.path, (folder.path / CHECKPOINT).parent):  # run.json, config.yaml; a checkpoint
            remove_stale_temps(part, locked=True)  # cut short by a kill: this run holds the folder's lock
        trim_parts(folder.path, start)  # rows past the checkpoint are recomputed; with no checkpoint, all go
        if previous and previous.get("images_per_s"):
            folder.state["images_per_s"] = previous["images_per_s"]
        folder.state["iteration"] = start
    module = TrainModule(
        model,
        data.train,
        data.eval_sets,
        cfg.schedule,
        depth=int(cfg.model.depth),
        arch=str(cfg.model.arch),
        recorder=folder,
        compile_model=bool(cfg.trainer.compile),
        step_mode=mode,
        precision=str(cfg.trainer.precision),
        graph_fallback=str(cfg.trainer.get("cuda_graphs", "auto")).lower() == "auto",
        record_layers=bool(cfg.trainer.get("record_layers", True)),
    )
    folder.write_status(None, RunStatus.RUNNING)
    what = f"resuming at iteration {start}" if ckpt else "starting"
    folder.log(f"{what}: {folder.static['device']}, {data.name}, {folder.static['params']:,} parameters")
    if trainer.world_size > 1:
        bn = "synchronised over the global batch" if folder.static["sync_batchnorm"] else "per rank"
        folder.log(f"DDP: {trainer.world_size} ranks x {folder.static['batch_per_rank']} images (global batch "
                   f"{cfg.schedule.batch_size}), BatchNorm statistics {bn}")
        note = distributed.graph_note(trainer.world_size, trainer.strategy.root_device, cfg.trainer.get("cuda_graphs"))
        if note:
            folder.log(note)
    sigint = signal.getsignal(signal.SIGINT)  # Lightning ignores Ctrl-C after the first; put it back after
    try:
        trainer.fit(module, train_dataloaders=Ticks(), ckpt_path=str(ckpt) if ckpt else None, weights_only=True)
    except RunFailed as exc:
        folder.flush_curves(module.iteration)
        info = folder.write_status(module, RunStatus.FAILED, str(exc))
        folder.log(f"failed: {exc}")
        folder.close()
        return info
    except (KeyboardInterrupt, SystemExit) as exc:  # Lightning turns Ctrl-C into SystemExit(1); SIGTERM too
        _restore_sigint(sigint)
        reason = f"interrupted at iteration {module.iteration}; run the same command to resume"
        if not has_checkpoint(folder.path):  # the rerun starts over: say so, not "resume"
            reason = (f"interrupted at iteration {module.iteration} before its first checkpoint; "
                      f"the same command {RESTARTS.replace('restarts', 'restarts it')}")
        folder.write_status(module, RunStatus.PARTIAL, reason)
        folder.log(reason)
        folder.close()
        raise KeyboardInterrupt(reason) from exc
    except UsageError as exc:  # e.g. a checkpoint that does not fit this run's data
        folder.write_status(module, RunStatus.FAILED, str(exc))
        folder.close()
        raise
    except Exception as exc:
        reason = f"{type(exc).__name__}: {first_line(exc) if str(exc).strip() else ''}"
        folder.write_status(module, RunStatus.FAILED, reason)
        if folder.writer:
            with open(folder.path / "train.log", "a") as handle:
                handle.write(traceback.format_exc())
        folder.close()
        raise RunFailed(reason) from exc
    if module.iteration < int(cfg.schedule.max_iters):  # the loop stopped early without an exception
        info = folder.write_status(module, RunStatus.PARTIAL, f"stopped at iteration {module.iteration}")
        folder.close()
        return info
    if data.ten_crop is not None and folder.state.get("tencrop_top1_error") is None:
        folder.log(f"10-crop testing on {len(data.ten_crop)} validation images")
        folder.state.update(ten_crop_errors(module.model, data.ten_crop, module._forward, module._precision_context))
    info = folder.write_status(module, RunStatus.DONE)
    folder.close()
    evaluated = "test" if info.get("final_test_error") is not None or info.get("final_val_error") is None else "val"
    tencrop = info.get("tencrop_top1_error")
    folder.log(
        f"done: train err {percent(info['final_train_error'])}, "
        f"{evaluated} err {percent(info[f'final_{evaluated}_error'])}"
        + (f", 10-crop top-1/top-5 {percent(tencrop)}/{percent(info['tencrop_top5_error'])}"
           if tencrop is not None else "")
        + f", {info['wall_s']:.0f} s"
    )
    return info


def _resume_point(folder: RunFolder) -> tuple[Path | None, int]:
    """The checkpoint to resume from and its iteration. One that cannot be read (a damaged disk, a copy cut short),
    or whose curve rows are not all on disk, is moved aside and the run starts over: failing every rerun of the
    sweep would not fix it, and resuming would leave a gap in the curves."""
    ckpt = folder.checkpoint_path
    if not ckpt.is_file():
        return None, 0
    try:
        start = checkpoint_iteration(ckpt)
    except UnreadableCheckpoint as exc:
        if not folder.writer:
            raise
        aside = set_aside(ckpt)
        folder.log(f"warning: checkpoint {ckpt} cannot be read ({exc.cause}); kept as {aside.name}, starting over")
        return None, 0
    gaps = missing_windows(folder.path, start, int(folder.cfg.schedule.log_every)) if folder.writer else []
    if gaps and rebuild_parts(folder.path, folder.curves.ids) is not None:  # the checkpoint carries the rows
        folder.log(f"curve rows of iterations {gaps[0]}-{gaps[-1]} were lost; rebuilt from the checkpoint")
        gaps = missing_windows(folder.path, start, int(folder.cfg.schedule.log_every))
    if gaps:
        aside = set_aside(ckpt)
        folder.log(f"warning: curve rows of iterations {gaps[0]}-{gaps[-1]} are missing (a part lost or damaged); "
                   f"kept the checkpoint as {aside.name}, starting over")
        return None, 0
    return ckpt, start


def _restore_sigint(handler: Any) -> None:
    if handler is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)
