"""summary.md's verdict knows its noise: shown / not shown / inconclusive, every depth in order, finished runs only."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from _figures_helpers import make_results

from degradation.analysis.finals import run_finals
from degradation.analysis.load import load_results
from degradation.analysis.summary import binomial_se, build_summary, step

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


def _cell(label: str, train_pct: float, seeds: int = 1, std: float = 0.0) -> pd.Series:
    """A cell of finals' table as step() reads it: the paper's windows (100 iterations x 128 images)."""
    settings = json.dumps({"schedule.log_every": 100, "schedule.batch_size": 128, "schedule.max_iters": 64000})
    return pd.Series({"label": label, "train_mean": train_pct, "train_std": std, "n_seeds": seeds,
                      "settings": settings})


def test_the_binomial_error_never_falls_below_half_an_image() -> None:
    """At 0% or 100% error p(1-p) is 0; the floor keeps the noise at half an image of the window (12,800 images
    here), so 0.00% vs 0.00% is "within noise" by a margin, not by 0 > 0."""
    half_image = 100 * 0.5 / 12800
    assert binomial_se(0.0, 12800) == pytest.approx(half_image)
    assert binomial_se(100.0, 12800) == pytest.approx(half_image)
    assert binomial_se(50.0, 100) == pytest.approx(5.0)  # sqrt(0.25 / 100) = 5 points
    assert binomial_se(6.0, 12800) == pytest.approx(100 * math.sqrt(0.06 * 0.94 / 12800))
    assert math.isnan(binomial_se(5.0, math.nan)) and math.isnan(binomial_se(5.0, 0))
    both_zero = step(_cell("plain-56", 0.0), _cell("plain-20", 0.0))
    assert both_zero.se == pytest.approx(math.sqrt(2) * half_image)


def test_seeds_that_agree_exactly_still_carry_the_windows_noise() -> None:
    """Three seeds each, no spread: the seed standard error is 0, and a 0.05-point gap would read as "worse"
    without the window's binomial floor (sqrt(2) x 0.21 points here)."""
    deep, shallow = _cell("plain-56", 6.05, seeds=3), _cell("plain-20", 6.00, seeds=3)
    s = step(deep, shallow)
    window = math.sqrt(binomial_se(6.05, 12800) ** 2 + binomial_se(6.00, 12800) ** 2)
    assert s.se == pytest.approx(window) and s.outcome == "within noise"
    spread = step(_cell("plain-56", 8.0, seeds=3, std=2.0), _cell("plain-20", 6.0, seeds=3, std=2.0))
    assert spread.se == pytest.approx(math.sqrt(2 * 2.0**2 / 3))  # the seeds' spread, larger than the window's


def _run(depth: int, seed: int, train: float, test: float, best: float | None, best_step: int, **extra) -> dict:
    """One row of finals' per-run table, as select_runs hands it to cell_stats."""
    return {"dataset": "cifar10", "preset": "paper", "arch": "plain", "shortcut": "none", "depth": depth,
            "variant": "v1", "label": f"plain-{depth}", "network": f"plain {depth}", "differs": "",
            "params": 1000.0 * depth,
            "seed": seed, "run_id": f"p{depth}-s{seed}", "finished": True, "iteration": 64000, "total_iters": 64000,
            "final_test_error_step": 64000, "final_train_error": train, "final_test_error": test,
            "best_test_error": best, "best_test_step": best_step, "warmup": "none", **extra}


def test_cell_stats_are_each_cells_seed_statistics_in_percent() -> None:
    """Mean, sample std (ddof=1: n-1) and min over seeds, in percent; the best point of the best seed; cells in
    order; a cell of one seed has no std."""
    from degradation.analysis.finals import STAT_COLUMNS, cell_stats

    runs = pd.DataFrame([
        _run(56, 1, 0.12, 0.14, 0.13, 50000, iteration=60000, finished=False),
        _run(56, 0, 0.10, 0.12, 0.11, 40000),
        _run(20, 0, 0.05, 0.09, None, 0, params=None),
        _run(32, 0, 0.06, 0.10, 0.095, 30000), _run(32, 1, 0.08, 0.11, 0.09, 20000), _run(32, 2, 0.10, 0.15, 0.1, 10),
    ])
    stats = cell_stats(runs)
    assert list(stats.columns) == STAT_COLUMNS and list(stats.depth) == [20, 32, 56]
    one, three, two = (stats.iloc[i].to_dict() for i in range(3))
    assert one["n_seeds"] == 1 and math.isnan(one["train_std"]) and math.isnan(one["best_point"])
    assert math.isnan(one["params"]) and math.isnan(one["best_point_step"]) and one["train_mean"] == pytest.approx(5.0)
    assert three["train_mean"] == pytest.approx(8.0) and three["train_std"] == pytest.approx(2.0)
    assert three["test_mean"] == pytest.approx(12.0) and three["test_min"] == pytest.approx(10.0)
    assert three["test_std"] == pytest.approx(math.sqrt(((10 - 12) ** 2 + (11 - 12) ** 2 + (15 - 12) ** 2) / 2))
    assert (three["best_point"], three["best_point_step"]) == (pytest.approx(9.0), 20000)
    assert three["seeds"] == [0, 1, 2] and three["run_ids"] == ["p32-s0", "p32-s1", "p32-s2"]
    assert two["train_std"] == pytest.approx(math.sqrt(2) * 1.0) and two["train_min"] == pytest.approx(10.0)
    assert (two["finished"], two["iteration"], two["total_iters"], two["final_step"]) == (False, 60000, 64000, 64000)
    assert (two["label"], two["network"], two["differs"], two["params"], two["warmup"]) == (
        "plain-56", "plain 56", "", 56000.0, "none")
    assert (two["dataset"], two["preset"], two["arch"], two["shortcut"], two["variant"]) == (
        "cifar10", "paper", "plain", "none", "v1")
    assert list(cell_stats(runs.iloc[:0]).columns) == STAT_COLUMNS


