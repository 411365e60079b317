"""Table 6 and summary.md are computed from the parquet: final (not best) errors, seed statistics, statements."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from _figures_helpers import make_results, paper_like

from degradation.analysis.finals import run_finals
from degradation.analysis.load import load_results
from degradation.analysis.summary import build_summary, write_summary
from degradation.figures.table6 import build_table6, write_table6


def finals_of(folder: Path) -> pd.DataFrame:
    return run_finals(*load_results(folder))


def row(table: pd.DataFrame, network: str) -> pd.Series:
    return table[table["network"] == network].iloc[0]


def test_table6_values_equal_seed_statistics_of_the_final_test_errors(tmp_path: Path) -> None:
    folder = make_results(tmp_path, paper_like())
    md, csv = write_table6(finals_of(folder), folder)
    table = pd.read_csv(csv)
    curves = pd.read_parquet(folder / "curves.parquet")
    test = curves[(curves["split"] == "test") & (curves["metric"] == "error")]
    final = test.sort_values("step").groupby("run_id").tail(1).set_index("run_id")["value"] * 100
    runs = pd.read_parquet(folder / "runs.parquet").set_index("run_id")
    for (arch, depth), ids in runs.groupby(["arch", "depth"]).groups.items():
        ours = final[list(ids)]
        r = table[(table["arch"] == arch) & (table["depth"] == depth)].iloc[0]
        assert r["n_seeds"] == len(ours)
        assert r["final_test_error_mean"] == pytest.approx(ours.mean())
        assert r["final_test_error_best_seed"] == pytest.approx(ours.min())
        if len(ours) > 1:
            assert r["final_test_error_std"] == pytest.approx(ours.std(ddof=1))
        else:
            assert math.isnan(r["final_test_error_std"])
        assert r["params"] == runs.loc[ids[0], "params"]
    r110 = row(table, "ResNet-110")
    assert (r110["n_seeds"], r110["final_test_error_mean"]) == (3, pytest.approx(6.6))
    text = md.read_text()
    assert "| ResNet-110 | 1,727,962 (1.73M) | 3 | 6.60 ± 0.20 | 6.40 |" in text
    assert list(table["network"][:2]) == ["plain-20", "ResNet-20"]  # plain beside residual, by depth


def test_table6_reports_the_final_error_not_the_best_test_point(tmp_path: Path) -> None:
    folder = make_results(tmp_path, [{"arch": "resnet", "depth": 20, "train": 0.05, "test": 0.09, "dip": 0.07}])
    table, _ = build_table6(finals_of(folder))
    r = row(table, "ResNet-20")
    assert r["final_test_error_mean"] == pytest.approx(9.0) and r["final_step"] == 240
    assert r["best_test_point_error"] == pytest.approx(7.0) and r["best_test_point_step"] == 120
    md = (write_table6(finals_of(folder), folder)[0]).read_text()
    assert "best test point % (chosen on test; not a result)" in md and "| 7.00 @ 120 |" in md


def test_table6_compares_cifar10_with_the_paper_and_says_plain_has_no_number(tmp_path: Path) -> None:
    specs = [{**s, "dataset": "cifar10", "preset": "paper"} for s in paper_like()]
    table, _ = build_table6(finals_of(make_results(tmp_path, specs)))
    assert row(table, "ResNet-56")["difference"] == pytest.approx(6.97 - 6.97)
    assert row(table, "ResNet-20")["paper_error"] == 8.75
    assert row(table, "ResNet-110")["difference"] == pytest.approx(6.6 - 6.61)  # against the paper's mean
    assert "best of 5" in row(table, "ResNet-110")["paper"]
    plain = row(table, "plain-56")
    assert math.isnan(plain["paper_error"]) and math.isnan(plain["difference"]) and "none" in plain["paper"]


def test_table6_on_synthetic_data_computes_no_difference(tmp_path: Path) -> None:
    folder = make_results(tmp_path, paper_like())
    table, _ = build_table6(finals_of(folder))
    assert table["difference"].isna().all()
    assert "no difference is computed" in write_table6(finals_of(folder), folder)[0].read_text()


def test_summary_statement_is_computed_and_follows_the_data(tmp_path: Path) -> None:
    specs = [{"arch": "plain", "depth": 20, "train": 0.06, "test": 0.095},
             {"arch": "plain", "depth": 56, "train": 0.101, "test": 0.135},
             {"arch": "resnet", "depth": 20, "train": 0.05, "test": 0.0875},
             {"arch": "resnet", "depth": 56, "train": 0.038, "test": 0.0697}]
    text = build_summary(finals_of(make_results(tmp_path / "a", specs)))
    # one seed: the noise is the binomial standard error of the last windows (10 x 128 images each)
    se = 100 * math.hypot(math.sqrt(0.06 * 0.94 / 1280), math.sqrt(0.101 * 0.899 / 1280))
    assert f"plain-56 ends 4.10 ± {se:.2f} points above plain-20 in training error" in text
    assert "ResNet-56 vs ResNet-20: -1.20 ± 0.81 points, within noise in training error" in text
    assert text.startswith("# Summary") and "Degradation shown" in text
    assert "At depth 56, plain-56 ends 6.30 ± 1.00 points above ResNet-56" in text
    assert "synthetic data, not CIFAR-10" in text and "Rule: a deeper net is called worse" in text

    specs[1] = {"arch": "plain", "depth": 56, "train": 0.03, "test": 0.08}  # now the deeper plain net is better
    text = build_summary(finals_of(make_results(tmp_path / "b", specs)))
    se = 100 * math.hypot(math.sqrt(0.06 * 0.94 / 1280), math.sqrt(0.03 * 0.97 / 1280))
    assert f"plain-56 ends 3.00 ± {se:.2f} points below plain-20 in training error" in text
    assert "Degradation not shown" in text and "Degradation shown" not in text


def test_summary_uses_the_last_training_window_and_names_unfinished_and_failed_runs(tmp_path: Path) -> None:
    specs = [{"arch": "plain", "depth": 20, "train": 0.06, "test": 0.095},
             {"arch": "plain", "depth": 56, "train": 0.10, "test": 0.13, "status": "partial", "stop": 200},
             {"arch": "resnet", "depth": 20, "train": 0.05, "test": 0.0875, "status": "failed", "stop": 40}]
    folder = make_results(tmp_path, specs)
    path = write_summary(finals_of(folder), folder)
    text = path.read_text()
    # plain-56 stopped at 200: its last window is in the final 25% of its schedule, at the requested value
    assert "plain-56 ends 4.00 ± 1.07 points above plain-20 in training error" in text
    assert "(plain-56 unfinished: not final, not used for the verdict)" in text
    assert "Unfinished, so left out of the verdict: plain-56" in text
    assert "plain-56 seed 0 is unfinished (partial, 200/240" in text
    assert "ResNet-20 seed 0 failed (nan loss); not used" in text
    assert "Degradation cannot be judged: fewer than two depths of plain and ResNet nets have finished runs." in text


def test_several_seeds_give_mean_and_std_in_the_summary(tmp_path: Path) -> None:
    specs = [{"arch": "plain", "depth": 20, "seed": s, "train": 0.05 + 0.01 * s, "test": 0.09} for s in range(3)]
    specs += [{"arch": "plain", "depth": 56, "train": 0.10, "test": 0.13}]
    text = build_summary(finals_of(make_results(tmp_path, specs)))
    assert "| plain-20 | 6.00 ± 1.00 | 9.00 ± 0.00 | 3 | yes |" in text
    se = 100 * math.hypot(math.sqrt(0.06 * 0.94 / 1280), math.sqrt(0.10 * 0.90 / 1280))  # plain-56 has one seed
    assert f"plain-56 ends 4.00 ± {se:.2f} points above plain-20 in training error" in text
