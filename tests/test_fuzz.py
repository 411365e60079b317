"""Bad input, fuzzed: generated command lines and Hydra overrides, run in-process through `degradation.cli.main`.

Whatever the input (unknown keys and options, wrong types, out-of-range numbers, odd characters, empty lists):
no traceback; a refusal is exit 2 with exactly one line on stderr; and a refusal creates nothing (the fuzz runs
in an empty working folder, where the default results folder would go). An invocation that passes every check
stops at a sentinel where the work would start (training, planning's time estimate, building networks, timing),
so the fuzz stays fast and never trains.

Examples: DEGRADATION_FUZZ_EXAMPLES per test (default 150, 3 tests); thousands with e.g.
DEGRADATION_FUZZ_EXAMPLES=2000. `-s` prints how many were tried, refused and accepted.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from degradation.cli import main  # noqa: E402

EXAMPLES = int(os.environ.get("DEGRADATION_FUZZ_EXAMPLES", "150"))
# No shrinking: a Hydra compose per step makes it minutes long; the failing example is printed as found.
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


class Accepted(BaseException):
    """Raised where the real work would begin: the input passed every check."""


KEYS = ["model.arch", "model.depth", "model.shortcut", "model.width", "model.num_classes", "model.family",
        "data.name", "data.root", "data.download", "data.split", "data.val_size", "data.normalize",
        "data.num_classes", "data.train_size", "schedule.batch_size", "schedule.lr", "schedule.momentum",
        "schedule.weight_decay", "schedule.max_iters", "schedule.milestones", "schedule.gamma",
        "schedule.warmup.enabled", "schedule.warmup.min_depth", "schedule.log_every", "schedule.eval_every",
        "schedule.checkpoint_every", "trainer.accelerator", "trainer.devices", "trainer.num_nodes",
        "trainer.precision", "trainer.threads", "trainer.progress", "trainer.cuda_graphs", "trainer.deterministic",
        "trainer.record_layers", "launcher.jobs", "seed", "results_dir", "logger.wandb.mode"]
GROUPS = {"model": ["plain", "resnet", "preact"], "data": ["cifar10", "cifar100", "synthetic", "imagenet"],
          "schedule": ["paper", "quick", "demo", "smoke", "imagenet_smoke"], "trainer": ["default"],
          "launcher": ["local", "slurm"], "logger": ["none", "csv", "tensorboard", "wandb"],
          "experiment": ["cifar100"]}
# Characters a shell can hand over (no NUL; no lone surrogates, which only undecodable bytes produce)
ODD = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
NUMBERS = st.one_of(st.integers(-10**12, 10**12), st.sampled_from([0, -1, 1, 2, 7, 8, 20, 21, 56, 110, 1202, 6002,
                                                                   6008, 2**31, 2**63]))
FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.1, 1e-9, 1e309]))
VALUES = st.one_of(NUMBERS.map(str), FLOATS.map(repr), ODD, st.sampled_from(
    ["", "[]", "[,]", "[1,,2]", "{}", "null", "true", "false", "auto", "A", "b", "Z", "1,2", "${oc.env:NOPE}",
     "${model.depth}", "'quoted'", '"', "[", "]", "32-true", "bf16-mixed", "cpu", "cuda", "synthetic", "none"]))
KEY = st.one_of(st.sampled_from(KEYS), st.from_regex(r"[a-z_]{1,8}(\.[a-z_]{1,8}){0,2}", fullmatch=True))
OVERRIDE = st.one_of(
    st.tuples(st.sampled_from(["", "+", "++", "~"]), KEY, VALUES).map(lambda t: f"{t[0]}{t[1]}={t[2]}"),
    st.tuples(st.sampled_from(sorted(GROUPS)), st.one_of(st.sampled_from(sum(GROUPS.values(), [])), ODD,
                                                         st.just("[csv,tensorboard]"), st.just("[]")))
    .map(lambda t: f"{t[0]}={t[1]}"),
    ODD, st.sampled_from(["-m", "--cfg", "--cfg=job", "-c", "--info", "--multirun", "hydra.run.dir=x", "=", "=="]),
)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty working folder (the default results folder would go here) and sentinels where work starts."""
    from degradation.bench import loader as bench_loader
    from degradation.bench import share as bench_share
    from degradation.bench import step as bench
    from degradation.models import table
    from degradation.sweep import api
    from degradation.train import run

    def accept(*args, **kwargs):
        raise Accepted

    def plan_checked(request, **kwargs):
        from degradation.sweep.plan import compose_cells

        compose_cells(request)  # every cell composed and validated: the checks a real plan makes first
        raise Accepted

    monkeypatch.setattr(run, "train", accept)
    monkeypatch.setattr(api, "build_plan", plan_checked)
    monkeypatch.setattr(api, "prepare_config", lambda *a, **k: None)  # no download during a fuzz
    monkeypatch.setattr(table, "_row", accept)
    for module, name in ((bench, "run_bench"), (bench_share, "run_share"), (bench_loader, "run_loader_bench")):
        monkeypatch.setattr(module, name, accept)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("COLUMNS", "200")
    return work


