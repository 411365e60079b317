"""Does bf16 move the curves beyond seed-to-seed noise? fp32 vs bf16 on one seed, against fp32 on another seed.

    .venv/bin/python benchmarks/precision_check.py [--device auto|cpu|cuda|mps] [--arch resnet|plain] [--depth 20]
        [--iters 1000] [--results DIR] [--data synthetic] [--schedule demo] [--floor 0.5] [--slack 1.5]
        [-- OVERRIDE ...]

Trains three short runs through the tool itself (`degradation.train.run.train`), each in its own results folder
under --results:

    A = fp32 (trainer.precision=32-true), seed S       B = bf16 (bf16-mixed), seed S       C = fp32, seed S+1

The schedule is --schedule (demo: the lr tuned for the synthetic set) cut to --iters iterations, with the lr drops
at 50% and 75% so both happen inside the short run, and about 2 x --evals training windows and --evals test
evaluations. Runs that are already done in --results are reused (train() reports them as done), so a rerun with
the same arguments only compares. Overrides after `--` go to every run (e.g. data.train_size=2000).

The rule, for the train error (one value per logging window) and the test error (one per evaluation), each on the
steps the three runs share, over the second half of the run (step > last step / 2):

    precision gap = mean |A - B|     seed gap = mean |A - C|     limit = max(1.5 x seed gap, floor)  (floor 0.5 pp)
    a split passes when precision gap <= limit; the verdict is PASS when both splits pass.

Why this rule:
- B shares A's initialisation, data order and augmentation, so it differs from A only in arithmetic. Training
  amplifies rounding differences, but at most up to the spread between seeds; a gap larger than C's means bf16
  changes where training goes, not just the noise in it.
- The second half holds both lr drops and the converged part of the curves that figures and final numbers are read
  from; the first half is the steep fall where a small shift in time gives a large gap at every point.
- The 1.5 (--slack): over a long enough run the rounding differences decorrelate B from A as far as another
  seed would, and then |A - B| and |A - C| are two draws of the same size: a limit of exactly |A - C| would fail a
  harmless bf16 half of the time. 1.5x still fails a bf16 that moves the curves clearly beyond seed noise.
- A mean over the half rather than the final point: one window or one evaluation is a single noisy draw. The final
  gaps are printed for reference, not judged.
- The floor: one pair of seeds is a rough estimate of seed noise and can be near zero by chance (or when both runs
  fit the training set, train error 0 for both), which would fail bf16 for differences no figure could show.
  0.5 percentage points is well below the gaps between depths the paper's figures are about (several points).

Prints one line per run (time, images/s), a table in percentage points and a `verdict: PASS|FAIL` line; writes
<results>/precision_check.parquet (one row per split and step: the three errors and the two gaps, as fractions).
Exit 0 on PASS, 1 on FAIL (also when a run does not finish, e.g. a NaN loss), 2 on bad arguments or config
(one `error:` line, no traceback).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

SPLITS = ("train", "test")
FLOOR = 0.005  # 0.5 percentage points, as a fraction (errors are stored as fractions)
SLACK = 1.5  # the limit is this many seed gaps (see the module docstring)
RESERVED = ("seed", "trainer.precision", "trainer.accelerator", "results_dir", "schedule.max_iters")
OUTPUT = "precision_check.parquet"


class BadArguments(Exception):
    """A command-line mistake: one `error:` line and exit 2."""


# ---- the comparison (pure: curves in, summary and verdict out) ---------------------------------------------
@dataclass
class Comparison:
    """points: one row per split and step; summary: one row per split; passed: the verdict."""

    points: pd.DataFrame
    summary: pd.DataFrame
    passed: bool
    floor: float
    slack: float


def error_series(curves: pd.DataFrame, split: str) -> pd.Series:
    """The error of one split by step (the last row wins where a resumed run wrote a step twice)."""
    rows = curves[(curves["split"] == split) & (curves["metric"] == "error")]
    rows = rows.drop_duplicates(subset="step", keep="last")
    return pd.Series(rows["value"].to_numpy(dtype=float), index=rows["step"].to_numpy(dtype="int64"), name=split)


def point_differences(fp32: pd.DataFrame, bf16: pd.DataFrame, other_seed: pd.DataFrame) -> pd.DataFrame:
    """Per split and shared step: the three errors, |A-B|, |A-C|, and whether the step is in the second half."""
    frames = []
    for split in SPLITS:
        joined = pd.concat(
            [error_series(fp32, split), error_series(bf16, split), error_series(other_seed, split)],
            axis=1, keys=["fp32", "bf16", "fp32_other_seed"], join="inner",
        ).sort_index()
        if joined.empty:
            raise ValueError(f"no {split} error points shared by the three runs")
        joined = joined.rename_axis("step").reset_index()
        joined.insert(0, "split", split)
        joined["precision_gap"] = (joined["fp32"] - joined["bf16"]).abs()
        joined["seed_gap"] = (joined["fp32"] - joined["fp32_other_seed"]).abs()
        joined["second_half"] = joined["step"] > joined["step"].max() / 2
        frames.append(joined)
    return pd.concat(frames, ignore_index=True)


def summarise(points: pd.DataFrame, floor: float = FLOOR, slack: float = SLACK) -> pd.DataFrame:
    """One row per split: mean gaps over the second half, the limit, the final gaps, and whether it passes."""
    rows = []
    for split, group in points.groupby("split", sort=False):
        half = group[group["second_half"]]
        last = group.loc[group["step"].idxmax()]
        precision, seed = float(half["precision_gap"].mean()), float(half["seed_gap"].mean())
        limit = max(slack * seed, floor)
        rows.append({
            "split": split, "points": len(group), "half_points": len(half),
            "precision_gap": precision, "seed_gap": seed, "limit": limit,
            "final_step": int(last["step"]), "final_precision_gap": float(last["precision_gap"]),
            "final_seed_gap": float(last["seed_gap"]), "passed": bool(precision <= limit),
        })
    return pd.DataFrame(rows)


def compare(
    fp32: pd.DataFrame, bf16: pd.DataFrame, other_seed: pd.DataFrame, floor: float = FLOOR, slack: float = SLACK
) -> Comparison:
    """The rule of the module docstring on three long-format curve tables (A, B, C); ValueError if one lacks a split."""
    if floor < 0:
        raise ValueError(f"floor={floor} must be >= 0")
    points = point_differences(fp32, bf16, other_seed)
    summary = summarise(points, floor, slack)
    return Comparison(points=points, summary=summary, passed=bool(summary["passed"].all()), floor=floor, slack=slack)


def _pp(fraction: float) -> str:
    return f"{100 * fraction:.2f}"


def format_table(summary: pd.DataFrame) -> str:
    """The summary in percentage points, one line per split."""
    head = f"{'split':<6}{'points':>7}{'half':>6}{'|A-B| half':>12}{'|A-C| half':>12}{'limit':>8}{'ok':>5}" \
           f"{'|A-B| final':>13}{'|A-C| final':>13}"
    lines = [head + "   (percentage points; A fp32, B bf16, C fp32 other seed)"]
    for row in summary.itertuples(index=False):
        lines.append(
            f"{row.split:<6}{row.points:>7}{row.half_points:>6}{_pp(row.precision_gap):>12}{_pp(row.seed_gap):>12}"
            f"{_pp(row.limit):>8}{'yes' if row.passed else 'NO':>5}{_pp(row.final_precision_gap):>13}"
            f"{_pp(row.final_seed_gap):>13}"
        )
    return "\n".join(lines)


def verdict_line(comparison: Comparison) -> str:
    """`verdict: PASS|FAIL (...)` with each split's precision gap against its limit."""
    parts = ", ".join(
        f"{row.split} {_pp(row.precision_gap)} {'<=' if row.passed else '>'} {_pp(row.limit)} pp"
        for row in comparison.summary.itertuples(index=False)
    )
    if comparison.passed:
        return f"verdict: PASS (bf16 within seed-to-seed noise over the second half: {parts})"
    return f"verdict: FAIL (bf16 moves the curves beyond seed-to-seed noise over the second half: {parts})"


