"""Installed from a wheel, far from the checkout, the tool finds its configs (the wheel carries conf/).

The wheel is built from a copy of the checkout's sources, installed without dependencies into a fresh virtual
environment outside the checkout; the environment reuses this interpreter's installed packages (torch & co.)
through a path file, so nothing is downloaded. The checkout must not be importable there: the test runs from
another folder, with PYTHONPATH unset and user site-packages off, and checks where `degradation` came from.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "conf", "degradation")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict]:
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "_conf"))
        else:
            shutil.copy2(ROOT / name, src / name)
    wheels = work / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(src),
                    "-w", str(wheels)], check=True, capture_output=True, cwd=work, timeout=300)
    env_dir = work / "env"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DEGRADATION_CONF", "PYTHONHOME")}
    env.update(PYTHONNOUSERSITE="1", OMP_NUM_THREADS="1")
    wheel = next(wheels.glob("degradation-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                    "-q", str(wheel)], check=True, capture_output=True, cwd=work, timeout=300, env=env)
    assert (Path(site) / "degradation" / "_conf" / "config.yaml").is_file()
    # then this interpreter's packages (torch & co.), as a plain path entry: their .pth files (our editable
    # install) stay inactive. Added after the install, or pip would see our editable copy and skip the wheel.
    reused = Path(torch.__file__).resolve().parents[1]
    Path(site, "_reuse_installed.pth").write_text(f"{reused}\n")
    outside = work / "elsewhere"
    outside.mkdir()
    return env_dir, {"env": env, "cwd": outside}


def _run(env_dir: Path, opts: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(env_dir / "bin" / args[0]), *args[1:]], capture_output=True, text=True,
                          timeout=300, **opts)


def test_wheel_carries_the_configs(installed) -> None:
    env_dir, opts = installed
    where = _run(env_dir, opts, "python", "-c", "import degradation, degradation.conf as c; "
                 "print(degradation.__file__); print(c.CONF_DIR)")
    module, conf_dir = where.stdout.split()
    assert Path(module).is_relative_to(env_dir) and Path(conf_dir).is_relative_to(env_dir), where.stdout
    shipped = sorted(p.relative_to(conf_dir).as_posix() for p in Path(conf_dir).rglob("*.yaml"))
    assert shipped == sorted(p.relative_to(ROOT / "conf").as_posix() for p in (ROOT / "conf").rglob("*.yaml"))

    models = _run(env_dir, opts, "degradation", "models", "--depths", "20,56")
    assert models.returncode == 0 and "0.27M" in models.stdout, models.stdout + models.stderr
    cfg = _run(env_dir, opts, "degradation", "train", "--cfg", "model=plain", "model.depth=56")
    assert cfg.returncode == 0, cfg.stderr
    assert "depth: 56" in cfg.stdout and "arch: plain" in cfg.stdout and "max_iters: 64000" in cfg.stdout