TALLY: dict[str, int] = {}


def invoke(argv: list[str], work: Path, capsys) -> str:
    """Run one command line; check the refusal contract; return refused | accepted | answered."""
    try:
        code = main(argv)
    except Accepted:
        for entry in work.iterdir():  # what an accepted input made may go: the next example starts empty
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        capsys.readouterr()
        return "accepted"
    err = capsys.readouterr().err
    if code == 2:
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), f"{argv!r} -> {err!r}"
        assert not list(work.iterdir()), f"{argv!r} refused but created {list(work.iterdir())}"
        return "refused"
    assert code == 0, f"{argv!r} -> exit {code}: {err!r}"
    assert not list(work.iterdir()), f"{argv!r} answered but created {list(work.iterdir())}"
    return "answered"


def tally(kind: str, outcome: str) -> None:
    TALLY[f"{kind} {outcome}"] = TALLY.get(f"{kind} {outcome}", 0) + 1


@FUZZ
@given(overrides=st.lists(OVERRIDE, max_size=5), small=st.booleans())
def test_train_overrides(workdir, capsys, overrides, small) -> None:
    base = ["data=synthetic", "schedule=smoke"] if small else []
    tally("train", invoke(["train", *base, *overrides], workdir, capsys))


SWEEP_FLAGS = st.lists(st.tuples(
    st.sampled_from(["--depths", "--archs", "--seeds", "--shortcut", "--data", "--preset", "--family", "--jobs",
                     "--launcher", "--results", "--depth", "--arch", "--seed", "--jobz", "--wide", "--dry-run"]),
    st.one_of(VALUES, st.sampled_from(["20,56", "8", "18,34", "plain,resnet", "preact", "A,B", "0,1", "imagenet",
                                       "synthetic", "demo", "smoke", "slurm", "local", ",", "20,,56"]))),
    max_size=4)


@FUZZ
@given(flags=SWEEP_FLAGS, overrides=st.lists(OVERRIDE, max_size=3))
def test_sweep_flags_and_overrides(workdir, capsys, flags, overrides) -> None:
    argv = ["sweep", "--data", "synthetic", "--preset", "smoke"]
    for flag, value in flags:
        argv += [flag] if flag in ("--wide", "--dry-run") else [flag, value]
    tally("sweep", invoke([*argv, *(["--", *overrides] if overrides else [])], workdir, capsys))


OTHER = st.one_of(
    st.tuples(st.just("models"), st.lists(st.tuples(st.sampled_from(
        ["--depths", "--archs", "--shortcut", "--family", "--num-classes", "--depht"]), VALUES), max_size=3)),
    st.tuples(st.sampled_from(["status", "collect", "plot", "responses", "lesion"]), st.lists(st.tuples(
        st.sampled_from(["--results", "--wide", "--out", "--draws", "--max-k", "--images", "--device", "--bogus"]),
        VALUES), max_size=2)),
    st.tuples(st.just("bench"), st.lists(st.tuples(st.sampled_from(
        ["--depths", "--archs", "--iters", "--rounds", "--share", "--seconds", "--device", "--data"]), VALUES),
        max_size=3)),
    st.tuples(st.sampled_from(["data check", "data fetch", "no-such-command", "prepare-imagenet"]),
              st.lists(st.tuples(st.sampled_from(["--root", "--archives", "--out", "--x"]), VALUES), max_size=2)),
)


@FUZZ
@given(command=OTHER, positional=st.one_of(st.none(), ODD, st.sampled_from(["cifar10", "cifar100", "mnist"])))
def test_other_commands(workdir, capsys, command, positional) -> None:
    name, flags = command
    argv = name.split()
    if name.startswith("data ") and positional is not None:
        argv.append(positional)
    for flag, value in flags:
        argv += [flag] if flag == "--wide" else [flag, value]
    if name == "data fetch":  # no download: `data fetch` with a valid name and root stops where it would start
        argv = ["data", "fetch", "no-such-set", *argv[2:]]
    tally(name.split()[0], invoke(argv, workdir, capsys))


def test_zz_fuzz_tally(capsys) -> None:
    """How many invocations the fuzz above tried, by outcome (printed with -s)."""
    if not TALLY:
        pytest.skip("run with the fuzz tests")
    with capsys.disabled():
        total = sum(TALLY.values())
        print(f"\nfuzzed {total} invocations: " + ", ".join(f"{k} {v}" for k, v in sorted(TALLY.items())))
    assert any(k.endswith("refused") for k in TALLY)
