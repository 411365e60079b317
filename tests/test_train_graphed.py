"""The CUDA-graph training step, run uncaptured on the CPU (trainer.cuda_graphs=emulate): same training as the
eager step, warm-up leaves no trace, a resumed run equals an uninterrupted one, and the mode is chosen right."""

from __future__ import annotations

import pytest
import torch
from _train_helpers import folder_of, run_json, tiny_cfg, train_interrupted

from degradation.errors import UsageError
from degradation.models import cifar_net
from degradation.store.runs import read_curves
from degradation.train.graphed import GraphedStep, graph_mode
from degradation.train.run import train

LONGER = ["schedule.max_iters=40", "schedule.milestones=[20,30]"]


def _sgd(model: torch.nn.Module) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)


def _batches(count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(3)
    return [(torch.randn(8, 3, 32, 32, generator=gen), torch.randint(0, 10, (8,), generator=gen)) for _ in range(count)]


def test_graphed_step_trains_like_plain_sgd() -> None:
    """Fused SGD with a device lr, static buffers and warm-up/restore: the same weights as torch's SGD loop."""
    torch.manual_seed(0)
    eager = cifar_net("resnet", 8)
    graphed = cifar_net("resnet", 8)
    graphed.load_state_dict(eager.state_dict())
    eager_opt, acc = _sgd(eager), torch.zeros(2)
    step = GraphedStep(graphed, graphed, _sgd(graphed), acc, precision="32-true", capture=False)
    lrs = [0.1, 0.1, 0.01, 0.01, 0.001]
    expected = torch.zeros(2)
    for (x, y), lr in zip(_batches(len(lrs)), lrs, strict=True):
        for group in eager_opt.param_groups:
            group["lr"] = lr
        logits = eager(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        eager_opt.zero_grad(set_to_none=True)
        loss.backward()
        eager_opt.step()
        expected += torch.stack((loss.detach(), (logits.argmax(1) != y).sum().float()))
        step(x, y, lr)
    for (name, a), b in zip(eager.state_dict().items(), graphed.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), rtol=1e-5, atol=1e-6), name
    counters = [v for k, v in graphed.state_dict().items() if k.endswith("num_batches_tracked")]
    assert counters and all(int(c) == len(lrs) for c in counters)  # warm-up iterations not counted
    assert torch.allclose(acc, expected, rtol=1e-5)


def test_warmup_before_capture_leaves_no_trace() -> None:
    """The warm-up iterations run real updates; everything they touch is put back before the first step."""
    torch.manual_seed(1)
    model = cifar_net("plain", 8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    acc = torch.tensor([5.0, 7.0])
    opt = _sgd(model)
    step = GraphedStep(model, model, opt, acc, precision="32-true", capture=False)
    x, y = _batches(1)[0]
    step._prepare(x, y)  # warm-up and restore only, no step
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert torch.equal(acc, torch.tensor([5.0, 7.0]))
    assert all(torch.count_nonzero(s["momentum_buffer"]) == 0 for s in opt.state.values())
    assert all(group["fused"] and isinstance(group["lr"], torch.Tensor) for group in opt.param_groups)


def test_emulated_graph_run_matches_the_eager_run(tmp_path) -> None:
    """Through train(): the curves of the graph path equal the eager path's (up to fused-kernel rounding)."""
    eager = tmp_path / "eager"
    graphed = tmp_path / "graphed"
    train(tiny_cfg(eager, "trainer.cuda_graphs=false"))
    train(tiny_cfg(graphed, "trainer.cuda_graphs=emulate"))
    assert folder_of(eager, "trainer.cuda_graphs=false").name == folder_of(graphed, "trainer.cuda_graphs=emulate").name
    a, b = read_curves(folder_of(eager)), read_curves(folder_of(graphed))
    assert a.drop(columns=["value", "wall_s"]).equals(b.drop(columns=["value", "wall_s"]))
    assert a.value.to_numpy() == pytest.approx(b.value.to_numpy(), rel=1e-4, abs=1e-5)
    assert run_json(folder_of(graphed))["iteration"] == run_json(folder_of(eager))["iteration"] == 12


def test_emulated_graph_run_resumes_to_the_uninterrupted_curves(tmp_path, monkeypatch) -> None:
    """Interrupted after a checkpoint and resumed (warm-up and capture again), the graph path gives identical curves."""
    graph = ["trainer.cuda_graphs=emulate", *LONGER]
    train_interrupted(tiny_cfg(tmp_path / "stopped", *graph), monkeypatch, at=26)  # past the checkpoint at 24
    stopped = folder_of(tmp_path / "stopped", *graph)
    assert run_json(stopped)["status"] == "partial"
    assert train(tiny_cfg(tmp_path / "stopped", *graph))["status"] == "done"
    assert "resuming at iteration 24" in (stopped / "train.log").read_text()
    train(tiny_cfg(tmp_path / "straight", *graph))
    a, b = read_curves(stopped), read_curves(folder_of(tmp_path / "straight", *graph))
    assert a.drop(columns=["wall_s"]).equals(b.drop(columns=["wall_s"]))


@pytest.mark.parametrize(
    ("setting", "device", "world", "precision", "mode"),
    [
        ("auto", "cuda", 1, "32-true", "graph"),
        ("auto", "cuda", 1, "bf16-mixed", "graph"),
        ("auto", "cpu", 1, "32-true", "eager"),
        ("auto", "cuda", 2, "32-true", "eager"),
        ("auto", "cuda", 1, "16-mixed", "eager"),
        (False, "cuda", 1, "32-true", "eager"),
        ("emulate", "cpu", 1, "32-true", "emulate"),
    ],
)
def test_graph_mode_choice(setting, device, world, precision, mode) -> None:
    assert graph_mode(setting, torch.device(device), world, precision)[0] == mode


def test_cuda_graphs_true_without_cuda_is_one_clear_error(tmp_path) -> None:
    with pytest.raises(UsageError, match="trainer.cuda_graphs=true, but the device is cpu"):
        train(tiny_cfg(tmp_path, "trainer.cuda_graphs=true"))
    assert not (tmp_path / "runs").exists()


def test_bad_cuda_graphs_value_is_refused(tmp_path) -> None:
    with pytest.raises(UsageError, match="choose auto, true, false or emulate"):
        train(tiny_cfg(tmp_path, "trainer.cuda_graphs=maybe"))


def test_activation_checkpointing_gives_the_same_run(tmp_path) -> None:
    """trainer.activation_checkpointing only trades memory for compute: identical curves, same run id."""
    graph = ["trainer.cuda_graphs=emulate", "model.depth=14"]
    train(tiny_cfg(tmp_path / "plain", *graph))
    train(tiny_cfg(tmp_path / "ckpt", *graph, "trainer.activation_checkpointing=true"))
    plain, ckpt = folder_of(tmp_path / "plain", *graph), folder_of(tmp_path / "ckpt", *graph)
    assert plain.name == ckpt.name
    assert read_curves(plain).drop(columns=["wall_s"]).equals(read_curves(ckpt).drop(columns=["wall_s"]))


def test_bf16_graph_path_runs_and_stays_near_fp32(tmp_path) -> None:
    """bf16-mixed through the graph path (CPU autocast here): it finishes, and its curves are those of a bf16 run."""
    bf16 = ["trainer.precision=bf16-mixed"]
    graphed = train(tiny_cfg(tmp_path / "graph", *bf16, "trainer.cuda_graphs=emulate"))
    eager = train(tiny_cfg(tmp_path / "eager", *bf16, "trainer.cuda_graphs=false"))
    assert (graphed["status"], eager["status"]) == ("done", "done")
    a = read_curves(folder_of(tmp_path / "graph", *bf16))
    b = read_curves(folder_of(tmp_path / "eager", *bf16))
    assert a.drop(columns=["value", "wall_s"]).equals(b.drop(columns=["value", "wall_s"]))
    assert a.value.to_numpy() == pytest.approx(b.value.to_numpy(), rel=2e-2, abs=2e-2)
    # and bf16 was really used: the same run in fp32 differs (were autocast silently off, they would be equal)
    train(tiny_cfg(tmp_path / "fp32", "trainer.cuda_graphs=emulate"))
    fp32 = read_curves(folder_of(tmp_path / "fp32"))
    losses = (a.metric == "loss").to_numpy()
    assert not (a.value.to_numpy()[losses] == fp32.value.to_numpy()[losses]).all()
    assert graphed["device"].endswith("bf16-mixed") and graphed["config"]["trainer"]["precision"] == "bf16-mixed"


def test_a_graph_that_cannot_be_captured_falls_back_to_the_eager_step(tmp_path, monkeypatch) -> None:
    """cuda_graphs=auto: a failed capture (here: no CUDA at all) leaves a warning and exactly the eager run."""
    import degradation.train.run as run_mod

    monkeypatch.setattr(run_mod, "graph_mode", lambda *args: ("graph", None))
    info = train(tiny_cfg(tmp_path / "fallback"))
    monkeypatch.undo()
    train(tiny_cfg(tmp_path / "eager", "trainer.cuda_graphs=false"))
    folder = folder_of(tmp_path / "fallback")
    assert info["status"] == "done" and "CUDA graph" not in run_json(folder)["device"]
    assert "warning: the CUDA graph could not be prepared" in (folder / "train.log").read_text()
    a, b = read_curves(folder), read_curves(folder_of(tmp_path / "eager"))
    assert a.drop(columns=["wall_s"]).equals(b.drop(columns=["wall_s"]))


def test_cuda_graphs_true_does_not_fall_back(tmp_path, monkeypatch) -> None:
    import degradation.train.run as run_mod

    monkeypatch.setattr(run_mod, "graph_mode", lambda *args: ("graph", None))
    with pytest.raises(Exception, match="(?i)cuda|torch"):
        train(tiny_cfg(tmp_path, "trainer.cuda_graphs=true"))
    assert run_json(folder_of(tmp_path))["status"] == "failed"
