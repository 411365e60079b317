"""Gradient flow per layer: recorded during training, in layers/ parts, exact across resume, collected, switchable."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from _train_helpers import folder_of, run_json, tiny_cfg, train_interrupted

from degradation.models import cifar_net
from degradation.store.results import collect, load_layers
from degradation.store.runs import LAYERS_DIR, part_paths
from degradation.train.graphed import GraphedStep
from degradation.train.layers import LayerFlow
from degradation.train.run import train


def _layers(folder) -> pd.DataFrame:
    parts = part_paths(folder, LAYERS_DIR)
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True).sort_values(
        ["step", "metric", "layer_index"], kind="stable").reset_index(drop=True)


def test_flow_matches_a_direct_computation() -> None:
    torch.manual_seed(0)
    model = cifar_net("plain", 8)
    flow = LayerFlow(model)
    assert len(flow.names) == 8 and flow.names[0] == "stem.conv" and flow.names[-1] == "fc"  # 6n+2 weighted layers
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    expected = []
    for _ in range(2):
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        flow.accumulate(0.1)
        expected.append([(m.weight.grad.norm().item(), 0.1 * m.weight.grad.norm().item() / m.weight.norm().item())
                         for m in (dict(model.named_modules())[n] for n in flow.names)])
    rows = flow.read(2)
    got = {(r[0], r[3]): r[4] for r in rows}
    for i in range(8):
        assert got[(i + 1, "grad_norm")] == pytest.approx((expected[0][i][0] + expected[1][i][0]) / 2, rel=1e-5)
        assert got[(i + 1, "update_ratio")] == pytest.approx((expected[0][i][1] + expected[1][i][1]) / 2, rel=1e-5)
    assert flow.acc.abs().sum().item() == 0  # reset after the read


def test_graph_path_records_the_same_as_the_eager_step() -> None:
    """The flow lives inside the (emulated) graph step: same numbers as the eager accumulate."""
    torch.manual_seed(0)
    eager, graphed = cifar_net("resnet", 8), cifar_net("resnet", 8)
    graphed.load_state_dict(eager.state_dict())
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    flows = []
    for model, graph in ((eager, False), (graphed, True)):
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        flow = LayerFlow(model)
        acc = torch.zeros(2)
        if graph:
            flow.sums(torch.device("cpu"))
            GraphedStep(model, model, opt, acc, precision="32-true", capture=False, flow=flow)(x, y, 0.1)
        else:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            flow.accumulate(0.1)
            opt.step()
        flows.append(flow.read(1))
    assert [r[:4] for r in flows[0]] == [r[:4] for r in flows[1]]
    assert [r[4] for r in flows[0]] == pytest.approx([r[4] for r in flows[1]], rel=1e-4)


def test_run_writes_layers_and_resume_is_exact(tmp_path, monkeypatch) -> None:
    straight = tmp_path / "straight"
    train(tiny_cfg(straight))
    folder = folder_of(straight)
    whole = _layers(folder)
    assert sorted(whole["step"].unique()) == [2, 4, 6, 8, 10, 12]  # every logging window (log_every=2)
    assert set(whole["metric"]) == {"grad_norm", "update_ratio"}
    assert whole["layer_index"].max() == 8 and (whole["value"] > 0).all()
    assert list(whole[whole.layer_index == 1]["stage"].unique()) == ["stem"]

    resumed = tmp_path / "resumed"
    train_interrupted(tiny_cfg(resumed), monkeypatch, at=6)  # checkpoint at 4: windows 6 recomputed
    train(tiny_cfg(resumed))
    assert run_json(folder_of(resumed))["status"] == "done"
    again = _layers(folder_of(resumed)).drop_duplicates(["step", "metric", "layer_index"], keep="last")
    again = again.reset_index(drop=True)
    assert again.drop(columns=["value"]).equals(whole.drop(columns=["value"]))
    assert again["value"].to_numpy() == pytest.approx(whole["value"].to_numpy(), rel=1e-5)

    collect(straight)
    table = load_layers(straight)
    assert len(table) == len(whole) and table["run_id"].nunique() == 1


def test_switch_off(tmp_path) -> None:
    train(tiny_cfg(tmp_path, "trainer.record_layers=false"))
    folder = folder_of(tmp_path, "trainer.record_layers=false")
    assert folder == folder_of(tmp_path)  # a recording switch does not change what the run computes
    assert part_paths(folder, LAYERS_DIR) == []
