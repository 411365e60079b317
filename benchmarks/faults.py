"""Fault-and-abuse suite (issue 8): kill, starve, corrupt and misuse the tool; print what happened.

    .venv/bin/python benchmarks/faults.py [--quick] [--keep DIR]

Every case works on a tiny synthetic sweep (depth 8, smoke preset, 128 images, CPU) and compares what is left
with a clean sweep of the same seeds: values per (run_id, step, split, metric) and the runs table without its
timing columns. "data lost" counts rows of the clean tables missing or changed after the tool recovered, plus
files that held earlier results and were damaged by the tool. tests/test_faults.py runs the fast cases.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from degradation.store.lock import live_owner, pid_alive

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
# What every sweep of the suite trains: 2 runs (plain, resnet) of about 10 s each on this CPU.
SWEEP_FLAGS = ("--data", "synthetic", "--preset", "smoke", "--depths", "8")
SWEEP_EXTRA = ("data.train_size=128", "data.test_size=32", "trainer.accelerator=cpu")
# Not results: timing, where, and the checkout's revision (another engineer may commit between two sweeps).
TIMING = ("wall_s", "images_per_s", "updated_at", "run_dir", "log_path", "git_revision")
CURVE_KEY = ["run_id", "step", "split", "metric"]


@dataclass
class Case:
    """One row of the table."""

    case: str
    done: str
    expected: str
    observed: str = ""
    passed: bool = False
    lost: int = 0


# ---- running the tool --------------------------------------------------------------------------------------
_MAIN = "import sys; from degradation.cli import main; sys.exit(main(sys.argv[1:]))"


def cli(*args: str) -> list[str]:
    """`degradation ARGS` with this interpreter (the installed script may belong to another venv)."""
    return [PYTHON, "-c", _MAIN, *args]


def sweep_args(results: Path, *flags: str, extra: tuple[str, ...] = ()) -> list[str]:
    return cli("sweep", *SWEEP_FLAGS, "--results", str(results), *flags, "--", *SWEEP_EXTRA, *extra)


def run(argv: list[str], timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env=env or _env(), stdin=subprocess.DEVNULL)


def start(argv: list[str], env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env=env or _env(), stdin=subprocess.DEVNULL, start_new_session=True)


# A slow disk, for the write moments: every process of the sweep (the trainers inherit the environment) waits
# SLOW_RENAME_S before renaming a checkpoint or curve part into place, so the temporary file lives long enough to
# be seen and killed at, however loaded the machine. It changes when files appear, never what they hold.
SLOW_RENAME_S = 0.3
_SLOW_DISK = """
import os, time
_replace = os.replace
def _slow_replace(src, dst, *args, **kwargs):
    name, parent = os.path.basename(os.fspath(src)), os.path.basename(os.path.dirname(os.fspath(src)))
    if name.startswith(".") and name.endswith(".tmp") and parent in ("checkpoints", "curves"):
        time.sleep(float(os.environ.get("DEGRADATION_FAULTS_SLOW_RENAME_S", "0")))
    return _replace(src, dst, *args, **kwargs)
