"""Commands that do no training answer without loading torch, Lightning or pandas (the 4-second start-up).

One subprocess runs every path in turn through `degradation.cli.main` and reports, after each, which heavy
modules it loaded; the times themselves are printed by benchmarks/startup.py, never asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "pytorch_lightning", "lightning", "pandas")

PROBE = r"""
import contextlib, io, json, sys
from degradation.cli import main
heavy = %(heavy)r
out = []
for argv in json.loads(sys.argv[1]):
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        code = main(argv)
    out.append({"argv": argv, "code": code, "loaded": [m for m in heavy if m in sys.modules],
                "text": sink.getvalue()[-300:]})
    if out[-1]["loaded"]:
        break
print(json.dumps(out))
"""


def command_paths() -> list[list[str]]:
    """Every command and sub-command of the app, as argument lists (["sweep"], ["data", "check"], ...)."""
    from typer.main import get_command

    from degradation.cli import app

    root = get_command(app)
    paths = []
    for name, command in root.commands.items():
        subs = getattr(command, "commands", None)
        paths += [[name, sub] for sub in subs] if subs else [[name]]
        if subs:
            paths.append([name])
    return paths


def instant_invocations(tmp_path: Path) -> list[list[str]]:
    missing = str(tmp_path / "no-such-folder")
    argvs: list[list[str]] = [["--version"], ["--help"], ["-h"], [], ["plt"], ["--verison"], ["sweep", "--depth", "20"],
                              ["bench", "--dept", "20"], ["status", "--results", missing],
                              ["data", "check", "cifar10", "--root", missing],
                              ["data", "check", "cifar100", "--root", missing]]
    for path in command_paths():
        argvs += [[*path, "--help"], [*path, "-h"], [*path, "--no-such-option"]]
    return argvs


def run_probe(argvs: list[list[str]]) -> list[dict]:
    repo = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", PROBE % {"heavy": HEAVY}, json.dumps(argvs)], capture_output=True,
                          text=True, timeout=120, cwd=repo, env={**__import__("os").environ, "PYTHONPATH": str(repo)})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_answers_that_need_no_training_never_load_torch_lightning_or_pandas(tmp_path: Path) -> None:
    argvs = instant_invocations(tmp_path)
    assert len(argvs) > 40  # every command's --help, -h and a typo
    results = run_probe(argvs)
    last = results[-1]
    assert not last["loaded"], f"`degradation {' '.join(last['argv'])}` loaded {last['loaded']}: {last['text']}"
    assert len(results) == len(argvs)
    by_argv = {" ".join(r["argv"]): r for r in results}
    for typo in ("sweep --depth 20", "bench --dept 20", "plt", "status --no-such-option"):
        assert by_argv[typo]["code"] == 2 and by_argv[typo]["text"].count("\n") == 1, by_argv[typo]
    missing = by_argv[f"status --results {tmp_path / 'no-such-folder'}"]
    assert missing["code"] == 2 and "does not exist" in missing["text"]
    data = by_argv[f"data check cifar10 --root {tmp_path / 'no-such-folder'}"]
    assert data["code"] == 2 and "degradation data fetch cifar10" in data["text"]
    assert by_argv["--version"]["code"] == 0 and by_argv["--version"]["text"].startswith("degradation ")
    assert not (tmp_path / "no-such-folder").exists()


@pytest.mark.parametrize("argv", [["models", "--depths", "8"]])
def test_the_probe_sees_a_command_that_does_load_torch(argv: list[str]) -> None:
    """The probe is not blind: a command that builds networks shows torch as loaded."""
    assert "torch" in run_probe([argv])[0]["loaded"]
