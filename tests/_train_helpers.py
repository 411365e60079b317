"""Shared bits of the training tests: tiny configs and reading a run folder."""

from __future__ import annotations

import json
from pathlib import Path

from degradation.conf import compose, run_dir

ROOT = Path(__file__).resolve().parent.parent

# depth 8, batch 16, 12 iterations, 64 synthetic training images: a whole run in about a second.
TINY = [
    "model=resnet",
    "model.depth=8",
    "data=synthetic",
    "data.train_size=64",
    "data.test_size=32",
    "schedule=smoke",
    "trainer.accelerator=cpu",
    "trainer.threads=1",
    "trainer.progress=none",
]


def tiny(results: Path, *extra: str) -> list[str]:
    return [*TINY, f"results_dir={results}", *extra]


def tiny_cfg(results: Path, *extra: str):
    return compose(tiny(results, *extra))


def folder_of(results: Path, *extra: str) -> Path:
    return run_dir(tiny_cfg(results, *extra))


def run_json(folder: Path) -> dict:
    return json.loads((folder / "run.json").read_text())


def train_interrupted(cfg, monkeypatch, at: int) -> None:
    """train(cfg) stopped by a Ctrl-C right after iteration `at` (its checkpoint, if any, already written)."""
    import pytest

    from degradation.train.module import TrainModule
    from degradation.train.run import train

    original = TrainModule.on_train_batch_end

    def interrupt(self, *args) -> None:
        original(self, *args)
        if self.iteration == at:
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(TrainModule, "on_train_batch_end", interrupt)
        with pytest.raises(KeyboardInterrupt):
            train(cfg)
