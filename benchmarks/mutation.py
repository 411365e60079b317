"""Mutation score of the science core: mutmut on one module group at a time, each against its own tests only.

    python benchmarks/mutation.py                 # every group (long: see the README's figures)
    python benchmarks/mutation.py conf verdict    # some groups
    python benchmarks/mutation.py --list          # the groups, their modules and tests
    make mutation GROUPS="conf verdict"

Each group runs in its own copy of the checkout (<out>/<group>/, default /tmp/degradation-mutation), so groups
can run side by side and nothing here is touched. mutmut mutates only the group's modules and, per mutant, runs
only those of the group's tests that reach the mutated function. Printed per group: mutants, killed (a timeout
counts as killed, as mutmut's own score does), survivors (a "no tests" mutant is one: no test of the group reaches
it), the ones benchmarks/mutation_equivalent.txt names as equivalent, and the score killed / (mutants -
equivalent). Then the survivors not judged equivalent, each with its diff when --diff is given.

Not part of `make test` or CI: a group takes minutes to tens of minutes on a busy 2-core machine.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT = Path(__file__).with_name("mutation_equivalent.txt")

# group -> (modules mutated, the tests that are theirs, the functions mutated: mutmut name globs, [] = every
# function of the modules). The science core (issue 28): blocks, stem and shortcuts; schedule and warm-up;
# normalisation, splits and augmentation; run id and variants; verdict and seed statistics; 10-crop; gradient flow;
# curve writing and collection; resume. Where a module also holds plumbing (printing, file listing), only the
# functions that compute the science are named, so that a group runs in minutes.
Group = tuple[list[str], list[str], list[str]]
GROUPS: dict[str, Group] = {
    "conf": (["degradation/conf/__init__.py"], ["tests/test_conf.py"],
             [f"degradation.conf.x_{f}__mutmut_*" for f in ("result_tree", "_drop", "_flat", "variant_settings",
                                                              "variant_of", "run_id", "result_dict", "resolved_dict")]),
    "verdict": (["degradation/analysis/summary.py", "degradation/analysis/finals.py"], ["tests/test_verdict.py"],
                [f"degradation.analysis.summary.x_{f}__mutmut_*" for f in ("binomial_se", "step", "verdict",
                                                                             "_window_images")]
                + ["degradation.analysis.summary.xǁStepǁoutcome__mutmut_*"]
                + [f"degradation.analysis.finals.x_{f}__mutmut_*" for f in ("_std", "cell_stats")]),
    "schedule": (["degradation/train/schedule.py"],
                 ["tests/test_schedule.py", "tests/test_warmup_cap.py", "tests/test_defaults.py"], []),
    # train/tencrop.py has no group: mutmut leaves decorated functions alone, and ten_crop_errors is @torch.no_grad()
    # (so are LayerFlow.accumulate and Step.outcome, a @property). tests/test_tencrop.py was checked by hand mutants.
    "models": (["degradation/models/blocks.py", "degradation/models/cifarnet.py", "degradation/models/imagenet.py"],
               ["tests/test_models.py", "tests/test_blocks.py"], []),
    "imageaug": (["degradation/data/imageaug.py"],
                 ["tests/test_imageaug.py", "tests/test_data_images.py", "tests/test_presets.py",
                  "tests/test_tencrop.py"], []),
    "data": (["degradation/data/normalize.py", "degradation/data/splits.py", "degradation/data/stream.py"],
             ["tests/test_data.py", "tests/test_normalize.py", "tests/test_data_stream.py", "tests/test_presets.py"],
             ["degradation.data.normalize.*", "degradation.data.splits.*"]
             + [f"degradation.data.stream.{f}__mutmut_*" for f in (
                 "x_epoch_seed", "xǁ_EpochPlanǁ__init__", "xǁBatchStreamǁ_crop_table", "xǁBatchStreamǁ_positions",
                 "xǁBatchStreamǁ_assemble", "xǁStreamPositionǁ*")]),
    "resume": (["degradation/store/runs.py", "degradation/train/module.py"],
               ["tests/test_resume_state.py", "tests/test_train_resume.py"],
               [f"degradation.store.runs.x_{f}__mutmut_*" for f in ("trim_parts", "_trim", "part_step", "part_name")]
               + [f"degradation.train.module.{f}__mutmut_*" for f in (
                   "x__rng_state", "x__set_rng_state", "xǁTrainModuleǁconfigure_optimizers",
                   "xǁTrainModuleǁon_save_checkpoint", "xǁTrainModuleǁon_load_checkpoint")]),
    "flow": (["degradation/train/layers.py", "degradation/analysis/flow.py"], ["tests/test_gradient_flow.py"], []),
    "curves": (["degradation/train/curvewriter.py", "degradation/store/results.py"],
               ["tests/test_results.py", "tests/test_curve_repair.py"],
               ["degradation.train.curvewriter.*"]
               + [f"degradation.store.results.x_{f}__mutmut_*" for f in ("run_row", "merge_curves", "read_layers",
                                                                     "_parts_repaired", "collect")]),
}

COPY = ("degradation", "conf", "tests", "pyproject.toml")
KILLED = ("killed", "timeout", "segfault")  # a timeout counts as killed, as in mutmut's own score
UNRUN = ("skipped", "not checked")  # not tested (yet): a run cut short leaves "not checked"; out of the score
LINE = re.compile(r"^\s+(\S+): (.+)$")


def equivalent() -> dict[str, str]:
    """mutant name -> why it is equivalent (benchmarks/mutation_equivalent.txt: `name  reason`, # comments)."""
    out = {}
    if EQUIVALENT.is_file():
        for line in EQUIVALENT.read_text().splitlines():
            line = line.split("#", 1)[0].strip() if line.lstrip().startswith("#") else line.strip()
            if line:
                name, _, reason = line.partition(" ")
                out[name] = reason.strip()
    return out


def mutmut_config(modules: list[str], tests: list[str]) -> str:
    """The [tool.mutmut] table of one group (mutmut reads it from the pyproject.toml where it runs)."""
    def toml_list(items: list[str]) -> str:
        return "[" + ", ".join(f'"{i}"' for i in items) + "]"

    return "\n".join([
        "[tool.mutmut]",
        'source_paths = ["degradation"]',
        f"only_mutate = {toml_list(modules)}",
        f"pytest_add_cli_args_test_selection = {toml_list(tests)}",
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-m", "not slow"]',
        'also_copy = ["conf"]',
        "use_git_change_detection = false",
        "",
    ])


def prepare(group: str, out: Path) -> Path:
    """A fresh copy of the checkout for `group`, its pyproject.toml carrying the group's mutmut table."""
    modules, tests, _ = GROUPS[group]
    work = out / group
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, work / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, work / name)
    pyproject = (work / "pyproject.toml").read_text()
    pyproject = re.sub(r"\n\[tool\.mutmut\]\n(?:[^\[].*\n|\n)*", "\n", pyproject)
    present = [t for t in tests if (ROOT / t).is_file()]
    (work / "pyproject.toml").write_text(pyproject + "\n" + mutmut_config(modules, present))
    return work


