"""The install's settings: the torch wheel index (CPU-only machines), the constraints file and the declared bounds."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
tomllib = pytest.importorskip("tomllib")  # Python 3.11+


def dry_install(tmp_path: Path, *settings: str) -> str:
    """What `make install` would run for a fresh environment (make -n: nothing is run)."""
    if shutil.which("make") is None:
        pytest.skip("no make")
    done = subprocess.run(["make", "-n", "install", f"VENV={tmp_path / 'venv'}", *settings], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    return done.stdout


def test_torch_comes_from_the_index_given_and_from_pypi_by_default(tmp_path) -> None:
    cpu = dry_install(tmp_path, "TORCH_INDEX=https://download.pytorch.org/whl/cpu")
    torch_line = next(line for line in cpu.splitlines() if "torch==" in line)
    assert "--index-url https://download.pytorch.org/whl/cpu" in torch_line
    default = dry_install(tmp_path)
    assert "--index-url" not in default and "torch==2.14.1 torchvision==0.29.1" in default


def test_the_project_installs_within_the_constraints_unless_told_otherwise(tmp_path) -> None:
    project_line = next(line for line in dry_install(tmp_path).splitlines() if ".[dev]" in line)
    assert "--constraint constraints.txt" in project_line
    newest = next(line for line in dry_install(tmp_path, "CONSTRAINTS=").splitlines() if ".[dev]" in line)
    assert "--constraint" not in newest


def test_constraints_pin_every_declared_dependency_within_its_bounds() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = dict(re.match(r"([A-Za-z0-9_.-]+)==(\S+)", line).groups()
                for line in (ROOT / "constraints.txt").read_text().splitlines() if line and not line.startswith("#"))
    pins = {name.lower().replace("_", "-"): version for name, version in pins.items()}
    for text in project["dependencies"] + project["optional-dependencies"]["dev"]:
        requirement = Requirement(text)
        name = requirement.name.lower()
        if name in ("torch", "torchvision"):
            assert name not in pins  # the Makefile's TORCH / TORCH_INDEX choose the build
            continue
        assert name in pins, f"{name} is declared but not in constraints.txt"
        assert requirement.specifier.contains(pins[name]), f"constraints.txt {name}=={pins[name]} breaks {text!r}"


def test_every_third_party_import_of_the_package_is_declared() -> None:
    declared = {Requirement(r).name.lower() for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
                ["dependencies"]}
    module_to_package = {"pytorch_lightning": "pytorch-lightning", "hydra": "hydra-core", "yaml": "pyyaml"}
    optional = {"wandb", "mlflow", "scipy", "tensorboard"}  # extras, imported only when chosen
    imports = set()
    for path in (ROOT / "degradation").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imports |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imports.add(node.module.split(".")[0])

    third_party = {name for name in imports if name not in sys.stdlib_module_names and name != "degradation"}
    missing = {module_to_package.get(name, name) for name in third_party} - declared - optional
    assert not missing, f"imported but not declared in pyproject.toml: {sorted(missing)}"