# ---- the three runs ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Arm:
    """One of the three runs: its letter, folder name under --results, precision and seed."""

    letter: str
    name: str
    precision: str
    seed: int


def arms(seed: int, other_seed: int) -> list[Arm]:
    return [
        Arm("A", f"fp32-s{seed}", "32-true", seed),
        Arm("B", f"bf16-s{seed}", "bf16-mixed", seed),
        Arm("C", f"fp32-s{other_seed}", "32-true", other_seed),
    ]


def schedule_overrides(iters: int, evals: int) -> list[str]:
    """max_iters, lr drops at 50% and 75%, about 2 x evals windows and evals evaluations, a checkpoint per eval."""
    log_every = max(1, iters // (2 * evals))
    eval_every = 2 * log_every
    return [
        f"schedule.max_iters={iters}",
        f"schedule.milestones=[{iters // 2},{iters * 3 // 4}]",
        f"schedule.log_every={log_every}",
        f"schedule.eval_every={eval_every}",
        f"schedule.checkpoint_every={eval_every}",
    ]


def run_overrides(args: argparse.Namespace, arm: Arm) -> list[str]:
    """Everything one run is composed from; the arm's own keys come last so nothing overrides them."""
    base = [f"model={args.arch}", f"model.depth={args.depth}", f"data={args.data}", f"schedule={args.schedule}"]
    if args.batch_size is not None:
        base.append(f"schedule.batch_size={args.batch_size}")
    return [
        *base, *schedule_overrides(args.iters, args.evals), *args.overrides,
        f"trainer.accelerator={args.device}", f"trainer.precision={arm.precision}", f"seed={arm.seed}",
        f"results_dir={Path(args.results) / arm.name}",
    ]


def train_arm(args: argparse.Namespace, arm: Arm) -> tuple[dict, pd.DataFrame]:
    """Train (or reuse) one run; its run.json content and its curves read from its own run folder."""
    from degradation.conf import compose, run_dir
    from degradation.store.results import merge_curves
    from degradation.store.runs import read_parts
    from degradation.train.run import train

    cfg = compose(run_overrides(args, arm))
    info = train(cfg)
    return info, merge_curves(read_parts(run_dir(cfg)))


def run_line(arm: Arm, info: dict) -> str:
    speed = info.get("images_per_s")
    return (
        f"{arm.letter} {arm.name:<9} {info.get('status')}: {info.get('wall_s') or 0:.1f} s, "
        f"{speed or 0:,.0f} img/s, final train err {100 * (info.get('final_train_error') or 0):.2f}%, "
        f"test err {100 * (info.get('final_test_error') or 0):.2f}% ({info.get('device')}; {info.get('run_id')})"
    )


# ---- command line ------------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + message
        raise BadArguments(message)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = _Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "gpu", "mps"))
    parser.add_argument("--arch", default="resnet", choices=("resnet", "plain"))
    parser.add_argument("--depth", type=int, default=20, help="6n+2 (CIFAR family)")
    parser.add_argument("--iters", type=int, default=1000, help="iterations of each run")
    parser.add_argument("--evals", type=int, default=20, help="test evaluations per run (twice as many windows)")
    parser.add_argument("--results", default="results/precision_check", help="folder for the three runs and output")
    parser.add_argument("--data", default="synthetic", choices=("synthetic", "cifar10", "cifar100"))
    parser.add_argument("--schedule", default="demo", help="schedule preset cut to --iters (conf/schedule)")
    parser.add_argument("--batch-size", type=int, default=None, help="schedule.batch_size (default: the preset's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of A and B; C uses --other-seed")
    parser.add_argument("--other-seed", type=int, default=None, help="seed of C (default: --seed + 1)")
    parser.add_argument("--floor", type=float, default=100 * FLOOR, help="smallest limit, percentage points")
    parser.add_argument("--slack", type=float, default=SLACK, help="the limit in seed gaps (>= 1)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run, after --")
    args = parser.parse_args(argv)
    if args.other_seed is None:
        args.other_seed = args.seed + 1
    _check(args)
    return args


