"""summary.md's verdict knows its noise: shown / not shown / inconclusive, every depth in order, finished runs only."""

from __future__ import annotations

from pathlib import Path

from _figures_helpers import make_results

from degradation.analysis.finals import run_finals
from degradation.analysis.load import load_results
from degradation.analysis.summary import build_summary

RESNETS = [{"arch": "resnet", "depth": 20, "train": 0.05, "test": 0.0875},
           {"arch": "resnet", "depth": 56, "train": 0.03, "test": 0.07}]


def summary(folder: Path, specs: list[dict]) -> str:
    return build_summary(run_finals(*load_results(make_results(folder, specs))))


def headline(text: str) -> str:
    """The first paragraph after the first section's heading (above it: the title and the depth figure)."""
    paragraphs = text.split("\n\n")
    return paragraphs[[i for i, p in enumerate(paragraphs) if p.startswith("## ")][0] + 1]


def test_one_seed_and_a_tiny_gap_is_inconclusive(tmp_path: Path) -> None:
    # real-shaped: the paper's windows of 100 iterations x 128 images; the deeper net 0.05 points worse
    paper = {"dataset": "cifar10", "preset": "paper", "total": 64000, "log_every": 100, "eval_every": 1000}
    specs = [{**paper, "arch": "plain", "depth": 20, "train": 0.0600, "test": 0.095},
             {**paper, "arch": "plain", "depth": 56, "train": 0.0605, "test": 0.096}]
    specs += [{**paper, **r} for r in RESNETS]
    text = summary(tmp_path, specs)
    assert headline(text).startswith("Inconclusive: the plain nets' depth gaps are not all larger than the noise")
    assert "plain-56 vs plain-20: +0.05 ± 0.30 points, within noise" in text
    assert "Degradation shown" not in text and "Rule:" in text


def test_seed_spread_is_the_noise_when_there_are_seeds(tmp_path: Path) -> None:
    specs = [{"arch": "plain", "depth": 20, "seed": s, "train": t, "test": 0.1, "log_every": 1000, "total": 64000}
             for s, t in enumerate((0.04, 0.08, 0.06))]
    specs += [{"arch": "plain", "depth": 56, "seed": s, "train": t, "test": 0.1, "log_every": 1000, "total": 64000}
              for s, t in enumerate((0.06, 0.10, 0.08))]  # 2 points worse, but seeds spread by 2 points
    text = summary(tmp_path, specs + RESNETS)
    assert "plain-56 vs plain-20: +2.00 ± 1.63 points, within noise" in text  # sqrt(2**2/3 + 2**2/3)
    assert headline(text).startswith("Inconclusive")


def test_every_consecutive_depth_is_compared_not_only_the_ends(tmp_path: Path) -> None:
    plain = [{"arch": "plain", "depth": d, "train": t, "test": t + 0.03}
             for d, t in ((20, 0.06), (32, 0.12), (44, 0.08), (56, 0.14))]  # 44 trains better than 32
    text = summary(tmp_path, plain + RESNETS)
    assert headline(text).startswith("Degradation not shown: a deeper plain net trains better than the one before")
    assert "plain-44 ends 4.00 ±" in text and "below plain-32" in text
    assert "plain-32 ends 6.00 ±" in text and "above plain-20" in text


def test_clear_gaps_at_every_depth_are_shown(tmp_path: Path) -> None:
    plain = [{"arch": "plain", "depth": d, "train": t, "test": t + 0.03}
             for d, t in ((20, 0.06), (32, 0.10), (44, 0.14), (56, 0.18))]
    assert headline(summary(tmp_path, plain + RESNETS)).startswith("Degradation shown: each deeper plain net")


def test_unfinished_runs_never_decide_the_headline(tmp_path: Path) -> None:
    plain = [{"arch": "plain", "depth": 20, "train": 0.06, "test": 0.09},
             {"arch": "plain", "depth": 32, "train": 0.10, "test": 0.13},
             {"arch": "plain", "depth": 56, "train": 0.02, "test": 0.05, "status": "partial", "stop": 200}]
    text = summary(tmp_path / "a", plain + RESNETS)
    assert headline(text).startswith("Degradation shown")  # from 20 and 32; the partial plain-56 does not count
    assert "Unfinished, so left out of the verdict: plain-56" in text

    unfinished = [{**s, "status": "partial", "stop": 200} for s in plain[:2] + RESNETS]
    text = summary(tmp_path / "b", unfinished)
    assert headline(text).startswith("No finished runs yet: degradation cannot be judged")