def mutmut(work: Path, *args: str, capture: bool = True) -> str:
    exe = Path(sys.executable).with_name("mutmut")
    (work / "mutants").mkdir(exist_ok=True)  # on PYTHONPATH before start: a missing folder would be cached as absent
    env = {**os.environ, "PYTHONPATH": str(work / "mutants")}  # for tests that start `python -m degradation...`
    done = subprocess.run([str(exe), *args], cwd=work, env=env, text=True, capture_output=capture, check=False)
    return (done.stdout or "") + (done.stderr or "")


def run_group(group: str, out: Path, children: int) -> tuple[dict[str, str], float, str]:
    """{mutant: status} of one group, the seconds it took, and mutmut's output (for a failed run)."""
    work = prepare(group, out)
    if not any((ROOT / t).is_file() for t in GROUPS[group][1]):
        return {}, 0.0, "no test file of the group exists: nothing kills its mutants"
    start = time.perf_counter()
    log = mutmut(work, "run", "--max-children", str(children), *GROUPS[group][2])
    seconds = time.perf_counter() - start
    (out / f"{group}.log").write_text(log)
    return results(work, GROUPS[group][2]), seconds, log


def rerun_survivors(group: str, out: Path, children: int, known: dict[str, str]) -> tuple[dict[str, str], float, str]:
    """The last run's survivors (not judged equivalent) tested again against the checkout's tests as they are now:
    after adding tests for survivors, without testing every mutant again."""
    work = out / group
    before = results(work, GROUPS[group][2])
    survivors = [n for n, s in before.items() if s not in KILLED + UNRUN and n not in known]
    if not survivors:
        return before, 0.0, ""
    shutil.rmtree(work / "tests")
    shutil.copytree(ROOT / "tests", work / "tests", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    start = time.perf_counter()
    log = mutmut(work, "run", "--max-children", str(children), *survivors)
    seconds = time.perf_counter() - start
    (out / f"{group}.rerun.log").write_text(log)
    return results(work, GROUPS[group][2]), seconds, log


def results(work: Path, functions: list[str]) -> dict[str, str]:
    """{mutant: status} of the group's functions (mutmut also lists the module's other, unrun, mutants)."""
    statuses = {}
    for line in mutmut(work, "results", "--all", "true").splitlines():
        match = LINE.match(line)
        if match and (not functions or any(fnmatch.fnmatch(match.group(1), f) for f in functions)):
            statuses[match.group(1)] = match.group(2).strip()
    return statuses


def score(statuses: dict[str, str], known: dict[str, str]) -> tuple[int, int, list[str], list[str]]:
    """(killed, counted, survivors not judged equivalent, survivors judged equivalent); mutants not tested (UNRUN)
    are in none of them."""
    killed = sum(s in KILLED for s in statuses.values())
    survivors = sorted(n for n, s in statuses.items() if s not in KILLED + UNRUN)
    judged = [n for n in survivors if n in known]
    unrun = sum(s in UNRUN for s in statuses.values())
    return killed, len(statuses) - unrun - len(judged), [n for n in survivors if n not in known], judged


def mutable_functions(module: str) -> list[str]:
    """mutmut's names of the functions in `module` (a path under ROOT): `pkg.mod.x_fn`, `pkg.mod.xǁClassǁmethod`."""
    path = ROOT / module
    dotted = str(Path(module).with_suffix("")).replace(os.sep, ".").removesuffix(".__init__")
    names = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.append(f"{dotted}.x_{node.name}")
        elif isinstance(node, ast.ClassDef):
            names += [f"{dotted}.xǁ{node.name}ǁ{item.name}" for item in node.body
                      if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)]
    return names


