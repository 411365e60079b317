"""The training step and its bookkeeping, as a LightningModule that owns its batch stream.

Why the module owns the stream: Lightning prefetches a batch ahead of the step, so a stream it iterated
would sit one batch past the checkpoint. Lightning iterates `Ticks` (plain integers) instead, and the step
pulls its batch from the stream itself; the stream's position in a checkpoint is then exactly the step's.

Nothing in the step reads the device: the training error and loss are summed on the device and read once
per logging window (all-reduced under DDP), where the NaN check, the warm-up switch, evaluation (sharded over
the ranks, train/distributed.py) and checkpointing happen. On one CUDA device the step is a replayed CUDA
graph (train/graphed.py); elsewhere it runs eagerly through Lightning's optimizer wrapper. Either way the
module ends the fit itself at `stop_at` (the graphed step bypasses the wrapper that counts Lightning's global_step).
"""

from __future__ import annotations

import math
import random
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from typing import Any, Protocol

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from degradation.errors import RunFailed, first_line
from degradation.train import distributed
from degradation.train.graphed import GraphedStep
from degradation.train.layers import LayerFlow
from degradation.train.schedule import Schedule


class Ticks:
    """What Lightning iterates: one integer per step, endless; the batches come from the module's stream."""

    def __iter__(self) -> Iterator[int]:
        tick = 0
        while True:
            yield tick
            tick += 1


class Recorder(Protocol):
    """Where the module reports (rank zero writes files; other ranks and the benchmark do nothing)."""

    def window(self, module: TrainModule, iteration: int, rows: list[tuple[str, str, float]], evaluated: bool) -> None:
        ...

    def checkpoint(self, module: TrainModule, iteration: int) -> None:
        ...

    def graph_abandoned(self, message: str) -> None:
        """The step left the CUDA graph for the eager path: say so, and stop calling the run graphed."""
        ...


class NullRecorder:
    def window(self, module: TrainModule, iteration: int, rows: list[tuple[str, str, float]], evaluated: bool) -> None:
        pass

    def checkpoint(self, module: TrainModule, iteration: int) -> None:
        pass

    def graph_abandoned(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)


