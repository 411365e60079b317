"""The GPU path on a real CUDA device (skipped without one; benchmarks/gpu_check.sh runs these first).

The captured graph must train exactly like the same step run eagerly, resume to the uninterrupted curves, and
run in bf16; cuDNN is made deterministic here so that two runs can be compared bit for bit.
"""

from __future__ import annotations

import pytest
import torch
from _train_helpers import folder_of, run_json, tiny_cfg, train_interrupted

from degradation.models import cifar_net
from degradation.store.runs import read_curves
from degradation.train.graphed import GraphedStep
from degradation.train.run import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

GPU = ["trainer.accelerator=cuda", "schedule.max_iters=40", "schedule.milestones=[20,30]"]


@pytest.fixture(autouse=True)
def deterministic_cudnn():
    saved = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    yield
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved


def _pair(precision: str) -> tuple[dict, dict]:
    """Weights after 6 steps: the captured graph and the same step run eagerly, from one initialisation."""
    torch.manual_seed(0)
    nets = [cifar_net("resnet", 20).cuda().to(memory_format=torch.channels_last) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    gen = torch.Generator(device="cuda").manual_seed(1)
    batches = [(torch.randn(128, 3, 32, 32, device="cuda", generator=gen).contiguous(memory_format=torch.channels_last),
                torch.randint(0, 10, (128,), device="cuda", generator=gen)) for _ in range(6)]
    states = []
    for net, capture in zip(nets, (True, False), strict=True):
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
        acc = torch.zeros(2, device="cuda")
        step = GraphedStep(net, net, opt, acc, precision=precision, capture=capture)
        for i, (x, y) in enumerate(batches):
            step(x, y, 0.1 if i < 3 else 0.01)
        assert (step.graph is not None) == capture
        states.append({**net.state_dict(), "acc": acc.clone()})
    return states[0], states[1]


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_captured_graph_equals_the_eager_step(precision: str) -> None:
    graphed, eager = _pair(precision)
    for key in eager:
        assert torch.allclose(graphed[key].float(), eager[key].float(), rtol=1e-4, atol=1e-5), key


def test_graph_run_resumes_to_the_uninterrupted_curves(tmp_path, monkeypatch) -> None:
    train_interrupted(tiny_cfg(tmp_path / "stopped", *GPU, "trainer.cuda_graphs=true"), monkeypatch, at=26)
    stopped = folder_of(tmp_path / "stopped", *GPU)
    assert train(tiny_cfg(tmp_path / "stopped", *GPU, "trainer.cuda_graphs=true"))["status"] == "done"
    train(tiny_cfg(tmp_path / "straight", *GPU, "trainer.cuda_graphs=true"))
    a, b = read_curves(stopped), read_curves(folder_of(tmp_path / "straight", *GPU))
    assert a.drop(columns=["wall_s"]).equals(b.drop(columns=["wall_s"]))
    assert "CUDA graph" in run_json(stopped)["device"]


def test_graph_and_eager_runs_give_the_same_curves(tmp_path) -> None:
    train(tiny_cfg(tmp_path / "graph", *GPU, "trainer.cuda_graphs=true"))
    train(tiny_cfg(tmp_path / "eager", *GPU, "trainer.cuda_graphs=false"))
    a, b = read_curves(folder_of(tmp_path / "graph", *GPU)), read_curves(folder_of(tmp_path / "eager", *GPU))
    assert a.drop(columns=["value", "wall_s"]).equals(b.drop(columns=["value", "wall_s"]))
    # fused vs foreach SGD differ in the last bit, which 40 steps can grow enough to flip an image or two
    loss, error = (a.metric == "loss").to_numpy(), (a.metric == "error").to_numpy()
    assert a.value.to_numpy()[loss] == pytest.approx(b.value.to_numpy()[loss], rel=2e-2)
    assert a.value.to_numpy()[error] == pytest.approx(b.value.to_numpy()[error], abs=0.07)


def test_bf16_graph_run_finishes(tmp_path) -> None:
    info = train(tiny_cfg(tmp_path, *GPU, "trainer.precision=bf16-mixed"))
    assert (info["status"], info["iteration"]) == ("done", 40)


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_cuda_graphs_auto_takes_the_graph_path(tmp_path, precision: str) -> None:
    """The default (trainer.cuda_graphs=auto) may fall back to the eager step without failing: assert it did not,
    and that the precision asked for is the one that ran."""
    extra = (*GPU, f"trainer.precision={precision}")
    info = train(tiny_cfg(tmp_path / precision, *extra))
    folder = folder_of(tmp_path / precision, *extra)
    assert (info["status"], info["iteration"]) == ("done", 40)
    assert info["device"].startswith("1x cuda ") and info["device"].endswith(f" {precision}, CUDA graph")
    assert "could not be prepared" not in (folder / "train.log").read_text()
    if precision == "bf16-mixed":  # autocast really on: the fp32 run (same seed, same graph path) differs
        fp32 = (*GPU, "trainer.precision=32-true")
        train(tiny_cfg(tmp_path / "fp32", *fp32))
        a, b = read_curves(folder), read_curves(folder_of(tmp_path / "fp32", *fp32))
        losses = (a.metric == "loss").to_numpy()
        assert not (a.value.to_numpy()[losses] == b.value.to_numpy()[losses]).all()


def test_activation_checkpointing_under_a_captured_graph_changes_nothing(tmp_path) -> None:
    plain = train(tiny_cfg(tmp_path / "plain", *GPU, "trainer.cuda_graphs=true"))
    recomputed = train(tiny_cfg(tmp_path / "ckpt", *GPU, "trainer.cuda_graphs=true",
                                "trainer.activation_checkpointing=true"))
    assert (plain["status"], recomputed["status"]) == ("done", "done")
    a, b = read_curves(folder_of(tmp_path / "plain", *GPU)), read_curves(folder_of(tmp_path / "ckpt", *GPU))
    assert a.drop(columns=["wall_s"]).equals(b.drop(columns=["wall_s"]))


def test_the_step_and_the_stream_never_wait_for_the_gpu() -> None:
    """After capture, 300 iterations (batch stream across epoch boundaries + graph replay) make no host sync."""
    from degradation.data import build_data

    data = build_data({"name": "synthetic", "train_size": 1000, "test_size": 10}, batch_size=128, seed=0,
                      device="cuda", memory_format=torch.channels_last)
    net = cifar_net("resnet", 20).cuda().to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    step = GraphedStep(net, net, opt, torch.zeros(2, device="cuda"), precision="bf16-mixed", capture=True)
    step(*next(data.train), 0.1)  # capture
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for i in range(300):  # 128 x 300 images: 38 epochs of 1000, each a new plan copied to the GPU
            step(*next(data.train), 0.1 if i < 150 else 0.01)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(step.acc).all()


def test_gradient_flow_inside_the_captured_graph_matches_the_eager_step(tmp_path) -> None:
    """Layers recorded by the replayed graph (summed on the device, read per window) equal the eager path's."""
    import pandas as pd

    from degradation.store.runs import LAYERS_DIR, part_paths

    frames = []
    for mode in ("true", "false"):
        extra = [*GPU, f"trainer.cuda_graphs={mode}"]
        train(tiny_cfg(tmp_path / mode, *extra))
        parts = part_paths(folder_of(tmp_path / mode, *extra), LAYERS_DIR)
        frames.append(pd.concat([pd.read_parquet(p) for p in parts]).sort_values(["step", "metric", "layer_index"]))
    graph, eager = (f.reset_index(drop=True) for f in frames)
    assert graph[["step", "layer_index", "metric"]].equals(eager[["step", "layer_index", "metric"]])
    # fused (graph) and foreach (eager) SGD round differently; 40 steps amplify it a little, a bug far more
    assert graph["value"].to_numpy() == pytest.approx(eager["value"].to_numpy(), rel=0.05)
