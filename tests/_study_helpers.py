"""A tiny finished plain/ResNet pair (depth 14, synthetic data, smoke schedule), trained for real and collected."""

from __future__ import annotations

from pathlib import Path

from _train_helpers import TINY

from degradation.conf import compose
from degradation.store.results import collect
from degradation.train.run import train

PAIR = ["model.depth=14", "data.test_size=40"]


def train_pair(results: Path) -> Path:
    for arch in ("plain", "resnet"):
        train(compose([*TINY, f"model={arch}", *PAIR, f"results_dir={results}"]))
    collect(results)
    return results
