"""Figure 7's responses: a hand-written checkpoint of a depth-8 net gives the stds a direct computation gives."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from degradation.analysis import responses as resp
from degradation.analysis.trained import strip_prefix
from degradation.conf import compose, run_id
from degradation.errors import UsageError
from degradation.models import build_model
from degradation.store.runs import CHECKPOINT, CONFIG_FILE, RUN_FILE
from degradation.store.schema import RESPONSE_COLUMNS

TINY = ["model.depth=8", "data=synthetic", "data.train_size=64", "data.test_size=40", "schedule=smoke"]
# The BN after every 3x3 conv of a depth-8 CIFAR net (n = 1), written out by hand, in network order.
BN_NAMES = ["stem.bn", "stage1.0.bn1", "stage1.0.bn2", "stage2.0.bn1", "stage2.0.bn2", "stage3.0.bn1",
            "stage3.0.bn2"]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one thread avoids the thread pool's cost on a shared 2-core machine (seconds -> ms)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def trained_looking(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """Weights and BN statistics far from their initial values, so eval-mode BN really matters."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in model.state_dict().items():
        if value.dtype.is_floating_point:
            noise = torch.randn(value.shape, generator=gen)
            value = noise.abs() + 0.5 if key.endswith("running_var") else noise * (0.3 if "conv" in key else 1.0)
        state[key] = value
    return state


def make_run(results: Path, arch: str = "resnet", status: str = "done", seed: int = 0,
             prefix: str = "model.") -> tuple[Path, dict[str, torch.Tensor]]:
    cfg = compose([f"model={arch}", *TINY, f"results_dir={results}", f"seed={seed}"])
    folder = results / "runs" / run_id(cfg)
    (folder / "checkpoints").mkdir(parents=True)
    OmegaConf.save(cfg, folder / CONFIG_FILE)
    weights = trained_looking(build_model(cfg.model), seed)
    checkpoint = {"state_dict": {prefix + k: v for k, v in weights.items()}, "degradation": {"iteration": 12}}
    torch.save(checkpoint, folder / CHECKPOINT)
    info = {"run_id": run_id(cfg), "status": status, "arch": arch, "depth": 8,
            "shortcut": "none" if arch == "plain" else "A", "dataset": "synthetic", "preset": "smoke", "seed": seed,
            "iteration": 12, "total_iters": 12}
    (folder / RUN_FILE).write_text(json.dumps(info))
    return folder, weights


def direct_stds(folder: Path, weights: dict[str, torch.Tensor]) -> list[float]:
    """Every response tensor of the whole test set kept in memory, then torch.std over all its elements."""
    from degradation.data import build_data

    cfg = OmegaConf.load(folder / CONFIG_FILE)
    model = build_model(cfg.model)
    model.load_state_dict(weights)
    model.eval()
    test = build_data(cfg.data, batch_size=16, seed=0).eval_sets["test"]
    images = torch.cat([x for x, _ in test])
    assert images.shape[0] == 40
    outputs: dict[str, torch.Tensor] = {}
    modules = dict(model.named_modules())
    hooks = [modules[name].register_forward_hook(lambda m, i, o, name=name: outputs.__setitem__(name, o.clone()))
             for name in BN_NAMES]
    with torch.no_grad():
        model(images)
    for hook in hooks:
        hook.remove()
    return [float(outputs[name].double().std()) for name in BN_NAMES]


def test_responses_equal_a_direct_computation_on_a_tiny_net(tmp_path: Path) -> None:
    done, weights = make_run(tmp_path, "resnet")
    plain, plain_weights = make_run(tmp_path, "plain", seed=1)
    make_run(tmp_path, "resnet", status="partial", seed=2)  # unfinished: no responses
    path = resp.compute_responses(tmp_path, device="cpu")
    assert path == tmp_path / "responses.parquet"
    table = pd.read_parquet(path)
    assert list(table.columns) == list(RESPONSE_COLUMNS)
    assert set(table["run_id"]) == {done.name, plain.name}
    for folder, w in ((done, weights), (plain, plain_weights)):
        rows = table[table["run_id"] == folder.name].sort_values("layer_index")
        assert list(rows["layer"]) == BN_NAMES and list(rows["layer_index"]) == list(range(1, 8))
        assert list(rows["std"]) == pytest.approx(direct_stds(folder, w), rel=1e-9)
    assert table[table["run_id"] == plain.name]["seed"].unique().tolist() == [1]


