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


def _table(rows: list[tuple[str, int, int, str, str, float]]) -> pd.DataFrame:
    """layers.parquet rows: (run_id, step, layer_index, stage, metric, value)."""
    return pd.DataFrame(rows, columns=["run_id", "step", "layer_index", "stage", "metric", "value"])


def _early(run: str, values: dict[int, float], late: float = 100.0) -> list[tuple]:
    """A run whose stem and first-stage layers have grad_norm `values[step]`, its later layers `late`."""
    return [row for step, v in values.items() for row in (
        (run, step, 1, "stem", "grad_norm", v), (run, step, 2, "stage1", "grad_norm", v),
        (run, step, 3, "stage2", "grad_norm", late), (run, step, 4, "fc", "grad_norm", late),
        (run, step, 1, "stem", "update_ratio", late))]


def test_the_grid_is_one_run_and_metric_with_layers_in_network_order() -> None:
    from degradation.analysis.flow import grid

    layers = _table([("a", 4, 2, "stage1", "grad_norm", 2.0), ("a", 2, 2, "stage1", "grad_norm", 1.0),
                     ("a", 2, 1, "stem", "grad_norm", 3.0), ("a", 4, 1, "stem", "grad_norm", 4.0),
                     ("a", 2, 1, "stem", "update_ratio", 9.0), ("b", 2, 1, "stem", "grad_norm", 7.0)])
    g = grid(layers, "a")
    assert list(g.index) == [1, 2] and list(g.columns) == [2, 4]
    assert g.to_numpy().tolist() == [[3.0, 4.0], [1.0, 2.0]]
    assert grid(layers, "a", "update_ratio").to_numpy().tolist() == [[9.0]]


def test_early_norm_averages_the_early_layers_of_the_given_runs_per_window() -> None:
    from degradation.analysis.flow import early_norm

    layers = _table(_early("p1", {2: 1.0, 4: 3.0}) + _early("p2", {2: 3.0, 4: 5.0}) + _early("r", {2: 50.0}))
    assert early_norm(layers, ["p1", "p2"]).to_dict() == {2: 2.0, 4: 4.0}  # later layers, ratios, run r left out
    imagenet = _table([("i", 2, 1, "stem", "grad_norm", 1.0), ("i", 2, 2, "layer1", "grad_norm", 3.0),
                       ("i", 2, 3, "layer2", "grad_norm", 50.0)])
    assert early_norm(imagenet, ["i"]).to_dict() == {2: 2.0}  # ImageNet nets' first stage is layer1


@pytest.mark.parametrize(("plain", "word"), [(0.4, "vanishing"), (0.5, "comparable"), (1.0, "comparable"),
                                             (2.0, "comparable"), (2.5, "exploding")])
def test_the_early_verdict_names_a_factor_two_either_way(plain: float, word: str) -> None:
    from degradation.analysis.flow import early_verdict

    layers = _table(_early("p", {2: plain * 10, 4: plain * 10, 6: 1000.0}) + _early("r", {2: 10.0, 4: 10.0, 6: 10.0}))
    layers = layers[~((layers.run_id == "p") & (layers.step == 6))]  # window 6: the residual run's only
    ratio, verdict = early_verdict(layers, ["p"], ["r"])
    assert (ratio, verdict) == (pytest.approx(plain), word)


def test_the_early_verdict_is_the_median_over_common_windows_with_a_nonzero_residual_norm() -> None:
    from degradation.analysis.flow import early_verdict

    layers = _table(_early("p", {2: 1.0, 4: 1.0, 6: 30.0, 8: 5.0, 10: 7.0}) + _early("r", {2: 1.0, 4: 1.0, 6: 1.0,
                                                                                           8: 0.0, 12: 1.0}))
    assert early_verdict(layers, ["p"], ["r"]) == (pytest.approx(1.0), "comparable")  # median of 1, 1, 30
    assert early_verdict(_table(_early("p", {2: 1.0}) + _early("r", {4: 1.0})), ["p"], ["r"])[1] == "no common windows"
    nan, _ = early_verdict(_table(_early("p", {2: 1.0}) + _early("r", {2: 0.0})), ["p"], ["r"])
    assert nan != nan


def test_each_layer_is_named_with_its_stage_and_a_window_of_one_step_reads() -> None:
    torch.manual_seed(0)
    model = cifar_net("resnet", 8)
    flow = LayerFlow(model)
    assert flow.stages == ["stem"] + ["stage1"] * 2 + ["stage2"] * 2 + ["stage3"] * 2 + ["fc"]
    assert flow.read(1) == []  # nothing accumulated yet
    torch.nn.functional.cross_entropy(model(torch.randn(2, 3, 32, 32)), torch.tensor([0, 1])).backward()
    flow.accumulate(0.1)
    assert flow.read(0) == []  # an empty window: no division by zero
    rows = flow.read(1)
    assert len(rows) == 16 and rows[1][1:4] == ("stage1.0.conv1", "stage1", "grad_norm")
    assert rows[0][4] == pytest.approx(model.stem.conv.weight.grad.norm().item(), rel=1e-5)
