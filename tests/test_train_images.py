"""ImageNet nets on a generated JPEG folder: train, curves against iterations, 10-crop errors, exact resume."""

from __future__ import annotations

import pytest
from _image_helpers import SMALL, make_folder
from _train_helpers import run_json, train_interrupted

from degradation.conf import compose, run_dir
from degradation.store.runs import read_curves
from degradation.train.run import train

NET = ["model.family=imagenet", "model.depth=18", "model.width=0.125", "schedule=imagenet_smoke",
       "trainer.accelerator=cpu", "trainer.threads=1", "trainer.progress=none"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("images"))


def _cfg(folder, results, *extra):
    return compose([*NET, "data=imagenet", f"data.root={folder}", "data.num_classes=3", *SMALL,
                    f"results_dir={results}", *extra])


def test_train_records_val_curves_and_ten_crop_errors(folder, tmp_path) -> None:
    info = train(_cfg(folder, tmp_path, "model=plain"))
    assert info["status"] == "done" and info["iteration"] == 6 and info["dataset"] == "imagenet"
    assert info["train_size"] == 18 and info["shortcut"] == "none"
    assert 0 <= info["tencrop_top1_error"] <= 1 and info["tencrop_top5_error"] == 0.0  # 3 classes: top-5 has all
    curves = read_curves(run_dir(_cfg(folder, tmp_path, "model=plain")))
    assert set(curves.split) == {"train", "val"}
    assert sorted(curves[(curves.split == "val") & (curves.metric == "error")].step) == [2, 4, 6]
    assert "10-crop top-1/top-5" in (run_dir(_cfg(folder, tmp_path, "model=plain")) / "train.log").read_text()


def test_interrupted_run_resumes_to_the_uninterrupted_curves(folder, tmp_path, monkeypatch) -> None:
    longer = ["schedule.max_iters=8", "schedule.milestones=[4,6]", "data.workers=2"]
    cfg = _cfg(folder, tmp_path / "cut", *longer)
    train_interrupted(cfg, monkeypatch, at=5)
    assert run_json(run_dir(cfg))["status"] == "partial"
    resumed = train(_cfg(folder, tmp_path / "cut", *longer[:2], "data.workers=0"))  # workers do not matter
    straight = train(_cfg(folder, tmp_path / "straight", *longer))
    a, b = read_curves(run_dir(cfg)), read_curves(run_dir(_cfg(folder, tmp_path / "straight", *longer)))
    assert a.drop(columns=["value", "wall_s"]).equals(b.drop(columns=["value", "wall_s"]))
    assert a.value.to_numpy() == pytest.approx(b.value.to_numpy(), rel=1e-5, abs=1e-6)
    assert resumed["tencrop_top1_error"] == straight["tencrop_top1_error"]