def test_existing_rows_are_kept_and_only_new_runs_computed(tmp_path: Path, monkeypatch) -> None:
    make_run(tmp_path, "resnet")
    first = pd.read_parquet(resp.compute_responses(tmp_path, device="cpu"))
    new, _ = make_run(tmp_path, "plain")
    computed = []
    real = resp.run_responses
    monkeypatch.setattr(resp, "run_responses", lambda d, ids, device: computed.append(d.name) or real(d, ids, device))
    second = pd.read_parquet(resp.compute_responses(tmp_path, device="cpu"))
    assert computed == [new.name]
    kept = second[second["run_id"].isin(first["run_id"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, first, check_dtype=False)


def test_checkpoint_prefixes_are_found_generically() -> None:
    model = build_model({"arch": "resnet", "depth": 8})
    state = model.state_dict()
    for prefix in ("", "model.", "model._orig_mod.", "module.net."):
        wrapped = {prefix + k: v for k, v in state.items()} | {"other.thing": torch.zeros(1)}
        assert list(strip_prefix(wrapped, model)) == list(state)
    with pytest.raises(KeyError, match="no prefix"):
        strip_prefix({"model.x": torch.zeros(1)}, model)


def test_no_finished_run_or_unreadable_checkpoints_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        resp.compute_responses(tmp_path / "nope")
    (tmp_path / "runs").mkdir()
    with pytest.raises(UsageError, match="no finished runs"):
        resp.compute_responses(tmp_path)
    folder, _ = make_run(tmp_path, "resnet", prefix="wrong.")
    torch.save({"state_dict": {"x": torch.zeros(1)}}, folder / CHECKPOINT)
    with pytest.raises(UsageError, match=f"no responses could be computed .*{folder.name}"):
        resp.compute_responses(tmp_path, device="cpu")


def test_plot_computes_missing_responses_and_draws_them(tmp_path: Path, monkeypatch) -> None:
    from degradation.figures import render_all, style

    monkeypatch.setattr(style, "FORMATS", ("png",))
    from degradation.train.curvewriter import CurveWriter

    folder, _ = make_run(tmp_path, "resnet")
    info = json.loads((folder / RUN_FILE).read_text())
    writer = CurveWriter(folder, {k: info[k] for k in ("run_id", "arch", "depth", "shortcut", "dataset", "preset",
                                                       "seed")}, batch_size=16, train_size=64)
    for step in (2, 4, 6, 8, 10, 12):
        writer.add(step, "train", "error", 0.9 - step / 100, step)
    writer.add(12, "test", "error", 0.85, 12)
    writer.flush(12)
    render_all(tmp_path)
    assert (tmp_path / "responses.parquet").is_file()
    figures = json.loads((tmp_path / "figures" / "manifest.json").read_text())["figures"]
    fig7 = next(f for f in figures if f["figure"] == "fig7")
    assert fig7["panels"][0]["labels"] == ["ResNet-8"] and fig7["panels"][0]["lines"][0]["layers"] == 7


def test_a_damaged_responses_table_is_rebuilt(tmp_path: Path, capsys) -> None:
    folder, weights = make_run(tmp_path, "resnet")
    (tmp_path / "responses.parquet").write_bytes(b"garbage")
    table = pd.read_parquet(resp.compute_responses(tmp_path, device="cpu"))
    assert list(table["std"]) == pytest.approx(direct_stds(folder, weights), rel=1e-9)
    assert "recomputing every run" in capsys.readouterr().err
