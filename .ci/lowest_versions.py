"""The lowest declared versions: install them into a separate environment and run a representative part of the
suite there, so that a lower bound in pyproject.toml is a version the code was seen to work with.

    .venv/bin/python .ci/lowest_versions.py [--venv .venv-lowest] [tests/test_x.py ...] [pytest options ...]

Every `name>=X` of the dependencies (and of the dev extra's test tools) is installed as `name==X`. torch and
torchvision stay the ones this interpreter's environment has (a 4 GB CUDA install is not what this checks): the
new environment reaches them, and only them and what they need, through a .pth file of symlinks. The tests run
against this checkout (PYTHONPATH), with the same pytest options as `make test`.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEPT = ("torch", "torchvision")  # the installed builds stay (CUDA or CPU, as `make install` chose)
TEST_TOOLS = ("pytest", "hypothesis")
# One or more test files per dependency: typer/rich (cli, startup, completion), hydra/omegaconf (conf, fuzz),
# Lightning (train: fit with weights_only, resume; deterministic), pandas/pyarrow (results), matplotlib
# (figures), submitit (slurm), the loggers.
TESTS = ["tests/test_cli.py", "tests/test_startup.py", "tests/test_completion.py", "tests/test_conf.py",
         "tests/test_fuzz.py", "tests/test_train.py", "tests/test_deterministic.py", "tests/test_results.py",
         "tests/test_figures.py", "tests/test_slurm.py", "tests/test_loggers.py"]


def declared() -> tuple[list[str], list[str]]:
    """(dependencies, dev extra) as pyproject.toml declares them."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the metadata `make install` wrote from pyproject.toml
        requires = md.requires("degradation") or []
        return ([r for r in requires if "extra ==" not in r],
                [r.split(";")[0] for r in requires if re.search(r"extra\s*==\s*['\"]dev['\"]", r)])
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["dependencies"], project["optional-dependencies"]["dev"]


def lowest_pins() -> list[str]:
    """name==X for every name>=X of pyproject's dependencies and the dev extra's test tools; KEPT left out."""
    dependencies, dev = declared()
    pins = []
    for requirement in dependencies + [r for r in dev if re.split(r"[ <>=!~;]", r)[0] in TEST_TOOLS]:
        name, bound = re.match(r"[A-Za-z0-9_.-]+", requirement), re.search(r">=\s*([0-9][^,;)\s]*)", requirement)
        if name is None or bound is None:
            raise SystemExit(f"{requirement!r} has no lower bound (name>=X); declare one")
        name, version = name.group(0), bound.group(1)
        if name not in KEPT:
            pins.append(f"{name}=={version}")
    return pins


def closure(names: tuple[str, ...], leave_out: set[str]) -> list[md.Distribution]:
    """The installed distributions `names` need, recursively (extras and markers ignored: a superset is fine)."""
    seen: dict[str, md.Distribution] = {}
    todo = list(names)
    while todo:
        name = re.split(r"[ ;<>=!~\[(]", todo.pop(), maxsplit=1)[0].lower().replace("_", "-")
        if name in seen or name in leave_out:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        seen[name] = dist
        todo += [r for r in dist.requires or [] if "extra ==" not in r]
    return list(seen.values())


def link_kept(env: Path, pins: list[str]) -> int:
    """Symlink the kept distributions' top-level files into <env>/kept and point a .pth file at it."""
    kept = env / "kept"
    kept.mkdir()
    pinned = {p.split("==")[0].lower().replace("_", "-") for p in pins}
    count = 0
    for dist in closure(KEPT, pinned):
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops:
            source = Path(dist.locate_file(top))
            if source.exists() and not (kept / top).exists():
                (kept / top).symlink_to(source)
        count += 1
    purelib = subprocess.run([str(env / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()"
                              "['purelib'])"], capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "kept.pth").write_text(f"{kept}\n")
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv-lowest")
    args, pytest_args = parser.parse_known_args()
    start = time.monotonic()
    pins = lowest_pins()
    env = args.venv.resolve()
    shutil.rmtree(env, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    linked = link_kept(env, pins)
    python = str(env / "bin" / "python")
    print(f"lowest versions: {' '.join(pins)}; kept: {', '.join(KEPT)} and {linked - 2} packages they need",
          flush=True)
    pip = subprocess.run([python, "-m", "pip", "install", "-qq", "--disable-pip-version-check", *pins])
    if pip.returncode:
        print(f"lowest-versions check: pip could not install {' '.join(pins)}; raise the bound it names in "
              "pyproject.toml", file=sys.stderr)
        return pip.returncode
    check = [python, "-c", "import importlib.metadata as md, torch, sys; "
             f"print('installed:', *[f'{{n}}=={{md.version(n)}}' for n in {[p.split('==')[0] for p in pins]!r}], "
             "'torch=='+torch.__version__)"]
    subprocess.run(check, check=True)
    installed = time.monotonic() - start
    # the fuzz's job here is the old Hydra and typer, not more examples: the main suite runs it in full
    env_vars = {"DEGRADATION_FUZZ_EXAMPLES": "50", **os.environ, "PYTHONPATH": str(ROOT)}
    paths = [a for a in pytest_args if a.startswith("tests/")]  # test files given: those instead of TESTS
    options = [a for a in pytest_args if a not in paths]
    done = subprocess.run([python, "-m", "pytest", "-p", "no:cacheprovider", *(paths or TESTS), *options], cwd=ROOT,
                          env=env_vars)
    print(f"lowest-versions check: install {installed:.0f} s, tests {time.monotonic() - start - installed:.0f} s, "
          f"{'passed' if done.returncode == 0 else 'FAILED'}", flush=True)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
