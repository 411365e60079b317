"""`make demo` draws Figure 1's shape (issue 15, point 5): both plain nets learn, the deeper one stays worse over the
second half by more than the noise, and the deeper ResNet ends at or below the shallower one; and the study tools'
tables and figures come out of it (issue 20), and its report passes the browser checks (issue 30). Slow: it is
the demo itself, with the Makefile's lesion flags (about 7 minutes on 2 CPU cores):
`pytest -m slow tests/test_demo.py`."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from _browser import check_page, chromium, page_problems
from omegaconf import OmegaConf

from degradation.cli import main
from degradation.store.results import load_curves

DEMO = Path(__file__).resolve().parents[1] / "conf" / "schedule" / "demo.yaml"

pytestmark = pytest.mark.slow


def test_the_demo_shows_degradation_like_figure_1(tmp_path) -> None:
    results = tmp_path / "demo"
    args = ["--data", "synthetic", "--preset", "demo", "--depths", "20,56", "--archs", "plain,resnet"]
    assert main(["sweep", *args, "--results", str(results)]) == 0
    curves = load_curves(results)
    train = curves[(curves["split"] == "train") & (curves["metric"] == "error")]
    net = train.assign(net=train["arch"] + "-" + train["depth"].astype(str)).pivot(index="step", columns="net",
                                                                                  values="value")
    final = net.iloc[-1]
    assert final["plain-20"] < 0.30  # plain-20 learns: well below chance (90%)
    assert final["plain-56"] < 0.75  # plain-56 learns too, it does not sit at chance
    second = net[net.index > net.index.max() / 2]
    demo = OmegaConf.load(DEMO)
    window = demo.log_every * demo.batch_size  # images per logging window of the demo
    noise = [2 * math.sqrt(sum(p * (1 - p) / window for p in pair))
             for pair in zip(second["plain-20"], second["plain-56"], strict=True)]
    assert ((second["plain-56"] - second["plain-20"]) > pd.Series(noise, index=second.index)).all()
    assert final["resnet-56"] <= final["resnet-20"]

    lesion = ["--draws", "1", "--max-k", "2", "--images", "250"]  # make demo's coarse lesion
    assert main(["lesion", "--results", str(results), *lesion]) == 0
    assert main(["plot", "--results", str(results)]) == 0
    for table in ("layers.parquet", "lesion.parquet", "summary.md"):
        assert (results / table).is_file(), table
    for figure in ("gradflow", "lesion", "depth", "fig1", "fig6", "fig7"):  # heatmap, lesion, depth curves, paper's
        assert (results / "figures" / f"{figure}.png").is_file(), figure

    assert main(["report", "--results", str(results)]) == 0  # make demo's last step (issue 30)
    page = results / "report.html"
    assert page.stat().st_size < 5e6
    if chromium() is not None:
        assert page_problems(check_page(page, tmp_path / "shots")) == []
