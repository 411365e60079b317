"""`degradation report` (issue 30): one self-contained page of a study, checked as HTML and in headless Chromium,
and the study as TensorBoard event files.

The study is real but tiny: plain and ResNet nets of 8 and 14 layers trained for 12 iterations on synthetic data
(about a second each), one more seed of plain-14 stopped by Ctrl-C at iteration 4 (unfinished), and one run the
sweep recorded as failed before it logged anything. Set DEGRADATION_SCREENSHOTS=<folder> to keep the browser's
screenshots (docs/report.png is the 1280 px one).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import warnings
from pathlib import Path

import pandas as pd
import pytest
from _browser import check_page, chromium, page_problems
from _figures_helpers import make_results
from _train_helpers import tiny_cfg, train_interrupted

from degradation.analysis.finals import run_finals
from degradation.analysis.load import load_results
from degradation.analysis.summary import judge
from degradation.cli import main
from degradation.conf import compose, run_id
from degradation.report import gaps, provenance, ratios, training
from degradation.report.html import data_uri, figure_png, markdown
from degradation.report.page import REPORT_FILE, write_report
from degradation.store.results import collect
from degradation.store.runs import record_failure, runs_root

FAILED_REASON = "exit code 1: CUDA error: an illegal memory access"
NETS = (["model=plain"], ["model=plain", "model.depth=14"], [], ["model.depth=14"])  # plain/ResNet, 8 and 14


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """Four finished tiny runs, an unfinished seed and a failed run, collected; read-only."""
    from degradation.train.run import train

    results = tmp_path_factory.mktemp("study")
    for extra in NETS:
        train(tiny_cfg(results, *extra))
    with pytest.MonkeyPatch.context() as patch:
        train_interrupted(tiny_cfg(results, "model=plain", "model.depth=14", "seed=1"), patch, at=4)
    failed = runs_root(results) / "resnet-14-A-synthetic-smoke-s1-00000000"
    failed.mkdir(parents=True)
    record_failure(failed, {"run_id": failed.name, "arch": "resnet", "depth": 14, "shortcut": "A",
                            "dataset": "synthetic", "preset": "smoke", "seed": 1}, FAILED_REASON)
    collect(results)
    return results


@pytest.fixture(scope="module")
def report(study: Path, tmp_path_factory) -> Path:
    """The study's report, written once (figures drawn first) into a copy of the study."""
    copy = tmp_path_factory.mktemp("reported") / "study"
    shutil.copytree(study, copy)
    written = write_report(copy)
    assert written[-1] == copy / REPORT_FILE
    return written[-1]


def test_the_page_holds_every_section_and_names_failed_and_unfinished_runs(report: Path) -> None:
    text = report.read_text()
    for ident in ("verdict", "figures", "tables", "runs", "training", "ratios", "bench", "provenance"):
        assert f'<section id="{ident}">' in text, ident
    assert "1 failed" in text and "1 unfinished" in text  # the header's count
    assert "resnet-14-A-synthetic-smoke-s1-00000000" in text and FAILED_REASON in text
    assert re.search(r"unfinished \(partial, 4/12 iterations\): plain-14 seed 1", text)
    assert text.index("Not in the verdict") > text.index('id="verdict-text"')  # named, below the verdict
    assert "Table 6" in text and "train.log" in text
    head = text.index('id="verdict-text"')
    assert head < text.index('<section id="figures">')  # the verdict comes before everything it rests on
    assert "Degradation" in text[head:head + 2000] or "Inconclusive" in text[head:head + 2000]


def test_the_page_is_one_file_that_asks_the_network_for_nothing(report: Path) -> None:
    text = report.read_text()
    sources = re.findall(r'(?:src|href)="([^"]*)"', text)
    assert sources and all(s.startswith(("data:image/png;base64,", "#")) for s in sources)
    assert not re.search(r"url\(|@import|https?://", text.split("<body>")[0])  # nothing fetched by the style
    assert "default-src 'none'" in text  # the policy forbids what a future edit might add
    images = re.findall(r'<img src="data:image/png', text)
    manifest = json.loads((report.parent / "figures" / "manifest.json").read_text())
    # every figure render_all drew, plus the gap plot, loss/lr and the update/weight heatmaps
    assert len(images) == len(manifest["figures"]) + 3
    assert report.stat().st_size < 5e6


