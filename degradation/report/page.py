"""results/report.html: the whole study on one page, verdict first, readable offline and sent by e-mail.

    write_report("results")  # renders what `degradation plot` renders, then the page; returns every file written

The page is assembled from what the tool already computes: `render_all` draws the figures and writes the
tables and summary (their PNG and markdown are inlined as they are), analysis/summary.judge gives the verdict and
its gaps; this module adds the plots nothing else draws (gaps.py, training.py, ratios.py, benchplot.py), the runs
table (runstable.py) and the provenance (provenance.py), in the order a reader asks: is there degradation, how
sure, what do the curves look like, which runs, made how.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from degradation.analysis.finals import describe, experiments, group, groups, run_finals
from degradation.analysis.load import load_results
from degradation.analysis.summary import judge
from degradation.errors import UsageError
from degradation.figures import render_all
from degradation.report import benchplot, gaps, provenance, ratios, runstable, training
from degradation.report.html import esc, figure_png, file_img, img, markdown, page, table
from degradation.store.io import write_text_atomic
from degradation.store.results import load_layers
from degradation.store.schema import CURVES_TABLE, LAYERS_TABLE, LESION_TABLE, RESPONSES_TABLE, RUNS_TABLE

REPORT_FILE = "report.html"
TABLES = (("table6.md", "Table 6"), ("table2.md", "Table 2"), ("table3.md", "Table 3"))
SOURCES = (CURVES_TABLE, RUNS_TABLE, LAYERS_TABLE, LESION_TABLE, RESPONSES_TABLE)  # what render_all draws from
MANIFEST = "manifest.json"  # figures/__init__.py writes it after every figure, table and the summary
NAMED = 12  # failed / unfinished runs named in the header; the rest are in the runs table


def figures_fresh(results_dir: Path) -> bool:
    """Whether `render_all` has run since the collected tables last changed (its manifest is written last), so
    `plot` then `report` draws each figure once."""
    manifest = results_dir / "figures" / MANIFEST
    if not manifest.is_file() or not (results_dir / "summary.md").is_file():
        return False
    sources = [results_dir / name for name in SOURCES]
    newest = max((p.stat().st_mtime for p in sources if p.is_file()), default=float("inf"))
    return manifest.stat().st_mtime >= newest


def _section(ident: str, title: str, body: str) -> str:
    return f'<section id="{ident}"><h2>{esc(title)}</h2>\n{body}\n</section>'


def _verdict_text(head: str) -> str:
    """The verdict's claim in bold, its numbers after it (summary.verdict writes "claim (numbers).")."""
    claim, sep, detail = head.partition(" (")
    if not sep:
        return f"<strong>{esc(head)}</strong>"
    return f"<strong>{esc(claim)}</strong> ({esc(detail)}"


def _attention(runs: pd.DataFrame) -> str:
    """The failed and unfinished runs by name, under the verdict they are left out of."""
    _, named = runstable.counts(runs)
    if not named:
        return ""
    shown = "".join(f"<li>{esc(n)}</li>" for n in named[:NAMED])
    more = f"<li>and {len(named) - NAMED} more: see the runs table</li>" if len(named) > NAMED else ""
    return f'<p>Not in the verdict:</p><ul class="bad">{shown}{more}</ul>'


def _header(results_dir: Path, runs: pd.DataFrame, finals: pd.DataFrame, tool: dict) -> str:
    head, _ = runstable.counts(runs)
    studied = "; ".join(describe(d, p, group(finals, d, p)) for d, p in experiments(finals))
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    nav = "".join(f'<a href="#{i}">{esc(t)}</a>' for i, t in (
        ("verdict", "verdict"), ("figures", "figures"), ("tables", "tables"), ("runs", "runs"),
        ("training", "loss and lr"), ("ratios", "update/weight"), ("bench", "bench"), ("provenance", "provenance")))
    return (f"<header><h1>Degradation study: {esc(results_dir.absolute().name)}</h1>"
            f"<p>{esc(studied)}. {esc(head)}. Made {esc(when)} by degradation "
            f"{esc(tool['degradation'])} from <code>{esc(results_dir.absolute())}</code>.</p><nav>{nav}</nav></header>")


def _verdicts(finals: pd.DataFrame) -> tuple[str, str, list]:
    """(verdict box, gap plots, the judgements): every group's claim at the top (each pair, by network family when
    it holds both), its gap plot below."""
    judged = [judge(finals, d, p, f, n) for d, p, f, n in groups(finals)]
    lines = "".join(f"<p>{esc(j.title)}: {_verdict_text(j.head or 'no runs with curves yet')}</p>" for j in judged)
    plots = "".join(img(figure_png(gaps.draw(j, f"Depth gaps — {j.title}")), f"gap plot, {j.title}")
                    for j in judged if j.steps)
    return f'<div class="verdict" id="verdict-text">{lines}</div>', plots, judged


def _summary(results_dir: Path) -> str:
    path = results_dir / "summary.md"
    if not path.is_file():
        return ""
    text = "\n".join(line for line in path.read_text().splitlines() if not line.startswith("# "))
    return "<details><summary>The summary's full text (summary.md): every step, the table, the caveats, the rule" \
           f"</summary>{markdown(text, shift=1)}</details>"