def _check(args: argparse.Namespace) -> None:
    if args.iters < 10:
        raise BadArguments(f"--iters={args.iters} must be >= 10 (two lr drops and a second half to average over)")
    if args.evals < 2:
        raise BadArguments(f"--evals={args.evals} must be >= 2")
    if args.seed < 0 or args.other_seed < 0 or args.seed == args.other_seed:
        raise BadArguments(f"--seed={args.seed} and --other-seed={args.other_seed} must be different and >= 0")
    if not 1 <= args.slack <= 10:
        raise BadArguments(f"--slack={args.slack} must be in [1, 10] seed gaps")
    if not 0 <= args.floor <= 100:
        raise BadArguments(f"--floor={args.floor} must be in [0, 100] percentage points")
    if args.batch_size is not None and args.batch_size < 1:
        raise BadArguments(f"--batch-size={args.batch_size} must be >= 1")
    for override in args.overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if "=" not in override:
            raise BadArguments(f"override {override!r} is not key=value")
        if key in RESERVED:
            raise BadArguments(f"override {override!r}: {key} is set by this script (see --help)")


def make_results(results: Path) -> None:
    """The results folder, made up front so that a bad --results fails before any training."""
    from degradation.errors import UsageError

    try:
        results.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--results {results} cannot be made: {exc.strerror or exc}") from None