def test_the_gap_plot_draws_the_verdicts_own_steps(tmp_path: Path) -> None:
    """Hand-made results whose plain nets degrade well beyond the noise and whose ResNets improve: the plot's rows
    are the summary's steps, with the summary's outcomes."""
    plain = ((20, 0.06), (32, 0.10), (44, 0.15))
    specs = [{"arch": "plain", "depth": d, "train": t, "test": t + 0.04} for d, t in plain]
    specs += [{"arch": "resnet", "depth": d, "train": t, "test": t + 0.04} for d, t in ((20, 0.06), (32, 0.03))]
    curves, runs = load_results(make_results(tmp_path, specs))
    judged = judge(run_finals(curves, runs), "synthetic", "demo")
    rows = gaps.rows(judged)
    assert [(r["pair"], r["outcome"]) for r in rows] == [
        ("plain-32 vs plain-20", "worse"), ("plain-44 vs plain-32", "worse"), ("ResNet-32 vs ResNet-20", "better")]
    assert rows[0]["gap"] == pytest.approx(4.0) and 0 < rows[0]["se"] < 2.0  # 10% vs 6%; 1280 images a window
    assert judged.head.startswith("Degradation shown")
    fig = gaps.draw(judged, "t")
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["ResNet: ResNet-32 vs ResNet-20", "plain: plain-44 vs plain-32", "plain: plain-32 vs plain-20"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # laid out: no "axes sizes collapsed to zero"
        assert figure_png(fig).startswith(b"\x89PNG")


def test_loss_and_lr_mark_the_schedules_drops_and_every_run(study: Path) -> None:
    curves, runs = load_results(study)
    judged = judge(run_finals(curves, runs), "synthetic", "smoke")
    fig, entry = training.draw(judged.selected, curves, runs, "t")
    assert entry["drops"] == [6, 9]  # conf/schedule/smoke.yaml's milestones
    assert entry["warmup_ends"] == []  # no warm-up below 110 layers
    assert sorted(line["label"] for line in entry["lines"]) == ["ResNet-14", "ResNet-8", "plain-14", "plain-8"]
    assert all(line["points"] == 6 for line in entry["lines"])  # 12 iterations, a window every 2
    lr_axis = fig.axes[1]
    drops = [line.get_xdata()[0] for line in lr_axis.get_lines()
             if line.get_linestyle() == ":" and len(line.get_xdata())]
    assert drops == [6, 9]  # drawn where the lr drops


def test_the_update_ratio_heatmaps_are_the_recorded_networks(study: Path) -> None:
    curves, runs = load_results(study)
    judged = judge(run_finals(curves, runs), "synthetic", "smoke")
    layers = pd.read_parquet(study / "layers.parquet")
    fig, entry = ratios.draw(judged.selected, layers, "t")
    assert sorted(entry["panels"]) == ["ResNet-14", "ResNet-8", "plain-14", "plain-8"]
    image = fig.axes[0].get_images()[0].get_array()
    assert image.shape[0] == 8  # plain-8: 7 convs and the fc, in network order
    _, empty = ratios.draw(judged.selected, None, "t")
    assert empty["panels"] == []


def test_each_runs_command_line_trains_that_run_again(study: Path) -> None:
    """The provenance's command, composed again, gives the very run id of the folder it names."""
    _, runs = load_results(study)
    commands = dict(provenance.commands(runs))
    checked = 0
    for rid, command in commands.items():
        if not command.startswith("degradation train "):
            assert rid.endswith("00000000")  # the failed run never recorded its settings
            continue
        overrides = command.removeprefix("degradation train ").split()
        assert run_id(compose(overrides)) == rid, command
        checked += 1
    assert checked == 5


def test_bench_results_are_drawn_when_bench_parquet_exists(study: Path, tmp_path: Path) -> None:
    copy = tmp_path / "study"
    shutil.copytree(study, copy)
    pd.DataFrame({"arch": ["resnet", "resnet"], "depth": [20, 56], "device": ["cpu", "cpu"], "batch_size": [128, 128],
                  "tool_images_per_s": [300.0, 110.0], "bare_images_per_s": [310.0, 112.0],
                  "ratio": [0.968, 0.982]}).to_parquet(copy / "bench.parquet")
    text = write_report(copy)[-1].read_text()
    bench = text[text.index('<section id="bench">'):text.index('<section id="provenance">')]
    assert bench.count('<img src="data:image/png') == 1
    (copy / "bench.parquet").write_bytes(b"not parquet")  # a damaged one costs its plot, not the page
    text = write_report(copy)[-1].read_text()
    assert "No bench results" in text


def test_a_second_report_reuses_fresh_figures_and_redraws_stale_ones(report: Path) -> None:
    fig = report.parent / "figures" / "fig1.png"
    before = fig.stat().st_mtime_ns
    assert write_report(report.parent) == [report]  # nothing newer than the figures: only the page
    assert fig.stat().st_mtime_ns == before
    os.utime(report.parent / "runs.parquet")  # collected again since
    assert fig in write_report(report.parent)


def test_the_report_draws_pngs_and_keeps_the_pdfs_plot_wrote_current(report: Path, tmp_path: Path) -> None:
    """The page inlines PNGs only: a report draws no new PDF (they are `plot`'s, for papers), yet one that `plot`
    wrote is redrawn with its PNG, never left showing older results."""
    copy = tmp_path / "study"
    shutil.copytree(report.parent, copy)
    figures = copy / "figures"
    assert sorted(figures.glob("*.png")) and not sorted(figures.glob("*.pdf"))
    (figures / "fig1.pdf").write_bytes(b"an older plot's PDF")
    os.utime(copy / "runs.parquet")  # collected again since: the figures are drawn again
    written = write_report(copy)
    assert figures / "fig1.pdf" in written and (figures / "fig1.pdf").read_bytes()[:4] == b"%PDF"
    assert [p.name for p in figures.glob("*.pdf")] == ["fig1.pdf"]
    entry = next(e for e in json.loads((figures / "manifest.json").read_text())["figures"] if e["figure"] == "fig1")
    assert entry["files"] == ["fig1.png", "fig1.pdf"]


def test_markdown_tables_lists_and_images_become_html_and_paths_never_links() -> None:
    text = "# T\n\n| a | b |\n|---|---|\n| 1 | `x<y` |\n\n- one\n- two\n\n![alt](figures/depth.png)\n\nend **bold**"
    html = markdown(text)
    assert "<h2>T</h2>" in html and "<td><code>x&lt;y</code></td>" in html and "<li>two</li>" in html
    assert "depth.png" not in html and "<strong>bold</strong>" in html


def test_report_of_a_missing_folder_is_one_line(tmp_path: Path, capsys) -> None:
    assert main(["report", "--results", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: results folder") and err.count("\n") == 1


def test_the_cli_prints_the_pages_path(report: Path, capsys) -> None:
    assert main(["report", "--results", str(report.parent)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"report: {report.absolute()}"


# ---- in a real browser -------------------------------------------------------------------------------------
def test_the_page_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    if chromium() is None:
        pytest.skip("chromium not installed (apt-get install chromium); the page is not checked in a browser")
    shots = Path(os.environ.get("DEGRADATION_SCREENSHOTS") or tmp_path)
    seen = check_page(report, shots)
    assert len(seen["images"]) == report.read_text().count("<img ") > 5
    assert page_problems(seen) == []
    assert seen[1280]["verdict"][1] < 800  # the verdict's bottom edge on the first screen
    assert (shots / "report-1280.png").stat().st_size > 10_000


def test_the_browser_checks_catch_a_bad_page(tmp_path: Path) -> None:
    """The checks can fail: a blank image, a page wider than the screen, a verdict below the first screen and an
    image fetched from elsewhere are each reported."""
    if chromium() is None:
        pytest.skip("chromium not installed (apt-get install chromium); the page is not checked in a browser")
    import io

    from PIL import Image

    blank = io.BytesIO()
    Image.new("RGB", (60, 40), "white").save(blank, format="PNG")
    page = tmp_path / "bad.html"
    page.write_text(f'<!doctype html><body><img alt="blank" src="{data_uri(blank.getvalue())}">'
                    '<div style="width:2000px;height:900px">wide and tall</div><p id="verdict-text">verdict</p>'
                    '<img alt="remote" src="http://127.0.0.1:9/x.png"></body>')
    problems = "\n".join(page_problems(check_page(page, tmp_path)))
    assert "image 'blank'" in problems and "image 'remote'" in problems
    assert "horizontal scroll at 1280 px" in problems and "horizontal scroll at 390 px" in problems
    assert "the verdict is not on the first screen" in problems
    assert "request leaves the page: http://127.0.0.1:9/x.png" in problems


# ---- TensorBoard ---------------------------------------------------------------------------------------------
def test_tensorboard_export_writes_one_run_per_run_id_with_hparams(study: Path, tmp_path: Path, capsys) -> None:
    pytest.importorskip("tensorboard", reason="tensorboard not installed (pip install 'degradation[tensorboard]')")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    copy = tmp_path / "study"
    shutil.copytree(study, copy)
    for _ in range(2):  # a second export replaces the first
        assert main(["tensorboard", "--results", str(copy)]) == 0
    assert "browse them with: tensorboard --logdir" in capsys.readouterr().out
    _, runs = load_results(copy)
    folders = sorted(p.name for p in (copy / "tb").iterdir())
    assert folders == sorted(runs["run_id"])
    done = runs[runs["status"] == "done"].iloc[0]
    events = EventAccumulator(str(copy / "tb" / done["run_id"]), size_guidance={"scalars": 0})
    events.Reload()
    tags = events.Tags()["scalars"]
    assert [e.step for e in events.Scalars("error/train")] == [2, 4, 6, 8, 10, 12]
    assert {"loss/train", "lr/train", "error/test", "final/train_error"} <= set(tags)
    assert any(t.startswith("update_ratio/001_") for t in tags) and any(t.startswith("grad_norm/") for t in tags)
    assert len(list((copy / "tb" / done["run_id"]).iterdir())) == 1  # one event file, not one per export
    plugin = events.PluginTagToContent("hparams")
    assert plugin  # the HParams tab has the run's config
    raw = b"".join(plugin.values())
    assert b"model.depth" in raw and b"schedule.milestones" in raw