def _figures(results_dir: Path, figures_dir: Path) -> str:
    """Every figure `render_all` drew, in its manifest's order, as the PNG it wrote."""
    manifest_path = figures_dir / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return "<p>No figures (figures/manifest.json is missing).</p>"
    out = []
    for entry in manifest.get("figures", []):
        png = next((figures_dir / f for f in entry.get("files", []) if f.endswith(".png")), None)
        if png is None or not png.is_file():
            continue
        out.append(file_img(png, entry.get("title") or entry.get("figure", png.stem)))  # the title is drawn in it
    return "\n".join(out) or "<p>No figures were drawn.</p>"


def _tables(results_dir: Path) -> str:
    out = [markdown((results_dir / name).read_text(), shift=2) for name, _ in TABLES if (results_dir / name).is_file()]
    return "\n".join(out) or "<p>No tables.</p>"


def _runs(runs: pd.DataFrame) -> str:
    head, _ = runstable.counts(runs)
    box = '<p><label>Filter runs: <input type="search" data-filter="runs-table" placeholder="e.g. plain failed">' \
          "</label></p>"
    return f"<p>{esc(head)}. Failed rows are red, unfinished ones yellow.</p>{box}" + \
        table(runstable.runs_frame(runs), "runs-table", runstable.row_class)


def _per_pair(judged: list, curves: pd.DataFrame, runs: pd.DataFrame, layers: pd.DataFrame | None) -> tuple[str, str]:
    """(loss and lr plots, update/weight heatmaps), one of each per (data set, preset) with runs."""
    train, ratio = [], []
    for j in judged:
        if j.selected.empty:
            continue
        title = j.title
        fig, _ = training.draw(j.selected, curves, runs, title)
        train.append(img(figure_png(fig), f"loss and learning rate, {title}"))
        fig, _ = ratios.draw(j.selected, layers, title)
        ratio.append(img(figure_png(fig), f"update/weight ratio, {title}"))
    return "\n".join(train) or "<p>No runs with curves.</p>", "\n".join(ratio) or "<p>No runs with curves.</p>"


def _provenance(runs: pd.DataFrame, tool: dict, command: str) -> str:
    facts = pd.DataFrame({"": list(tool), "value": list(tool.values())})
    commands = provenance.commands(runs)
    lines = "\n".join(f"# {rid}\n{cmd}" for rid, cmd in commands)
    return (f"<h3>This page</h3><pre>{esc(command)}</pre>{table(facts)}"
            "<h3>What the runs trained with</h3>" + table(provenance.environments(runs))
            + "<h3>Command lines</h3><p class=\"note\">One per run: composed again, each gives its run's id (the "
            "settings that change a result are all on it; where and how it computes are not).</p>"
            f"<details><summary>{len(commands)} commands</summary><pre>{esc(lines)}</pre></details>")


def _optional_layers(results_dir: Path) -> pd.DataFrame | None:
    try:
        return load_layers(results_dir, ratios.METRIC, ratios.COLUMNS)  # what the heatmaps read, not the table
    except UsageError:  # not collected or unreadable: the heatmaps say there is nothing recorded
        return None


def build_page(results_dir: Path, command: str) -> str:
    """The page's HTML from a results folder that `render_all` has just drawn."""
    curves, runs = load_results(results_dir)
    finals = run_finals(curves, runs)
    tool = provenance.tool()
    box, gap_plots, judged = _verdicts(finals)
    layers = _optional_layers(results_dir)
    train, ratio = _per_pair(judged, curves, runs, layers)
    bench = benchplot.load_bench(results_dir)
    bench_html = img(figure_png(benchplot.draw(bench)), "bench") if bench is not None else \
        "<p>No bench results (<code>degradation bench</code> writes bench.parquet).</p>"
    body = [
        _header(results_dir, runs, finals, tool),
        _section("verdict", "Verdict: does depth degrade plain nets and not ResNets?", box + _attention(runs)
                 + gap_plots + _summary(results_dir)),
        _section("figures", "Figures", _figures(results_dir, results_dir / "figures")),
        _section("tables", "Tables", _tables(results_dir)),
        _section("runs", "Runs", _runs(runs)),
        _section("training", "Training loss and learning rate", train),
        _section("ratios", "Update/weight ratio per layer", ratio),
        _section("bench", "Speed (degradation bench)", bench_html),
        _section("provenance", "Provenance", _provenance(runs, tool, command)),
    ]
    return page(f"Degradation study: {results_dir.absolute().name}", "\n".join(body))


def write_report(results_dir: str | Path, out: str | Path | None = None, command: str | None = None) -> list[Path]:
    """Render the figures, tables and summary (as `degradation plot`), then the page; return every file written,
    the page last."""
    results_dir = Path(results_dir)
    start = time.perf_counter()
    if figures_fresh(results_dir):
        print("figures, tables and summary are newer than the tables they come from: not drawn again "
              "(`degradation plot` redraws them)", file=sys.stderr)
        written = []
    else:
        written = render_all(results_dir, for_page=True)  # PNG; the PDFs are `plot`'s
    path = Path(out) if out is not None else results_dir / REPORT_FILE
    made_by = ["degradation", "report", "--results", str(results_dir), *(["--out", str(out)] if out else [])]
    text = build_page(results_dir, command or shlex.join(made_by))
    try:
        write_text_atomic(path, text)
    except OSError as exc:
        raise UsageError(f"cannot write the report to {path}: {exc.strerror}; pass a writable --out") from None
    print(f"report: {len(text.encode()) / 1e6:.2f} MB in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return [*written, path]