def stale(group: str) -> list[str]:
    """What in `group`'s entry no longer matches the checkout: a module or test file that is gone, a function glob
    that names no function of the modules (after a move or rename mutmut would mutate or test nothing, silently)."""
    modules, tests, functions = GROUPS[group]
    problems = [f"{path}: no such file" for path in modules + tests if not (ROOT / path).is_file()]
    names = [n for m in modules if (ROOT / m).is_file() for n in mutable_functions(m)]
    problems += [f"{glob}: matches no function of {' '.join(modules)}" for glob in functions
                 if not any(fnmatch.fnmatch(f"{n}__mutmut_1", glob) for n in names)]
    return problems


def by_function(names: list[str]) -> dict[str, list[str]]:
    """`pkg.mod.x_fn__mutmut_7` names grouped as {"pkg.mod.x_fn": ["7", ...]}, numbers in order."""
    out: dict[str, list[str]] = {}
    for name in names:
        function, _, number = name.rpartition("__mutmut_")
        out.setdefault(function, []).append(number)
    return {f: sorted(n, key=lambda v: int(v) if v.isdigit() else 0) for f, n in sorted(out.items())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="*", help=f"groups to run (default: all): {', '.join(GROUPS)}")
    parser.add_argument("--out", type=Path, default=Path("/tmp/degradation-mutation"))
    parser.add_argument("--children", type=int, default=1, help="mutants tested at once (default 1)")
    parser.add_argument("--diff", action="store_true", help="show each survivor's diff")
    parser.add_argument("--report-only", action="store_true", help="read the last run's results, run nothing")
    parser.add_argument("--rerun-survivors", action="store_true",
                        help="test only the last run's survivors again, against the tests as they are now")
    parser.add_argument("--list", action="store_true", help="print the groups and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, (modules, tests, functions) in GROUPS.items():
            print(f"{name:9} {' '.join(modules)}\n{'':9} tests: {' '.join(tests)}")
            print(f"{'':9} functions: {' '.join(functions) or 'all'}")
            for problem in stale(name):
                print(f"{'':9} STALE {problem}")
        return 0
    unknown = [g for g in args.groups if g not in GROUPS]
    if unknown:
        print(f"unknown group(s) {', '.join(unknown)}; choose from {', '.join(GROUPS)}", file=sys.stderr)
        return 2
    problems = [f"{g}: {p}" for g in args.groups or list(GROUPS) for p in stale(g)]
    if problems:
        print("the group table no longer matches the checkout (fix GROUPS in benchmarks/mutation.py):\n  "
              + "\n  ".join(problems), file=sys.stderr)
        return 2
    known = equivalent()
    rows, open_survivors = [], {}
    for group in args.groups or list(GROUPS):
        if args.report_only:
            statuses, seconds, log = results(args.out / group, GROUPS[group][2]), float("nan"), ""
        elif args.rerun_survivors:
            print(f"{group}: testing the last run's survivors again ...", flush=True)
            statuses, seconds, log = rerun_survivors(group, args.out, args.children, known)
        else:
            print(f"{group}: running ...", flush=True)
            statuses, seconds, log = run_group(group, args.out, args.children)
        if not statuses:
            print(f"{group}: no results; mutmut said:\n{log[-2000:]}", file=sys.stderr)
            continue
        killed, counted, survivors, judged = score(statuses, known)
        pct = 100 * killed / counted if counted else 100.0
        unrun = sum(s == "not checked" for s in statuses.values())
        rows.append((group, len(statuses), killed, len(survivors), len(judged), unrun, pct, seconds))
        open_survivors[group] = survivors
        print(f"{group}: {killed}/{counted} killed ({pct:.1f}%), {len(judged)} equivalent, {seconds:.0f} s"
              + (f", {unrun} not tested (the run was cut short)" if unrun else ""), flush=True)
    print(f"\n{'group':9} {'mutants':>7} {'killed':>6} {'survived':>8} {'equiv.':>6} {'untested':>8} {'score':>6} "
          f"{'time':>7}")
    for group, total, killed, survived, judged, unrun, pct, seconds in rows:
        print(f"{group:9} {total:7} {killed:6} {survived:8} {judged:6} {unrun:8} {pct:5.1f}% {seconds:6.0f}s")
    for group, survivors in open_survivors.items():
        if survivors:
            print(f"\n{group}: survivors not judged equivalent (function: mutant numbers)")
            for function, numbers in by_function(survivors).items():
                print(f"  {function}: {', '.join(numbers)}")
            if args.diff:
                for name in survivors:
                    print("    " + mutmut(args.out / group, "show", name).replace("\n", "\n    "))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
