"""The study tools end to end on a tiny real plain/ResNet pair: figures (depth curves, gradient flow, lesion),
the summary's depth-curve link, and the README's Python API example run as written."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from _study_helpers import train_pair
from _train_helpers import ROOT

from degradation.analysis.lesion import compute_lesions
from degradation.figures import render_all


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = train_pair(tmp_path_factory.mktemp("study"))
    compute_lesions(folder, device="cpu", draws=1, max_k=1)
    return folder


def test_figures_and_summary(results) -> None:
    written = {p.name for p in render_all(results)}
    for stem in ("depth", "gradflow", "lesion"):
        assert {f"{stem}.png", f"{stem}.pdf"} <= written
    manifest = {f["figure"]: f for f in json.loads((results / "figures" / "manifest.json").read_text())["figures"]}
    flow = manifest["gradflow"]
    assert flow["pair"] == ["plain-14", "ResNet-14"]
    assert flow["early_verdict"] in ("vanishing", "exploding", "comparable") and flow["early_ratio"] > 0
    assert [p["layers"] for p in flow["panels"][:2]] == [14, 14]  # 6n+2 weighted layers, one heatmap row each
    assert {line["label"] for line in flow["panels"][2]["lines"]} == {"plain-14", "ResNet-14"}
    depth = manifest["depth"]
    assert [line["family"] for line in depth["panels"][0]["lines"]] == ["plain", "resnet"]
    assert depth["panels"][1]["lines"][0]["depths"] == [14]
    lesion = manifest["lesion"]
    assert {line["label"] for line in lesion["panels"][0]["lines"]} == {"plain-14", "ResNet-14"}
    summary = (results / "summary.md").read_text().splitlines()
    assert summary[2].startswith("![") and summary[2].endswith("(figures/depth.png)")  # at the top


def test_readme_python_example_runs(results) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Python API"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(code.strip().splitlines()) <= 11
    code = code.replace('"results"', repr(str(results)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "resnet 14" in out.stdout or "plain 14" in out.stdout


def test_import_is_cheap_and_names_are_there() -> None:
    code = ("import sys, degradation as dg; heavy = {'torch', 'pandas'} & set(sys.modules); "
            "print(sorted(heavy)); print(all(callable(getattr(dg, n)) for n in dg.__all__ if n != '__version__'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.stdout.split("\n")[:2] == ["[]", "True"], out.stderr