os.replace = _slow_replace
"""


def slow_disk_env(work: Path) -> dict:
    """_env() plus a sitecustomize that slows the renames of checkpoints and curve parts (see _SLOW_DISK)."""
    site = work / "slow-disk"
    site.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(_SLOW_DISK)
    env = _env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH", "")]))
    env["DEGRADATION_FAULTS_SLOW_RENAME_S"] = str(SLOW_RENAME_S)
    return env


def _env() -> dict:
    env = dict(os.environ)
    env.pop("DEGRADATION_LOCK_TOKEN", None)
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (the sweep's trainers lead their own sessions, so killpg misses them)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def kill_tree(proc: subprocess.Popen) -> None:
    """kill -9 the process and everything it started, at once (a crashed node, the OOM killer)."""
    for pid in descendants(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.communicate()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(pid_alive(p) for p in descendants(proc.pid)[1:]):
        time.sleep(0.05)


def wait_for(test: Callable[[], bool], proc: subprocess.Popen, timeout: float = 120, poll: float = 0.002) -> bool:
    """Poll `test` until true (True) or the process ends or time runs out (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if test():
                return True
        if proc.poll() is not None:
            return False
        time.sleep(poll)
    return False


def one_line_error(proc: subprocess.CompletedProcess | tuple[int, str], code: int = 2,
                   only: bool = True) -> tuple[bool, str]:
    """(ok, what was seen): exit `code`, no traceback, and one `error:` line: all of stderr (`only`), or its last
    line after the command's progress notes (plot's "responses: ..." lines)."""
    rc, err = (proc.returncode, proc.stderr) if isinstance(proc, subprocess.CompletedProcess) else proc
    lines = [line for line in err.splitlines() if line.strip()]
    ok = (rc == code and bool(lines) and (len(lines) == 1 or not only) and lines[-1].startswith("error: ")
          and "Traceback" not in err)
    shown = lines[-1] if lines else "(no stderr)"
    return ok, f"exit {rc}, {len(lines)} stderr line(s): {shown[:110]}"


# ---- what a results folder holds --------------------------------------------------------------------------
def read_tables(results: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    curves = pd.read_parquet(results / "curves.parquet")
    runs = pd.read_parquet(results / "runs.parquet")
    return curves, runs


def compare(results: Path, clean: Path) -> tuple[list[str], int]:
    """Problems of results/{curves,runs}.parquet against the clean sweep's, and how many clean rows are lost."""
    try:
        curves, runs = read_tables(results)
    except Exception as exc:
        return [f"tables unreadable: {type(exc).__name__}"], 1
    ref_curves, ref_runs = read_tables(clean)
    problems = []
    dups = int(curves.duplicated(CURVE_KEY).sum())
    if dups:
        problems.append(f"{dups} duplicate curve rows")
    merged = ref_curves.merge(curves, on=CURVE_KEY, how="outer", suffixes=("", "_got"), indicator=True)
    missing = int((merged["_merge"] == "left_only").sum())
    extra = int((merged["_merge"] == "right_only").sum())
    both = merged[merged["_merge"] == "both"]
    changed = int((~_close(both["value"], both["value_got"])).sum())
    if missing or extra or changed:
        problems.append(f"curves: {missing} missing, {extra} extra, {changed} changed of {len(ref_curves)}")
    lost = missing + changed
    if runs["run_id"].duplicated().any():
        problems.append("duplicate runs rows")
    cols = [c for c in ref_runs.columns if c not in TIMING]
    got = runs.set_index("run_id").reindex(ref_runs["run_id"])
    for column in cols:
        if column == "run_id":
            continue
        a, b = ref_runs.set_index("run_id")[column], got[column]
        same = (a.isna() & b.isna()) | (a.astype(str) == b.astype(str))
        if a.dtype.kind == "f":
            same = same | _close(a, b)
        if not same.all():
            problems.append(f"runs.{column} differs for {int((~same).sum())} run(s)")
            lost += int((~same).sum())
    return problems, lost


def _close(a: pd.Series, b: pd.Series) -> pd.Series:
    a, b = pd.to_numeric(a).astype(float), pd.to_numeric(b).astype(float)
    return (a.isna() & b.isna()) | ((a - b).abs() <= 1e-6 * (1 + a.abs()))


def leftovers(results: Path) -> list[str]:
    """Temp files, locks and unreadable parquet/json files left in a results folder."""
    bad = []
    for path in results.rglob("*"):
        if path.is_dir():
            continue
        rel = str(path.relative_to(results))
        if path.name.endswith(".tmp") or path.name == ".lock.takeover":
            bad.append(rel)
        elif path.name == ".lock" and live_owner(path.parent):
            bad.append(f"{rel} (held by a live process)")  # a stale lock is ignored by everyone: harmless
        elif path.suffix == ".parquet":
            try:
                pd.read_parquet(path)
            except Exception:
                bad.append(f"{rel} (unreadable)")
        elif path.suffix == ".json":
            try:
                json.loads(path.read_text())
            except ValueError:
                bad.append(f"{rel} (unreadable)")
    return bad


def trainings(results: Path) -> dict[str, int]:
    """How many sessions trained each run to its end, from train.log (more than 1: the run was trained twice).

    A session counts when it logged "done", or when it logged the last iteration ("it 12/12") and no later
    session trained again (a kill between the last window and the "done" line still leaves the run trained to
    its end once). A session that resumed at the last iteration (to rewrite a lost run.json) trains nothing.
    """
    total = 12  # the smoke preset's max_iters
    counts = {}
    for log in (results / "runs").glob("*/train.log"):
        sessions: list[list] = []  # [start iteration, reached the last iteration, logged done] per session
        for line in log.read_text(errors="replace").splitlines():
            if ": starting: " in line or line.split(" ", 1)[-1].startswith("starting: "):
                sessions.append([0, False, False])
            elif "resuming at iteration " in line:
                sessions.append([int(line.split("resuming at iteration ", 1)[1].split(":")[0]), False, False])
            elif sessions and f" it {total}/{total} " in line:
                sessions[-1][1] = True
            elif sessions and (" done: train err " in line or line.split(" ", 1)[-1].startswith("done: train err")):
                sessions[-1][2] = True
        counts[log.parent.name] = sum(
            start < total and (done or (ended and all(later[0] >= total for later in sessions[i + 1:])))
            for i, (start, ended, done) in enumerate(sessions)
        )
    return counts


def fingerprint(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def check_recovered(results: Path, clean: Path, rerun: subprocess.CompletedProcess,
                    restarted: tuple[str, ...] = ()) -> tuple[bool, str, int]:
    """Tables equal the clean ones, nothing left over, each run trained to its end once (`restarted`: twice,
    the copied clean training and the restart the case asks for)."""
    problems, lost = compare(results, clean)
    if rerun.returncode != 0:
        problems.insert(0, f"rerun exit {rerun.returncode}: {_last(rerun.stderr or rerun.stdout)}")
    junk = leftovers(results)
    if junk:
        problems.append(f"left: {', '.join(junk[:3])}")
    twice = {k: v for k, v in trainings(results).items() if v != 1 + (k in restarted)}
    if twice:
        problems.append(f"trained to the end != once: {twice}")
    return not problems, "; ".join(problems) or "tables equal the clean sweep's, nothing left over", lost


def _last(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:120] if lines else ""


# ---- 1. kill -9 at random moments -------------------------------------------------------------------------
def _ckpt_tmp(results: Path) -> bool:
    return any((results / "runs").glob("*/checkpoints/.*.tmp"))


def _part_tmp(results: Path) -> bool:
    return any((results / "runs").glob("*/curves/.*.tmp"))


def _all_done(results: Path) -> bool:
    infos = [json.loads(p.read_text()) for p in (results / "runs").glob("*/run.json")]
    return len(infos) == 2 and all(i.get("status") == "done" for i in infos)


def _reached(results: Path, prefix: str, iteration: int) -> bool:
    """The `prefix` run's train.log reports iteration `iteration` (its evaluation line, "it 4/12 ...")."""
    return any(f" it {iteration}/" in log.read_text(errors="replace")
               for log in (results / "runs").glob(f"{prefix}-*/train.log"))


def kill_sweep_case(work: Path, clean: Path, moment: str, rng: random.Random) -> Case:
    """Every moment is observed, not timed: a loaded machine slows the sweep, never makes the kill miss it."""
    results = work / f"kill-{moment}"
    case = Case(f"kill -9 sweep: {moment}", "", "rerun: tables == clean, no dup/missing rows, no leftovers, "
                "each run finished once")
    slow = moment in ("checkpoint write", "curve part write")
    proc = start(sweep_args(results), env=slow_disk_env(work) if slow else None)
    if moment == "training":
        prefix, iteration = rng.choice(["plain", "resnet"]), rng.choice([4, 8])
        hit = wait_for(lambda: _reached(results, prefix, iteration), proc, timeout=300)
        hit = hit and proc.poll() is None and not _all_done(results)
        what = f"killed when {prefix} reached iteration {iteration}/12" if hit else "training not caught"
    elif moment == "checkpoint write":
        hit = wait_for(lambda: _ckpt_tmp(results), proc, timeout=300, poll=0.005)
        what = "killed while checkpoints/.last.ckpt.tmp existed" if hit else "checkpoint write not caught"
    elif moment == "curve part write":
        hit = wait_for(lambda: _part_tmp(results), proc, timeout=300, poll=0.005)
        what = "killed while a curves/.part tmp existed" if hit else "part write not caught"
    elif moment == "collect":
        hit = wait_for(lambda: _all_done(results), proc, timeout=300, poll=0.005)
        delay = rng.uniform(0, 0.6)
        time.sleep(delay)
        what = f"killed {delay:.2f} s after both runs were done (collect)"
    else:
        raise ValueError(moment)
    kill_tree(proc)
    rerun = run(sweep_args(results))
    case.done = f"{what}; reran the sweep"
    ok, case.observed, case.lost = check_recovered(results, clean, rerun)
    case.passed = ok and hit
    if not hit:
        case.observed = f"(moment missed) {case.observed}"
    return case


def kill_plot_case(work: Path, clean: Path, rng: random.Random) -> Case:
    results = work / "kill-plot"
    shutil.copytree(clean, results)
    before = {k: v for k, v in fingerprint(results).items() if k.startswith("runs/") or k.endswith("s.parquet")}
    # plot writes responses.parquet, then the figures: kill when one of them has just appeared
    target = rng.choice(["responses.parquet", "figures/fig1.png", "figures/fig6.png"])
    proc = start(cli("plot", "--results", str(results)))
    hit = wait_for(lambda: (results / target).exists(), proc, timeout=300, poll=0.005) and proc.poll() is None
    kill_tree(proc)
    again = run(cli("plot", "--results", str(results)))
    after = fingerprint(results)
    changed = [k for k, v in before.items() if after.get(k) != v and k != "responses.parquet"]
    figs = sorted(p.name for p in (results / "figures").glob("*.png"))
    junk = leftovers(results)
    ok = again.returncode == 0 and not changed and not junk and len(figs) >= 3 and hit
    observed = (f"{'' if hit else '(moment missed) '}replot exit {again.returncode}, {len(figs)} png, changed inputs: "
                f"{changed or 'none'}, left: {junk or 'none'}")
    return Case("kill -9 plot", f"killed once {target} appeared; reran plot",
                "replot exit 0, figures written, run folders and tables untouched", observed, ok, len(changed))


# ---- 2. disk trouble ----------------------------------------------------------------------------------------
@contextlib.contextmanager
def read_only(folder: Path):
    """A read-only bind mount (root ignores permission bits); chmod when mounting is not allowed."""
    mounted = subprocess.run(["mount", "-o", "bind,ro", str(folder), str(folder)], capture_output=True).returncode == 0
    if not mounted:
        for p in [folder, *folder.rglob("*")]:
            p.chmod(p.stat().st_mode & ~0o222)
    try:
        yield mounted or os.geteuid() != 0
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], capture_output=True)
        else:
            for p in [folder, *folder.rglob("*")]:
                p.chmod(p.stat().st_mode | 0o200)


def read_only_case(work: Path, clean: Path) -> list[Case]:
    results = work / "readonly"
    shutil.copytree(clean, results)
    before = fingerprint(results)
    cases = []
    commands = {
        "sweep (new depth)": sweep_args(results, "--depths", "8,14"),
        "collect": cli("collect", "--results", str(results)),
        "plot": cli("plot", "--results", str(results)),
        "train": [PYTHON, "-m", "degradation.train", "model.depth=14", "data=synthetic", "schedule=smoke",
                  f"results_dir={results}", *SWEEP_EXTRA],
    }
    with read_only(results) as effective:
        for name, argv in commands.items():
            got = run(argv)
            ok, seen = one_line_error(got, only=False)
            cases.append(Case(f"read-only results: {name}", "results folder mounted read-only",
                              "exit 2, ends with one error line, data intact", seen, ok and effective))
    lost = sum(1 for k, v in before.items() if fingerprint(results).get(k) != v)
    for c in cases:
        c.lost = lost
        c.passed = c.passed and not lost
        if lost:
            c.observed += f"; {lost} file(s) changed"
    return cases


_ENOSPC = """
import errno, os, sys
real = os.fsync
def full(fd):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
os.fsync = full
from degradation.cli import main
sys.exit(main(sys.argv[1:]))
"""


def enospc_case(work: Path, clean: Path) -> list[Case]:
    """Every atomic write fsyncs before its rename: a full disk shows up there (patched to raise ENOSPC)."""
    results = work / "enospc"
    shutil.copytree(clean, results)
    before = fingerprint(results)
    cases = []
    for name, args in {"collect": ["collect", "--results", str(results)],
                       "plot": ["plot", "--results", str(results)],
                       "sweep (new depth)": ["sweep", *SWEEP_FLAGS[:-1], "8,14", "--results", str(results), "--",
                                             *SWEEP_EXTRA]}.items():
        got = run([PYTHON, "-c", _ENOSPC, *args])
        ok, seen = one_line_error(got, code=got.returncode if got.returncode in (1, 2) else 2, only=False)
        cases.append(Case(f"disk full (ENOSPC): {name}", "os.fsync patched to raise ENOSPC",
                          "exit 1/2, ends with one error line, earlier data intact", seen, ok))
    after = fingerprint(results)
    lost = sum(1 for k, v in before.items() if after.get(k) != v)
    for c in cases:
        c.lost, c.passed = lost, c.passed and not lost
    return cases


def removed_case(work: Path, clean: Path) -> Case:
    results = work / "removed"
    proc = start(sweep_args(results))
    hit = wait_for(lambda: any((results / "runs").glob("*/checkpoints/last.ckpt")), proc)
    shutil.rmtree(results, ignore_errors=True)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        kill_tree(proc)
        return Case("results removed mid-run", "rm -rf results after the first checkpoint",
                    "sweep ends with a clear error, no traceback; a rerun completes", "sweep hung", False)
    traceback = "Traceback" in err
    rerun = run(sweep_args(results))
    ok, seen, lost = check_recovered(results, clean, rerun)
    said = _last(err) or _last(out)
    observed = f"sweep exit {proc.returncode}{', TRACEBACK' if traceback else ''} ({said}); rerun: {seen}"
    return Case("results removed mid-run", "rm -rf results after the first checkpoint; reran",
                "sweep ends non-zero without a traceback; rerun == clean", observed,
                hit and ok and not traceback and proc.returncode != 0, lost)


# ---- 3. corrupt state ---------------------------------------------------------------------------------------
def _partial_copy(clean: Path, dest: Path, run_prefix: str) -> Path:
    """A copy of the clean results in which the `run_prefix` run is partial (run.json says so)."""
    shutil.copytree(clean, dest)
    run_dir = next((dest / "runs").glob(f"{run_prefix}-*"))
    info = json.loads((run_dir / "run.json").read_text())
    info.update(status="partial", reason="made partial by the fault suite")
    (run_dir / "run.json").write_text(json.dumps(info))
    return run_dir


def corrupt_cases(work: Path, clean: Path) -> list[Case]:
    cases = []

    # a truncated checkpoint of a partial run: restart the run (the checkpoint is kept aside), say so
    results = work / "trunc-ckpt"
    run_dir = _partial_copy(clean, results, "plain")
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    got = run(sweep_args(results))
    ok, seen, lost = check_recovered(results, clean, got, restarted=(run_dir.name,))
    log = (run_dir / "train.log").read_text(errors="replace")
    said = "cannot be read" in log or "corrupt" in log
    cases.append(Case("truncated checkpoint", "halved last.ckpt of a partial run; reran the sweep",
                      "reported, run restarted, tables == clean", f"{'reported' if said else 'NOT reported'}; {seen}",
                      ok and said, lost))

    # a truncated curve part: collect warns naming it and rebuilds its rows from the checkpoint (issue 16)
    results = work / "trunc-part"
    shutil.copytree(clean, results)
    part = sorted((next((results / "runs").glob("plain-*")) / "curves").glob("part-*.parquet"))[-1]
    part.write_bytes(part.read_bytes()[:100])
    got = run(cli("collect", "--results", str(results)))
    warned = part.name in got.stderr and "Traceback" not in got.stderr
    problems, _ = compare(results, clean)
    ref, now = read_tables(clean)[0], read_tables(results)[0]
    had = len(pd.read_parquet(next((clean / "runs").glob("plain-*")) / "curves" / part.name))
    lost = len(ref) - len(now)
    cases.append(Case("truncated curve part", f"cut {part.name} to 100 bytes; collect",
                      "exit 0, warning names the part, every row back (rebuilt from the checkpoint)",
                      f"exit {got.returncode}, warned={warned}, rows {len(now)}/{len(ref)} (part had {had})",
                      got.returncode == 0 and warned and lost == 0, max(lost, 0)))

    # garbage run.json: collect skips with a warning; the sweep retrains/resumes it to the same result
    results = work / "garbage-json"
    shutil.copytree(clean, results)
    (next((results / "runs").glob("resnet-*")) / "run.json").write_text("{not json")
    got = run(cli("collect", "--results", str(results)))
    warned = "run.json" in got.stderr and "Traceback" not in got.stderr
    again = run(sweep_args(results))
    ok, seen, lost = check_recovered(results, clean, again)
    cases.append(Case("garbage run.json", "overwrote a done run's run.json; collect, then reran the sweep",
                      "collect warns and goes on; sweep resumes it; tables == clean",
                      f"collect exit {got.returncode} warned={warned}; {seen}", ok and warned and got.returncode == 0,
                      lost))

    # run folders written by another schema version: skipped with a warning, never trained over
    for version in (0, 99):
        results = work / f"schema-{version}"
        shutil.copytree(clean, results)
        run_dir = next((results / "runs").glob("plain-*"))
        info = json.loads((run_dir / "run.json").read_text())
        info.update(schema_version=version, status="partial")
        (run_dir / "run.json").write_text(json.dumps(info))
        before = fingerprint(run_dir)
        got = run(cli("collect", "--results", str(results)))
        warned = "schema" in got.stderr and "Traceback" not in got.stderr
        swept = run(sweep_args(results))
        untouched = {k: v for k, v in fingerprint(run_dir).items() if k != "train.log"} == {
            k: v for k, v in before.items() if k != "train.log"}
        reported = "schema" in swept.stdout + swept.stderr
        cases.append(Case(f"run.json schema_version={version}", "edited a run's schema_version; collect, sweep",
                          "warned and skipped by collect and sweep; folder untouched; no traceback",
                          f"collect exit {got.returncode} warned={warned}; sweep exit {swept.returncode} "
                          f"reported={reported}, folder untouched={untouched}",
                          warned and reported and untouched and "Traceback" not in swept.stderr, 0))
    return cases


# ---- 4. bad arguments ---------------------------------------------------------------------------------------
def bad_arguments(tmp: Path) -> list[tuple[str, ...]]:
    """Argument lists that must each end with exit 2 and one line on stderr."""
    missing, a_file = str(tmp / "missing"), "/etc/passwd"
    tiny = ("--data", "synthetic", "--preset", "smoke", "--dry-run")
    return [
        ("nosuch",),
        ("models", "--depths", ""), ("models", "--depths", "-8"), ("models", "--depths", "abc"),
        ("models", "--depths", "99999998"), ("models", "--archs", "foo"), ("models", "--shortcut", "Z"),
        ("models", "--family", "x"), ("models", "--num-classes", "0"), ("models", "--num-classes", "abc"),
        ("models", "--num-classes", "99999999999"), ("models", "--bogus"),
        ("train", ""), ("train", "model.depth=-8"), ("train", "model.depth=abc"), ("train", "model=foo"),
        ("train", "model.depth=99999998"), ("train", "schedule.lr=abc"), ("train", "schedule.batch_size=0"),
        ("train", "seed=-1"), ("train", "seed=99999999999999999999"), ("train", "foo.bar=1"), ("train", "nokey"),
        ("train", "data=synthetic", f"results_dir={a_file}/x"),
        ("sweep", "--depths", ""), ("sweep", "--depths", "-8"), ("sweep", "--depths", "abc"),
        ("sweep", "--depths", "99999998", *tiny), ("sweep", "--seeds", "-1"), ("sweep", "--seeds", "x"),
        ("sweep", "--seeds", "99999999999999999999", *tiny, "--depths", "8", "--results", missing),
        ("sweep", "--archs", "foo"), ("sweep", "--data", "foo"), ("sweep", "--preset", "foo"),
        ("sweep", "--jobs", "0"), ("sweep", "--jobs", "x"), ("sweep", "--launcher", "foo"),
        ("sweep", "--results", a_file), ("sweep", "--results", "", *tiny), ("sweep", "--", "model.depth=8"),
        ("sweep", "--", "junk"), ("sweep", "--shortcut", "Z"),
        ("collect", "--results", missing), ("collect", "--results", ""), ("collect", "--results", a_file),
        ("status", "--results", missing), ("status", "--results", ""), ("status", "--results", a_file),
        ("responses", "--results", missing), ("responses", "--results", ""),
        ("plot", "--results", missing), ("plot", "--results", ""), ("plot", "--results", a_file),
        ("bench", "--depths", ""), ("bench", "--depths", "-8"), ("bench", "--iters", "0"), ("bench", "--iters", "x"),
        ("bench", "--iters", "99999999999"), ("bench", "--device", "foo"), ("bench", "--archs", "foo"),
        ("bench", "--depths", "99999998"),
    ]


def bad_argument_cases(tmp: Path) -> list[Case]:
    cases = []
    for args in bad_arguments(tmp):
        got = run(cli(*args), timeout=120)
        ok, seen = one_line_error(got)
        shown = " ".join(a if a else "''" for a in args)
        cases.append(Case(f"bad args: {shown}"[:60], "ran the command", "exit 2, one stderr line", seen, ok))
    created = tmp / "missing"
    if created.exists():
        cases.append(Case("bad args leave nothing", "looked for the missing folder", "not created",
                          "created", False))
    return cases


# ---- 5. divergence ------------------------------------------------------------------------------------------
def nan_case(work: Path, clean: Path) -> Case:
    results = work / "nan"
    shutil.copytree(clean, results)
    got = run(cli("sweep", *SWEEP_FLAGS[:-1], "14", "--results", str(results), "--", *SWEEP_EXTRA,
                  "schedule.lr=1e20"))
    runs = pd.read_parquet(results / "runs.parquet")
    failed = runs[runs["depth"] == 14]
    plot = run(cli("plot", "--results", str(results)))
    said = "14" in plot.stdout + plot.stderr and ("fail" in (plot.stdout + plot.stderr).lower())
    manifest = json.loads((results / "figures" / "manifest.json").read_text()) if plot.returncode == 0 else {}
    drawn = json.dumps(manifest)
    left_out = not any(r in drawn.split("missing")[0] for r in failed["run_id"]) if manifest else False
    ok = (got.returncode == 1 and len(failed) == 2 and (failed["status"] == "failed").all()
          and plot.returncode == 0 and said and "Traceback" not in got.stderr + plot.stderr)
    observed = (f"sweep exit {got.returncode}, depth-14 statuses {sorted(failed['status'])}, plot exit "
                f"{plot.returncode}, says so={said}, not drawn={left_out}")
    return Case("NaN run (lr=1e20)", "added depth 14 with schedule.lr=1e20 to a clean folder; plot",
                "runs failed, sweep goes on and exits 1, plot leaves them out and says so", observed,
                ok and left_out, 0)


# ---- 6. concurrency -----------------------------------------------------------------------------------------
def concurrency_case(work: Path, clean: Path) -> Case:
    results = work / "concurrent"
    a = start(sweep_args(results))
    time.sleep(1.0)
    b = start(sweep_args(results))
    time.sleep(4.0)
    p = start(cli("plot", "--results", str(results)))
    outs = [proc.communicate(timeout=300) for proc in (a, b, p)]
    codes = [a.returncode, b.returncode, p.returncode]
    plot_ok = p.returncode == 0 or one_line_error((p.returncode, outs[2][1]))[0]
    final = run(cli("collect", "--results", str(results)))
    ok, seen, lost = check_recovered(results, clean, final)
    tracebacks = sum("Traceback" in err for _, err in outs)
    passed = ok and codes[:2] == [0, 0] and plot_ok and not tracebacks
    return Case("2 sweeps + plot at once", "started sweep, sweep, plot 1 s and 4 s apart; then collect",
                "sweeps exit 0, plot 0 or one-line error, each run finished once, tables == clean",
                f"exits {codes}, tracebacks {tracebacks}; {seen}", passed, lost)


# ---- the table ----------------------------------------------------------------------------------------------
def print_table(cases: list[Case]) -> None:
    widths = (42, 58, 44, 90)
    head = ("case", "what was done", "expected", "observed")
    print(" | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " | result")
    print("-" * (sum(widths) + 3 * len(widths) + 6))
    for c in cases:
        cells = (c.case, c.done, c.expected, c.observed)
        row = " | ".join(_cut(t, w) for t, w in zip(cells, widths, strict=True))
        print(f"{row} | {'pass' if c.passed else 'FAIL'}")
    lost = sum(c.lost for c in cases)
    print(f"\ncases tried: {len(cases)}, cases passed: {sum(c.passed for c in cases)}, data lost: {lost}")


def _cut(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text.ljust(width) if len(text) <= width else text[: width - 1] + "~"


def clean_sweep(work: Path) -> Path:
    clean = work / "clean"
    got = run(sweep_args(clean))
    if got.returncode != 0:
        sys.exit(f"the clean sweep failed (exit {got.returncode}): {_last(got.stderr or got.stdout)}")
    again = work / "clean2"
    run(sweep_args(again))
    problems, _ = compare(again, clean)
    if problems:
        sys.exit(f"two clean sweeps differ, comparisons are meaningless: {problems}")
    shutil.rmtree(again)
    return clean


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer kills and no full-disk sweep")
    parser.add_argument("--keep", type=Path, help="work folder to keep (default: a temporary one, removed)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random kill moments")
    parser.add_argument("--only", default="", help="comma list of groups: kill,disk,corrupt,args,nan,concurrency")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    work = args.keep or Path(tempfile.mkdtemp(prefix="degradation-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    groups = set(filter(None, args.only.split(","))) or {"kill", "disk", "corrupt", "args", "nan", "concurrency"}
    cases: list[Case] = []
    t0 = time.monotonic()
    try:
        clean = clean_sweep(work)
        print(f"clean sweep in {work / 'clean'} ({time.monotonic() - t0:.0f} s)", flush=True)
        if "args" in groups:
            cases += bad_argument_cases(work)
        if "corrupt" in groups:
            cases += corrupt_cases(work, clean)
        if "nan" in groups:
            cases.append(nan_case(work, clean))
        if "disk" in groups:
            cases += read_only_case(work, clean)
            cases += enospc_case(work, clean)
            if not args.quick:
                cases.append(removed_case(work, clean))
        if "kill" in groups:
            moments = ["training", "checkpoint write", "collect"]
            if not args.quick:
                moments += ["training", "curve part write", "training", "checkpoint write"]
            for moment in moments:
                cases.append(kill_sweep_case(work / f"k{len(cases)}", clean, moment, rng))
            cases.append(kill_plot_case(work, clean, rng))
        if "concurrency" in groups:
            cases.append(concurrency_case(work, clean))
    finally:
        print_table(cases)
        print(f"({time.monotonic() - t0:.0f} s; work folder {work}{'' if args.keep else ', removed'})")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if cases and all(c.passed for c in cases) else 1


if __name__ == "__main__":
    sys.exit(main())
