"""A user's own network joins the study with two files of their own and no edit to the package (issue 26).

The network and its YAML are written into a temporary folder outside the package; `--config-dir` finds them.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from degradation.cli import main
from degradation.conf import CONFIG_DIR_ENV, compose, run_id

TOY = '''
"""A residual net whose branches are scaled by a learned scalar that starts at 0 (ReZero-like), no BN."""
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.alpha = nn.Parameter(torch.zeros(()))

    def skip(self, x):
        return x

    def forward(self, x):
        return x + self.alpha * torch.relu(self.conv(x))


class Toy(nn.Module):
    def __init__(self, depth, num_classes, width):
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1)
        self.stage1 = nn.Sequential(*[Block(width) for _ in range(max(1, (depth - 2) // 6))])
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.fc(self.stage1(self.stem(x)).mean((2, 3)))


def build(depth, num_classes, family="cifar", width=8):
    if depth > 100:
        raise ValueError(f"toy nets stop at 100 layers, not {depth}")
    return Toy(depth, num_classes, width)


def not_a_module(depth, num_classes):
    return "a string"


def wrong_shape(depth, num_classes):
    return nn.Conv2d(3, num_classes, 3)
'''


def write_plugin(folder: Path, name: str = "toy", target: str = "toynet.build", extra: str = "") -> Path:
    (folder / "model").mkdir(parents=True, exist_ok=True)
    (folder / "toynet.py").write_text(TOY)
    (folder / "model" / f"{name}.yaml").write_text(textwrap.dedent(f"""\
        _target_: {target}
        name: {name}
        label: Toy
        depth: 20
        num_classes: ${{data.num_classes}}
        {extra}"""))
    return folder


@pytest.fixture(autouse=True)
def fresh_import(monkeypatch) -> None:
    """Each test's toynet is its own file: forget the one an earlier test imported."""
    monkeypatch.delitem(sys.modules, "toynet", raising=False)


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv(CONFIG_DIR_ENV, "")  # restored after the test: --config-dir sets it for the runs it starts
    monkeypatch.syspath_prepend(str(tmp_path / "plug"))
    return write_plugin(tmp_path / "plug")


SMOKE = ["--data", "synthetic", "--preset", "smoke", "--", "schedule.max_iters=4", "schedule.milestones=[2,3]",
         "schedule.eval_every=2", "schedule.checkpoint_every=2", "schedule.warmup.max_iters=2"]


def test_a_plugin_network_is_swept_collected_and_drawn(plugin_dir, tmp_path, capsys) -> None:
    results = tmp_path / "results"
    code = main(["sweep", "--config-dir", str(plugin_dir), "--archs", "plain,resnet,toy", "--depths", "8,14",
                 "--results", str(results), "--jobs", "2", *SMOKE])
    assert code == 0, capsys.readouterr().err
    assert main(["status", "--results", str(results)]) == 0
    status = capsys.readouterr().out
    assert status.count("toy") >= 2 and "6 done" in status
    curves = pd.read_parquet(results / "curves.parquet")
    assert set(curves["arch"]) == {"plain", "resnet", "toy"}
    runs = pd.read_parquet(results / "runs.parquet")
    toy = runs[runs["arch"] == "toy"]
    assert sorted(toy["depth"]) == [8, 14] and set(toy["arch_label"]) == {"Toy"} and set(toy["shortcut"]) == {"none"}
    assert main(["plot", "--results", str(results)]) == 0
    manifest = json.loads((results / "figures" / "manifest.json").read_text())
    text = json.dumps(manifest)
    assert "Toy-8" in text and "Toy-14" in text  # in Figure 6's fourth panel and the depth figure's families
    fig6 = next(f for f in manifest["figures"] if f["figure"] == "fig6")
    assert fig6["panels"][-1]["title"] == "your networks: Toy" and len(fig6["panels"]) == 4


def _refused(argv: list[str], capsys, results: Path) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert not (results / "runs").exists()  # nothing trained, nothing created
    return err


@pytest.mark.parametrize(("target", "depth", "message"), [
    ("nosuchpackage.build", 20, "does not import"),
    ("toynet.build", 110, "toy nets stop at 100 layers, not 110"),
    ("toynet.not_a_module", 20, "returned str, not a torch nn.Module"),
    ("toynet.wrong_shape", 20, "logits of shape"),
])
def test_bad_plugins_are_one_line_and_exit_2(tmp_path, monkeypatch, capsys, target, depth, message) -> None:
    monkeypatch.setenv(CONFIG_DIR_ENV, "")
    folder = write_plugin(tmp_path / "plug", name="bad", target=target)
    monkeypatch.syspath_prepend(str(folder))
    results = tmp_path / "results"
    err = _refused(["train", "--config-dir", str(folder), "model=bad", f"model.depth={depth}", "data=synthetic",
                    "schedule=smoke", f"results_dir={results}"], capsys, results)
    assert message in err
    err = _refused(["sweep", "--config-dir", str(folder), "--archs", "bad", "--depths", str(depth), "--results",
                    str(results), "--data", "synthetic", "--preset", "smoke"], capsys, results)
    assert message in err


def test_a_mistyped_plugin_name_is_answered_with_the_choices(plugin_dir, tmp_path, capsys) -> None:
    results = tmp_path / "results"
    err = _refused(["sweep", "--config-dir", str(plugin_dir), "--archs", "toi", "--results", str(results)],
                   capsys, results)
    assert err.endswith("did you mean toy?") and "preact" in err


def test_the_run_id_follows_the_factory_source(plugin_dir, monkeypatch) -> None:
    monkeypatch.setenv(CONFIG_DIR_ENV, str(plugin_dir))
    overrides = ["model=toy", "model.depth=8", "data=synthetic"]
    first = compose(overrides)
    assert first.model.arch == "toy" and run_id(first).startswith("toy-8-synthetic-")
    assert run_id(compose(overrides)) == run_id(first)  # the same source: the same run folder
    (plugin_dir / "toynet.py").write_text(TOY + "\n# edited\n")
    assert run_id(compose(overrides)) != run_id(first)  # an edited network is a new variant
    moved = compose([*overrides, f"results_dir={plugin_dir}"])
    assert "source_file" in moved.model  # recorded to load the trained net later, but not a result key
    assert run_id(moved) == run_id(compose(overrides))


def test_the_config_dir_must_exist(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv(CONFIG_DIR_ENV, "")
    err = _refused(["sweep", "--config-dir", str(tmp_path / "nope"), "--archs", "toy"], capsys, tmp_path)
    assert "no such folder" in err