def run_check(args: argparse.Namespace) -> int:
    """Train the three runs, compare, print, write the per-point file; the exit code (0 PASS, 1 FAIL)."""
    from degradation.errors import RunFailed

    start = time.perf_counter()
    curves, infos = [], []
    for arm in arms(args.seed, args.other_seed):
        print(f"{arm.letter}: training {arm.name} ({arm.precision}, seed {arm.seed}, {args.iters} iterations)",
              flush=True)
        try:
            info, frame = train_arm(args, arm)
        except RunFailed as exc:
            print(f"verdict: FAIL (run {arm.letter} {arm.name} crashed: {exc})")
            return 1
        print(run_line(arm, info), flush=True)
        if info.get("status") != "done":
            print(f"verdict: FAIL (run {arm.letter} {arm.name} ended {info.get('status')}: {info.get('reason')})")
            return 1
        curves.append(frame)
        infos.append(info)
    try:
        comparison = compare(*curves, floor=args.floor / 100, slack=args.slack)
    except ValueError as exc:
        print(f"verdict: FAIL ({exc})")
        return 1
    out = Path(args.results) / OUTPUT
    comparison.points.to_parquet(out, index=False)
    speed_a, speed_b = infos[0].get("images_per_s"), infos[1].get("images_per_s")
    if speed_a and speed_b:
        print(f"bf16 speed: {speed_b / speed_a:.2f}x fp32 ({speed_b:,.0f} vs {speed_a:,.0f} img/s; rough: short runs, "
              f"A pays the warm-up; benchmarks of speed belong to `degradation bench`)")
    print(format_table(comparison.summary))
    print(f"per-point differences: {out}; {time.perf_counter() - start:.0f} s in all")
    print(verdict_line(comparison))
    return 0 if comparison.passed else 1


def main(argv: list[str] | None = None) -> int:
    from degradation.errors import UsageError, out_of_memory

    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        make_results(Path(args.results))
        return run_check(args)
    except (BadArguments, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as exc:
        message = out_of_memory(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