def test_seed_noise_needs_two_seeds_of_both_nets() -> None:
    """std/sqrt(n) per net, added in quadrature, only when both nets have at least two seeds; else the windows."""
    window = math.sqrt(binomial_se(8.0, 12800) ** 2 + binomial_se(6.0, 12800) ** 2)
    for deep_n, shallow_n in ((2, 1), (1, 2)):
        s = step(_cell("plain-56", 8.0, seeds=deep_n, std=3.0), _cell("plain-20", 6.0, seeds=shallow_n, std=3.0))
        assert s.se == pytest.approx(window), (deep_n, shallow_n)
    two = step(_cell("plain-56", 8.0, seeds=2, std=3.0), _cell("plain-20", 6.0, seeds=2, std=1.0))
    assert two.se == pytest.approx(math.sqrt(3.0**2 / 2 + 1.0**2 / 2))
    assert binomial_se(50.0, 1) == pytest.approx(50.0)  # one image: sqrt(0.25)
    assert binomial_se(150.0, 100) == binomial_se(100.0, 100)  # rates are clipped to [0, 100]


def test_the_last_window_may_be_short() -> None:
    """max_iters not a multiple of log_every: the final window has the remainder's images; no settings, no noise."""
    from degradation.analysis.summary import _window_images

    short = json.dumps({"schedule.log_every": 100, "schedule.batch_size": 128, "schedule.max_iters": 64050})
    assert _window_images(pd.Series({"settings": short})) == 50 * 128
    assert _window_images(_cell("x", 1.0)) == 100 * 128
    whole = json.dumps({"schedule.log_every": 100, "schedule.batch_size": 128})  # no max_iters: a whole window
    assert _window_images(pd.Series({"settings": whole})) == 100 * 128
    assert math.isnan(_window_images(pd.Series({"settings": None})))
    assert math.isnan(_window_images(pd.Series({"settings": json.dumps({"schedule.log_every": 100})})))
    assert math.isnan(_window_images(pd.Series({"settings": "{not json"})))
    unknown = step(pd.Series({**_cell("a", 2.0), "settings": None}), _cell("b", 1.0))
    assert unknown.se == math.inf and unknown.outcome == "within noise"


def test_a_verdict_needs_both_families() -> None:
    from degradation.analysis.summary import verdict

    assert verdict({}) == ("Degradation cannot be judged: fewer than two depths of plain and ResNet nets have "
                           "finished runs.")
    plain = [step(_cell("plain-56", 9.0), _cell("plain-20", 6.0))]
    assert "fewer than two depths of ResNet nets" in verdict({"plain": plain})


def test_deeper_resnets_that_train_worse_too_are_named_in_the_headline() -> None:
    """The real-photograph CPU preset's first result (README): both families worse with depth. The headline says
    so, and its detail lists every pair in order."""
    from degradation.analysis.summary import verdict

    plain = [step(_cell("plain-56", 62.0), _cell("plain-20", 27.0))]
    worse = [step(_cell("ResNet-56", 16.0), _cell("ResNet-20", 12.0))]
    assert [s.outcome for s in plain + worse] == ["worse", "worse"]
    assert verdict({"plain": plain, "ResNet": worse}) == (
        "Degradation of both families: deeper plain nets and a deeper ResNet train worse, beyond the noise ("
        f"{plain[0].phrase()}; {worse[0].phrase()}).")
    even = [step(_cell("ResNet-56", 12.1), _cell("ResNet-20", 12.0))]
    assert verdict({"plain": plain, "ResNet": even}).startswith(
        "Degradation shown: each deeper plain net trains worse, beyond the noise; no deeper ResNet does (")