def _rng_state() -> dict:
    """Every global generator, as plain types (checkpoints load with weights_only=True)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    try:
        import numpy as np

        legacy: Any = np.random.get_state()  # the tuple form
        kind, keys, pos, has_gauss, cached = legacy
        state["numpy"] = (kind, torch.from_numpy(keys.astype("int64")), pos, has_gauss, cached)
    except ImportError:
        pass
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        _set_cuda_rng_states(state["cuda"])
    if "numpy" in state:
        import numpy as np

        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, keys.numpy().astype("uint32"), pos, has_gauss, cached))


def _set_cuda_rng_states(states: list) -> None:
    """One saved state per device that is visible now. A run saved on 8 GPUs may resume where one is visible (a
    sweep shows each run one GPU): the states of devices not visible here are dropped, not an IndexError that
    would fail every retry of a valid checkpoint. (No step of a run draws from the CUDA generators; they are
    kept for whoever adds one.)"""
    for index in range(min(len(states), torch.cuda.device_count())):
        torch.cuda.set_rng_state(states[index], index)


class TrainModule(pl.LightningModule):
    """SGD on one network along the iteration schedule; windows, evaluations and checkpoints on the way.

    model: the network (its state_dict keys are `model.*` in the checkpoint).
    stream: endless iterator of on-device batches with state_dict/load_state_dict.
    eval_sets: split -> iterable of (x, y) with len() = images.
    sched: the schedule config (lr, momentum, weight_decay, nesterov, log_every, eval_every, checkpoint_every).
    step_mode: eager | graph (captured CUDA graph) | emulate (the graph path uncaptured, for tests on a CPU).
    graph_fallback: when preparing the graph fails (trainer.cuda_graphs=auto), train on with the eager step.
    stop_at: the iteration the fit ends at (default the schedule's max_iters; the benchmark stops earlier).
    arch: the net's family (plain | resnet), for which nets warm up by default.
    record_layers: sum each weighted layer's gradient norm and update ratio on the device at every step and
        read them per window into `layer_rows` (train/layers.py; trainer.record_layers).
    """

    _forward: Callable[[torch.Tensor], torch.Tensor]  # the model, compiled or not (kept out of the submodules)

    def __init__(
        self,
        model: nn.Module,
        stream: Any,
        eval_sets: dict[str, Any],
        sched: Any,
        depth: int,
        recorder: Recorder | None = None,
        compile_model: bool = False,
        step_mode: str = "eager",
        precision: str = "32-true",
        stop_at: int | None = None,
        graph_fallback: bool = False,
        arch: str = "resnet",
        record_layers: bool = False,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.model = model
        self.stream = stream
        self.eval_sets = eval_sets
        self.sched = sched
        self.schedule = Schedule(sched, depth, arch)
        self.recorder: Recorder = recorder or NullRecorder()
        self.max_iters = int(sched.max_iters)
        self.stop_at = self.max_iters if stop_at is None else int(stop_at)
        if step_mode not in ("eager", "graph", "emulate"):
            raise ValueError(f"step_mode {step_mode!r}: eager, graph or emulate")
        self.step_mode, self.precision, self.graph_fallback = step_mode, precision, graph_fallback
        self._graphed: GraphedStep | None = None
        self.flow = LayerFlow(model) if record_layers else None
        self.layer_rows: list[tuple[int, str, str, str, float]] = []  # the last window's, for the recorder
        self.log_every = int(sched.log_every)
        self.eval_every = int(sched.eval_every)
        self.checkpoint_every = int(sched.checkpoint_every)
        # A compiled forward is kept out of the module tree so checkpoint keys stay `model.*`.
        self.__dict__["_forward"] = torch.compile(model) if compile_model else model  # not a submodule: no copy
        self.iteration = 0
        self.lr_now = self.schedule.lr(0)
        self._acc: torch.Tensor | None = None  # [sum of batch losses, misclassified images] of this window
        self._window_steps = 0
        self._window_images = 0
        self.warmup_ended_now = False  # this window ended the warm-up (for the recorder's log line)
        self.last: dict[str, float | None] = {"train_error": None, "train_loss": None, "test_error": None}
        self.last_eval: dict[str, tuple[float, float]] = {}
        self.best_test: tuple[float, int] | None = None
        self.wall_base = 0.0
        self._t0 = time.perf_counter()
        self.session = {"images": 0.0, "train_s": 0.0}
        self._mark = time.perf_counter()

    # ---- optimisation -------------------------------------------------------------------------------------
    def configure_optimizers(self) -> torch.optim.Optimizer:
        s = self.sched
        return torch.optim.SGD(
            self.model.parameters(),
            lr=self.lr_now,
            momentum=float(s.momentum),
            weight_decay=float(s.weight_decay),
            nesterov=bool(s.nesterov),
        )

    def training_step(self, tick: Any, tick_idx: int) -> None:
        x, y = next(self.stream)
        self.lr_now = self.schedule.lr(self.iteration)
        if self.step_mode == "eager":
            self._eager_step(x, y)
        else:
            if self._graphed is None:  # here, not earlier: after Lightning has restored a checkpoint
                if self.flow is not None:
                    self.flow.sums(self.device)  # before capture: the graph holds its address
                self._graphed = GraphedStep(
                    self.model, self._forward, self._optimizer().optimizer, self._window_sums(),
                    precision=self.precision, capture=self.step_mode == "graph", flow=self.flow,
                )
            try:
                self._graphed(x, y, self.lr_now)
            except Exception as exc:
                if not self.graph_fallback or self._graphed.ready:
                    raise
                self._fall_back_to_eager(exc)
                self._eager_step(x, y)
        self._window_steps += 1
        self._window_images += y.shape[0]
        self.iteration += 1

    def _optimizer(self) -> Any:
        """The one optimizer (Lightning types `optimizers()` as one or a list)."""
        return self.optimizers()

    def _eager_step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        opt = self._optimizer()
        for group in opt.param_groups:
            group["lr"] = self.lr_now
        logits = self._forward(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if self.flow is not None:
            self.flow.accumulate(self.lr_now)
        opt.step()
        with torch.no_grad():
            self._window_sums().add_(torch.stack((loss.detach().float(), (logits.argmax(1) != y).sum().float())))

    def _fall_back_to_eager(self, exc: Exception) -> None:
        """A graph that cannot be captured here (an op or torch build without capture support) must not cost the
        run: the model and optimizer are as they were, so the eager step takes over from this iteration."""
        first = first_line(exc, 200) if str(exc).strip() else ""
        message = (f"warning: the CUDA graph could not be prepared ({type(exc).__name__}: {first}); training on "
                   "with the eager step (trainer.cuda_graphs=false skips the attempt)")
        self.step_mode, self._graphed = "eager", None
        self.recorder.graph_abandoned(message)

    def _window_sums(self) -> torch.Tensor:
        """The window's accumulator: one tensor for the whole fit (a captured graph holds its address)."""
        if self._acc is None:
            self._acc = torch.zeros(2, device=self.device)
        return self._acc

    # ---- windows, evaluation, checkpoints -----------------------------------------------------------------
    def on_train_start(self) -> None:
        if self._acc is not None:  # restored before the module reached its device
            self._acc = self._acc.to(self.device, torch.float32)
        if self.flow is not None and self.flow.acc is not None:
            self.flow.acc = self.flow.acc.to(self.device, torch.float32)
        self._t0 = time.perf_counter()
        self._mark = self._t0

    def wall_s(self) -> float:
        return self.wall_base + time.perf_counter() - self._t0

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        it = self.iteration
        final = it >= self.max_iters
        if it >= self.stop_at:
            self.trainer.should_stop = True
        if it % self.log_every and not final:
            return
        self.layer_rows = self.flow.read(self._window_steps) if self.flow is not None else []
        train_error, train_loss = self._read_window()
        now = time.perf_counter()
        self.session["train_s"] += now - self._mark
        if not (math.isfinite(train_loss) and math.isfinite(train_error)):
            raise RunFailed(f"training loss is {train_loss} in the window ending at iteration {it}")
        self.last.update(train_error=train_error, train_loss=train_loss)
        rows = [("train", "error", train_error), ("train", "loss", train_loss), ("train", "lr", self.lr_now)]
        self.warmup_ended_now = self.schedule.warmup.observe(train_error, it)
        evaluated = final or it % self.eval_every == 0
        if evaluated:
            for split, (error, loss) in self.evaluate().items():
                rows += [(split, "error", error), (split, "loss", loss)]
        self.recorder.window(self, it, rows, evaluated)
        if evaluated or it % self.checkpoint_every == 0:
            self.recorder.checkpoint(self, it)
        self._mark = time.perf_counter()

    def _read_window(self) -> tuple[float, float]:
        """The one device read per window: mean error and mean batch loss over all ranks."""
        acc = self._window_sums()
        counts = torch.tensor([float(self._window_steps), float(self._window_images)], device=acc.device)
        sums = torch.cat((acc, counts))
        if self._trainer is not None and self.trainer.world_size > 1:
            sums = self.trainer.strategy.reduce(sums, reduce_op="sum")
        loss_sum, wrong, steps, images = sums.tolist()
        acc.zero_()
        self._window_steps = self._window_images = 0
        self.session["images"] += images
        return wrong / max(images, 1.0), loss_sum / max(steps, 1.0)

    @torch.no_grad()
    def evaluate(self) -> dict[str, tuple[float, float]]:
        """Error and mean loss over each whole evaluation set (BN in eval mode).

        Sharded over the ranks in the one-process batch boundaries and reduced once (train/distributed.py): the
        numbers are those of one process, exactly. One device read for all sets."""
        world, rank = self._ranks()
        was_training = self.model.training
        self.model.eval()
        try:
            results = distributed.evaluate_sets(
                self.model, self._forward, self.eval_sets, rank, world, self._precision_context
            )
        finally:
            self.model.train(was_training)
        self.last_eval = results
        if "val" in results:
            self.last["val_error"] = results["val"][0]
        if "test" in results:
            error = results["test"][0]
            self.last["test_error"] = error
            if self.best_test is None or error < self.best_test[0]:
                self.best_test = (error, self.iteration)
        return results

    def _ranks(self) -> tuple[int, int]:
        """(world size, global rank) of the fit; (1, 0) outside one (the benchmark, tests)."""
        if self._trainer is None or self.trainer.world_size == 1:
            return 1, 0
        return self.trainer.world_size, self.trainer.global_rank

    def _precision_context(self):
        """The autocast the training step runs under (bf16-mixed), fresh for each use."""
        return self.trainer.precision_plugin.forward_context() if self._trainer is not None else nullcontext()

    # ---- what a checkpoint carries beyond weights and optimizer -------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["degradation"] = {
            "iteration": self.iteration,
            "lr_now": self.lr_now,
            "stream": self.stream.state_dict(),
            "warmup": self.schedule.warmup.state_dict(),
            "window": {"acc": self._acc, "steps": self._window_steps, "images": self._window_images,
                       "layers": self.flow.acc if self.flow is not None else None},
            "last": dict(self.last),
            "last_eval": {k: list(v) for k, v in self.last_eval.items()},
            "best_test": list(self.best_test) if self.best_test else None,
            "wall_s": self.wall_s(),
            "rng": _rng_state(),
        }
        history = getattr(self.recorder, "curve_history", None)
        rows = history() if history is not None else None
        if rows is not None:  # the curve rows so far: a part damaged later is rebuilt from them (train/curves.py)
            checkpoint["degradation"]["curves"] = rows

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint["degradation"]
        self.iteration = int(state["iteration"])
        self.lr_now = float(state["lr_now"])
        self.stream.load_state_dict(state["stream"])
        self.schedule.warmup.load_state_dict(state["warmup"])
        self._acc = state["window"]["acc"]  # restored before the first step, so before any graph holds _acc
        self._window_steps = int(state["window"]["steps"])
        self._window_images = int(state["window"]["images"])
        if self.flow is not None and state["window"].get("layers") is not None:
            self.flow.acc = state["window"]["layers"]
        self.last = dict(state["last"])
        self.last_eval = {k: (float(v[0]), float(v[1])) for k, v in state["last_eval"].items()}
        self.best_test = (float(state["best_test"][0]), int(state["best_test"][1])) if state["best_test"] else None
        self.wall_base = float(state["wall_s"])
        _set_rng_state(state["rng"])
        if state.get("curves") is not None and hasattr(self.recorder, "restore_curve_history"):
            self.recorder.restore_curve_history(state["curves"])

    def summary(self) -> dict:
        """The numbers run.json reports about training so far."""
        train_s, images = self.session["train_s"], self.session["images"]
        val = self.last_eval.get("val")
        return {
            "iteration": self.iteration,
            "final_train_error": self.last["train_error"],
            "final_test_error": self.last["test_error"],
            "final_val_error": val[0] if val else None,
            "best_test_error": self.best_test[0] if self.best_test else None,
            "best_test_step": self.best_test[1] if self.best_test else None,
            **self.schedule.warmup.report(),
            "wall_s": self.wall_s(),
            "images_per_s": images / train_s if train_s > 0 else None,
            **(self.stream.report() if hasattr(self.stream, "report") else {}),  # image files refused (bad_images)
        }
