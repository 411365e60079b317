"""`degradation plot`: Figures 1, 6, 7, Table 6; ImageNet's Figure 4, Tables 2-3; the summary, from the results.

    render_all("results")  # -> [results/figures/fig1.png, ..., results/table6.md, results/summary.md]

Figures go to <out> (default <results>/figures) as PNG and PDF (for a report's page: PNG, and the PDFs already
there kept current), with manifest.json beside them (panels, line labels, source run ids) for tests and scripts;
tables and the summary go to <results>. Each (data set, preset) pair in the results is drawn on its own; names
get a -<dataset>-<preset> suffix when there are several. Which figures a run gets follows its network family,
whatever the data: CIFAR-family nets Figures 1, 6, 7, depth, gradient flow, lesion and Table 6; ImageNet-family
nets Figure 4 and Tables 2-3 (a pair holding both gets both sets, whose names differ).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from degradation.analysis.finals import experiments, groups, run_finals
from degradation.analysis.load import load_responses, load_results
from degradation.analysis.summary import write_summary
from degradation.errors import UsageError
from degradation.figures import depthcurves, fig1, fig4, fig6, fig7, gradflow, lesionfig
from degradation.figures.experiment import build_experiment
from degradation.figures.style import page_formats, save
from degradation.figures.table6 import write_table6
from degradation.figures.tables23 import write_tables23
from degradation.store.io import write_json_atomic
from degradation.store.runs import CHECKPOINT, has_checkpoint, run_folders, runs_root

FIGURES = {"fig1": fig1.draw, "fig6": fig6.draw, "fig7": fig7.draw,  # file stem -> draw(experiment)
           "depth": depthcurves.draw, "gradflow": gradflow.draw, "lesion": lesionfig.draw}
IMAGE_FIGURES = {"fig4": fig4.draw}  # ImageNet-family nets: Figure 4; CIFAR-family nets: the figures above
FAMILY_FIGURES = {"cifar": FIGURES, "imagenet": IMAGE_FIGURES}
# drawn when collected / measured, never computed here; each with what its figure reads of it
OPTIONAL_TABLES = {"layers.parquet": gradflow.READ, "lesion.parquet": {}}


def _optional(results_dir: Path, name: str, read: dict) -> pd.DataFrame | None:
    """A table beyond the paper's (gradient flow, lesions), or None when absent or unreadable (said once)."""
    path = results_dir / name
    if not path.is_file():
        return None
    try:
        return pd.read_parquet(path, **read)
    except Exception as exc:  # a damaged optional table costs its figure only
        print(f"{name}: not readable ({type(exc).__name__}); its figure is drawn empty", file=sys.stderr)
        return None


def _responses(results_dir: Path, finals: pd.DataFrame) -> pd.DataFrame | None:
    """responses.parquet, computed first when it is missing, damaged or lacks a finished run; None when none."""
    done = set(finals.loc[finals["finished"], "run_id"])
    current = _read_responses(results_dir)
    if done and (current is None or not done <= set(current["run_id"])):
        if not any(has_checkpoint(folder) for folder in run_folders(results_dir)):  # said without torch's seconds
            print(f"figure 7: responses not computed: no run under {runs_root(results_dir)} has a final checkpoint "
                  f"({CHECKPOINT})", file=sys.stderr)
            return current
        from degradation.analysis.responses import compute_responses  # deferred: torch loads only when needed

        try:
            compute_responses(results_dir)
        except UsageError as exc:
            print(f"figure 7: responses not computed: {exc}", file=sys.stderr)
        current = _read_responses(results_dir)
    return current


def _read_responses(results_dir: Path) -> pd.DataFrame | None:
    try:
        return load_responses(results_dir)
    except UsageError as exc:  # a damaged table is rebuilt by compute_responses, never fatal to the plot
        print(f"figure 7: {exc}", file=sys.stderr)
        return None


def _out_dir(results_dir: Path, out_dir: str | Path | None) -> Path:
    out = Path(out_dir) if out_dir is not None else results_dir / "figures"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write figures to {out}: {exc.strerror}; pass a writable --out") from None
    return out


def render_all(results_dir: str | Path, out_dir: str | Path | None = None, *, for_page: bool = False) -> list[Path]:
    """Draw every figure and write Table 6 and the summary; print what could not be drawn; return the files.
    `for_page`: the figures as `degradation report` needs them (style.page_formats)."""
    results_dir = Path(results_dir)
    curves, runs = load_results(results_dir)
    out = _out_dir(results_dir, out_dir)
    finals = run_finals(curves, runs)
    cifar = finals["family"] == "cifar"
    responses = _responses(results_dir, finals[cifar]) if cifar.any() else None
    pairs = experiments(finals)
    written: list[Path] = []
    manifest: dict = {"results": str(results_dir), "band": "min-max over seeds, line = mean", "figures": []}
    layers, lesion = (_optional(results_dir, name, read) for name, read in OPTIONAL_TABLES.items())  # once
    for dataset, preset, family, named in groups(finals):
        suffix = "" if len(pairs) == 1 else f"-{dataset}-{preset}"
        exp = build_experiment(dataset, preset, finals, curves, responses, suffix, layers, lesion, family=family,
                               named=named)
        for stem, draw in FAMILY_FIGURES[family].items():
            fig, entry = draw(exp)
            name = f"{stem}{exp.stem_suffix}"
            paths = save(fig, out, name, page_formats(out, name) if for_page else None)
            entry["files"] = [p.name for p in paths]
            entry.update(dataset=dataset, preset=preset, family=family)
            manifest["figures"].append(entry)
            written += paths
            if entry["missing"]:
                print(f"{entry['figure']}{suffix}: not run, not drawn: {', '.join(entry['missing'])}")
            if entry.get("no_responses"):
                print(f"{entry['figure']}{suffix}: ran but no responses (unfinished or failed), not drawn: "
                      f"{', '.join(entry['no_responses'])}")
        for note in exp.notes:
            print(f"note ({exp.title}): {note}")
    if cifar.any():
        written += write_table6(finals[cifar], results_dir)
    written += write_tables23(finals, results_dir)
    written.append(write_summary(finals, results_dir))
    manifest_path = out / "manifest.json"
    write_json_atomic(manifest_path, manifest)
    return written + [manifest_path]
