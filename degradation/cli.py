"""The `degradation` command: parse, call one function, print. Heavy imports happen inside commands."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path
from typing import Annotated

import typer
from typer.exceptions import Abort, TyperException

from degradation.errors import UsageError, one_line, out_of_memory

# deferred imports: each command imports what it needs inside its function, so `--help` stays instant
from degradation.text import checked_list, int_list, split_list

# deferred imports: each command imports what it needs inside its function, so `--help` stays instant

app = typer.Typer(
    help=(
        "Plain vs residual networks at many depths: the CIFAR-10 degradation study of He et al. (2015).\n\n"
        "\b\nExamples:\n"
        "  degradation sweep --data synthetic --preset demo --depths 20,56   # offline, minutes on a CPU\n"
        "  degradation sweep --depths 20,56,110                               # the paper's recipe\n"
        "  degradation plot                                                   # figures 1, 6, 7 and Table 6\n"
        "  degradation models --depths 20,32,44,56,110,1202                   # parameter counts\n"
        "  degradation sweep --config-dir mine --archs plain,resnet,mynet     # your network: mine/model/mynet.yaml"
        "\n\n--config-dir DIR (any command, or $DEGRADATION_CONFIG_DIR): your own config YAMLs, e.g. a network."
    ),
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion: bash, zsh, fish (and PowerShell)
    context_settings={"help_option_names": ["-h", "--help"]},  # -h everywhere, as on `train`
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

def _version(value: bool) -> None:
    if not value:
        return
    from degradation import __version__
    from degradation.compute.revision import git_revision

    revision = git_revision() or "unknown (not a git checkout)"
    typer.echo(f"degradation {__version__} (git {revision}, {Path(__file__).resolve().parent.parent})")
    raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Version and git revision; stop.")
    ] = False,
) -> None:
    pass


MAX_BENCH_ITERS = 100_000  # a typo's worth of zeros would time forever; a few hundred give a steady figure


def _folder(text: str | Path) -> Path:
    """--results / --out: an empty value would silently mean the current folder."""
    if not str(text).strip():
        raise typer.BadParameter("is empty; give a folder, e.g. --results results")
    return Path(text)


ResultsOpt = Annotated[
    Path, typer.Option("--results", parser=_folder, help="Results folder (run folders, parquet, figures).")
]
EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}


@app.command()
def models(
    depths: Annotated[
        str | None,
        typer.Option(help="Comma list of depths (6n+2, or 18/34/50/101/152 with --family imagenet), or all "
                     "(default: cifar 20,32,44,56,110,1202; imagenet 18,34)."),
    ] = None,
    archs: Annotated[str, typer.Option(help="Comma list: plain, resnet, preact, or a network of your own "
                                            "(--config-dir).")] = "plain,resnet",
    shortcut: Annotated[
        str | None, typer.Option(help="Shortcut option for residual nets: A, B or C (default: A; B for ImageNet 50+).")
    ] = None,
    family: Annotated[str, typer.Option(help="cifar (6n+2) or imagenet (Table 1).")] = "cifar",
    num_classes: Annotated[
        int | None, typer.Option(help="Classes of the final layer (default: 10 for cifar, 1000 for imagenet).")
    ] = None,
) -> None:
    """Count parameters and multiply-adds of the networks.

    \b
    Examples:
      degradation models --depths 20,32,44,56,110,1202
      degradation models --family imagenet                # 18 and 34; --depths all: the five of Table 1
      degradation models --family imagenet --depths 18,34,50 --shortcut B
    """
    from degradation.conf import check_choice, plugin_configs
    from degradation.models.depth import check_family, check_shortcut
    from degradation.models.table import ALL_DEPTHS, DEFAULT_DEPTHS, models_table, print_models_table

    family = check_family(family)
    chosen = (list(DEFAULT_DEPTHS[family]) if depths is None else list(ALL_DEPTHS[family])
              if depths.strip().lower() == "all" else int_list(depths, "--depths", minimum=-(10**9)))
    arch_list = checked_list(archs, "--archs", lambda a: check_choice("model", a, "--archs"))
    frame = models_table(
        depths=chosen,
        archs=arch_list,
        shortcut=None if shortcut is None else check_shortcut(shortcut),
        family=family,
        num_classes=num_classes,
        configs=plugin_configs(arch_list),
    )
    print_models_table(frame)


@app.command(context_settings=EXTRA)
def train(ctx: typer.Context) -> None:
    """Train one network; arguments are Hydra overrides (same as `python -m degradation.train`).

    \b
    Examples:
      degradation train model=plain model.depth=56 data=synthetic schedule=demo
      degradation train model.depth=110 schedule=paper seed=1
      degradation train --cfg model=plain        # print the composed config and stop (also -c job)
      degradation train --info                   # config groups and their options
    Running the same command again resumes the run from its last checkpoint. A grid (-m, model.depth=20,56)
    is a sweep: the error names the `degradation sweep` command. The run folder is results_dir=..., not
    hydra.run.dir.
    """
    from degradation.train.app import run_from_args

    raise typer.Exit(run_from_args(list(ctx.args)))


@app.command(context_settings=EXTRA)
def sweep(
    ctx: typer.Context,
    depths: Annotated[
        list[str], typer.Option(help="Depths, comma list or repeated (default cifar 20,32,44,56,110; imagenet 18,34).")
    ] = [],
    archs: Annotated[
        list[str], typer.Option(help="plain, resnet, preact (comma list or repeated).")
    ] = ["plain,resnet"],
    seeds: Annotated[list[str], typer.Option(help="Seeds, comma list or repeated: 0,1,2.")] = ["0"],
    shortcut: Annotated[list[str], typer.Option(help="Shortcut options for residual nets: A, B, C.")] = ["A"],
    data: Annotated[
        str, typer.Option(help="cifar10, cifar100, synthetic, imagenet, imagefolder (default: cifar10 / imagenet).")
    ] = "",
    preset: Annotated[
        str, typer.Option(help="Schedule: paper, quick, demo, cpu, smoke; imagenet, imagenet_quick, imagenet_smoke.")
    ] = "",
    family: Annotated[str, typer.Option(help="cifar (6n+2 depths) or imagenet (18/34/50/101/152, Table 1).")] = "cifar",
    jobs: Annotated[
        int | None, typer.Option(help="Runs at once (default: one per core; CUDA: GPUs x runs per GPU).")
    ] = None,
    launcher: Annotated[str, typer.Option(help="local or slurm.")] = "local",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and stop.")] = False,
    wide: Annotated[bool, typer.Option("--wide", help="Full run ids in the tables (else a short id).")] = False,
    results: ResultsOpt = Path("results"),
) -> None:
    """Plan, run (skipping done runs, resuming partial ones) and collect a grid of runs.

    \b
    Examples:
      degradation sweep --depths 20,56,110
      degradation sweep --data synthetic --preset demo --depths 20,56 --jobs 2
      degradation sweep --archs resnet --depths 110 --seeds 0,1,2,3,4 --dry-run
      degradation sweep --launcher slurm --depths 20,56 -- launcher.partition=gpu
      degradation sweep --family imagenet --depths 18,34 --archs plain,resnet --data imagenet
      degradation sweep --family imagenet --data imagefolder --preset imagenet_quick -- data.root=~/imagenette
    Extra Hydra overrides go after `--`.
    """
    overrides = _overrides(ctx)  # a mistyped option is answered before the sweep modules (torch) load
    from degradation.sweep.api import SweepRequest, run_sweep

    request = SweepRequest.from_cli(
        depths=depths,
        archs=archs,
        seeds=seeds,
        shortcuts=shortcut,
        data=data,
        preset=preset,
        jobs=jobs,
        launcher=launcher,
        dry_run=dry_run,
        results_dir=results,
        overrides=overrides,
        family=family,
        wide=wide,
    )
    raise typer.Exit(run_sweep(request))


@app.command("prepare-imagenet")
def prepare_imagenet(
    archives: Annotated[
        Path, typer.Option(help="Folder with ILSVRC2012_img_train.tar, ILSVRC2012_img_val.tar, *_devkit_t12.tar.gz")
    ],
    out: Annotated[Path, typer.Option(help="Where train/<wnid>/ and val/<wnid>/ go (data.root of data=imagenet).")],
) -> None:
    """Build ILSVRC-2012's train/ and val/ folders from the three official archives (MD5s checked; resumable).

    \b
    Examples:
      degradation prepare-imagenet --archives ~/Downloads --out data/imagenet
      degradation sweep --family imagenet --depths 18,34 -- data.root=data/imagenet
    Needs scipy for the devkit (pip install scipy). A rerun skips finished steps.
    """
    from degradation.data.prepare import prepare_imagenet as prepare

    prepare(archives, out, log=typer.echo)


data_app = typer.Typer(
    help="Download, verify and extract a data set once (e.g. on a cluster's login node), or check it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(data_app, name="data")
DataName = Annotated[str, typer.Argument(help="cifar10 or cifar100.")]
RootOpt = Annotated[
    Path | None,
    typer.Option("--root", parser=_folder, help="Data folder (default: $DEGRADATION_DATA, else data)."),
]


def _data_root(root: Path | None) -> Path:
    """The folder runs read (conf/data/*.yaml: data.root = ${oc.env:DEGRADATION_DATA,data})."""
    import os

    return root if root is not None else Path(os.environ.get("DEGRADATION_DATA") or "data")


@data_app.command("fetch")
def data_fetch(name: DataName, root: RootOpt = None) -> None:
    """Download (if needed), verify against the published md5 and extract; safe to run twice at once.

    \b
    Examples:
      degradation data fetch cifar10
      degradation data fetch cifar100 --root /shared/datasets
    """
    from degradation.data.fetch import check, prepare

    prepare(name, _data_root(root), say=lambda line: typer.echo(line, err=True))
    folder = check(name, _data_root(root))
    typer.echo(f"{name} ready in {folder.absolute()} (every file matches its published md5)")


@data_app.command("check")
def data_check(name: DataName, root: RootOpt = None) -> None:
    """Check that the extracted data set is complete and matches its published md5; downloads nothing.

    \b
    Examples:
      degradation data check cifar10
      degradation data check cifar10 --root /shared/datasets
    """
    root = _data_root(root)
    if not root.expanduser().is_dir():  # answered before the data modules (torch) load
        raise UsageError(f"data folder {root}/ does not exist; run `degradation data fetch {name} --root {root}` "
                         f"to download and extract it there")
    from degradation.data.fetch import check

    folder = check(name, root)
    typer.echo(f"{name} ready in {folder.absolute()} (every file matches its published md5)")


@app.command()
def collect(results: ResultsOpt = Path("results")) -> None:
    """Merge every run folder into results/curves.parquet and results/runs.parquet.

    \b
    Examples:
      degradation collect
      degradation collect --results results/demo
    """
    from degradation.store.results import collect as collect_results

    curves, runs = collect_results(results)
    typer.echo(f"wrote {curves} and {runs}")


@app.command()
def status(
    results: ResultsOpt = Path("results"),
    wide: Annotated[bool, typer.Option("--wide", help="Full run ids (else arch, depth, ... and a short id).")] = False,
) -> None:
    """Print the runs table: arch, depth, shortcut, seed, a short id, status, iteration, errors, throughput.

    \b
    Examples:
      degradation status
      degradation status --results results/demo --wide
    """
    from degradation.store.resultsdir import existing_results_dir

    existing_results_dir(results)  # a mistyped folder is answered before pandas loads
    from degradation.sweep.report import print_status

    print_status(results, wide=wide)


@app.command()
def responses(results: ResultsOpt = Path("results")) -> None:
    """Figure 7's data: std of every 3x3 layer's response, from each finished run's final checkpoint.

    \b
    Examples:
      degradation responses
      degradation responses --results results/demo
    """
    from degradation.analysis.responses import compute_responses

    path = compute_responses(results)
    typer.echo(f"wrote {path}")


@app.command()
def lesion(
    results: ResultsOpt = Path("results"),
    draws: Annotated[int, typer.Option(help="Random draws for each k.")] = 5,
    max_k: Annotated[
        int | None, typer.Option(help="Largest k of random lesions (default n, the blocks per stage; 0: none).")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    recompute: Annotated[bool, typer.Option(help="Measure runs already in lesion.parquet again.")] = False,
    images: Annotated[
        int | None, typer.Option(help="Only the first N test images (coarser, cheaper; default: the whole set).")
    ] = None,
) -> None:
    """Lesion study: test error with blocks removed, from each finished run's final checkpoint.

    Each block removed on its own (residual: branch dropped, shortcut kept; plain: identity where the shapes
    allow), then k random blocks (k = 1..max-k, seeded draws). One line per error; writes lesion.parquet;
    a rerun skips runs already measured.

    \b
    Examples:
      degradation lesion
      degradation lesion --results results/demo --draws 1 --max-k 2 --images 250
      degradation lesion --recompute --device cuda
    """
    from degradation.analysis.lesion import compute_lesions

    path = compute_lesions(results, device=device, draws=draws, max_k=max_k, recompute=recompute, images=images)
    typer.echo(f"wrote {path}")


@app.command()
def plot(
    results: ResultsOpt = Path("results"),
    out: Annotated[
        Path | None, typer.Option(parser=_folder, help="Figure folder (default: <results>/figures).")
    ] = None,
) -> None:
    """Render the figures, tables and summary from the collected results, by network family on any data.

    CIFAR-family nets: Figures 1, 6, 7, depth, gradient flow, lesion and Table 6; ImageNet-family nets: Figure 4
    and Tables 2-3.

    \b
    Examples:
      degradation plot
      degradation plot --results results/demo --out /tmp/figs
    """
    from degradation.figures import render_all

    for path in render_all(results, out):
        typer.echo(f"wrote {path}")


@app.command()
def report(
    results: ResultsOpt = Path("results"),
    out: Annotated[Path | None, typer.Option(parser=_folder, help="The page (default: <results>/report.html).")] = None,
) -> None:
    """One self-contained HTML page of the study (figures drawn first, as `degradation plot` draws them).

    Verdict and its gap plot first; Figures 1/4/6/7, depth curves, gradient flow, lesion; Tables 6, 2, 3; the
    runs (failed and unfinished ones named); loss and lr; update/weight ratios; bench; provenance. Every image is
    inline: the page opens offline and can be sent by e-mail.

    \b
    Examples:
      degradation report
      degradation report --results results/demo --out /tmp/study.html
    """
    from degradation.report.page import write_report

    written = write_report(results, out)
    for path in written[:-1]:
        typer.echo(f"wrote {path}")
    typer.echo(f"report: {written[-1].absolute()}")


@app.command()
def tensorboard(
    results: ResultsOpt = Path("results"),
    out: Annotated[Path | None, typer.Option(parser=_folder, help="Folder (default: <results>/tb).")] = None,
) -> None:
    """Write the collected curves and layer statistics as TensorBoard event files, one run per run id, its config
    as hparams (needs `pip install tensorboard`).

    \b
    Examples:
      degradation tensorboard && tensorboard --logdir results/tb
      degradation tensorboard --results results/demo
    """
    from degradation.report.tbexport import export_tensorboard

    folders = export_tensorboard(results, out)
    root = Path(out) if out is not None else Path(results) / "tb"
    typer.echo(f"wrote {len(folders)} runs to {root}; browse them with: tensorboard --logdir {root}")


@app.command(context_settings=EXTRA)
def bench(
    ctx: typer.Context,
    depths: Annotated[str, typer.Option(help="Comma list of depths.")] = "20,56,110",
    archs: Annotated[str, typer.Option(help="plain, resnet, preact.")] = "resnet",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    iters: Annotated[int | None, typer.Option(help="Timed iterations per network (default 10; --share: a cap).")] = (
        None
    ),
    seconds: Annotated[
        float | None, typer.Option(help="--share: each run's timed window in seconds (default 5).")
    ] = None,
    rounds: Annotated[int, typer.Option(help="Alternating timed rounds per path; each keeps its fastest.")] = 3,
    share: Annotated[
        str | None,
        typer.Option(help="Instead: runs sharing one device at once, e.g. 1,2,4; writes bench_share.parquet."),
    ] = None,
    data: Annotated[
        str | None, typer.Option(help="Instead: imagenet or imagefolder: the image loader's images/s vs torchvision's.")
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(help="Comma list of 32-true (fp32), bf16-mixed, tf32 (default: 32-true,bf16-mixed on a CPU, "
                          "32-true elsewhere)."),
    ] = None,
    results: ResultsOpt = Path("results"),
) -> None:
    """Time the tool's training step against a bare PyTorch loop; prints a table, writes bench.parquet.

    \b
    Examples:
      degradation bench --depths 20,56
      degradation bench --device cpu --depths 20 --precision 32-true,bf16-mixed   # fp32 and bf16 rows
      degradation bench --device cuda --depths 20,56,110,1202 --iters 50
      degradation bench --share 1,2,4 --depths 20 --seconds 5   # runs per GPU for launcher.runs_per_gpu=auto
      degradation bench --device cuda --depths 110 -- trainer.precision=bf16-mixed trainer.cuda_graphs=false
      degradation bench --data imagenet --iters 20 -- data.root=data/imagenet data.workers=8
    Hydra overrides of the benched runs go after `--`.
    """
    overrides = _overrides(ctx)  # a mistyped option is answered before the bench modules (torch) load
    from degradation.bench.step import run_bench
    from degradation.models.registry import check_arch

    if share is not None and iters is None and seconds is None:
        seconds = 5.0  # runs timed for the same wall time overlap whatever their speed
    iters = (MAX_BENCH_ITERS if share is not None and seconds is not None else 10) if iters is None else iters
    if not 1 <= iters <= MAX_BENCH_ITERS:
        raise UsageError(f"--iters {iters} must be between 1 and {MAX_BENCH_ITERS:,} (a few hundred time steadily)")
    if not 1 <= rounds <= 20:
        raise UsageError(f"--rounds {rounds} must be between 1 and 20")
    if precision is not None and (data is not None or share is not None):
        raise UsageError(f"--precision times the training step; with {'--data' if data is not None else '--share'} "
                         "pass it as -- trainer.precision=NAME")
    if data is not None:
        from degradation.bench.loader import run_loader_bench

        run_loader_bench(data, iters, rounds, overrides)
        return
    if share is not None:
        from degradation.bench.share import parse_share, run_share

        shares = parse_share(share)
        run_share(int_list(depths, "--depths", minimum=-(10**9)), checked_list(archs, "--archs", check_arch),
                  device, iters, results, shares, overrides=overrides, seconds=seconds)
        return
    run_bench(
        depths=int_list(depths, "--depths", minimum=-(10**9)),
        archs=checked_list(archs, "--archs", check_arch),
        device=device,
        iters=iters,
        results_dir=results,
        overrides=overrides,
        rounds=rounds,
        precisions=split_list(precision, "--precision") if precision is not None else None,
    )


def close_options(name: str, command) -> list[str]:
    """The command's options that look like a mistyped one (--depth -> --depths)."""
    names = [opt for param in command.params for opt in getattr(param, "opts", []) if opt.startswith("-")]
    return difflib.get_close_matches(name.partition("=")[0], names, n=2, cutoff=0.7)


def _unknown_option(name: str, command, path: str, extra: str = "") -> str:
    close = close_options(name, command)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return f"unknown option {name}{hint} ({extra}see `{path} --help`)"


def _overrides(ctx: typer.Context) -> list[str]:
    """The Hydra overrides after `--`; an unknown option before it is a typo, answered with close matches."""
    for arg in ctx.args:
        if arg.startswith("-"):
            raise UsageError(_unknown_option(arg, ctx.command, ctx.command_path,
                                             "Hydra overrides go after `--` as key=value; "))
    return list(ctx.args)


def _options_after_dashes(args: list[str]) -> None:
    """`sweep ... -- schedule.lr=0.05 --dry-run`: everything after `--` is a Hydra override, so say so."""
    if "--" not in args:
        return
    after = args[args.index("--") + 1:]
    options = [a for a in after if a.startswith("-") and not a.startswith("--=")]
    if options:
        raise UsageError(f"{' '.join(options)} comes after `--`, where only Hydra overrides (key=value) go; "
                         f"put options before `--`")


def _no_such_command(message: str) -> str:
    """"No such command 'plt'." -> the close command names too."""
    name = message.split("'")[1] if "'" in message else ""
    names = [c.name or c.callback.__name__ for c in app.registered_commands if c.callback]
    close = difflib.get_close_matches(name, names, n=2, cutoff=0.5)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return f"unknown command {name!r}{hint} (see `degradation --help`)"


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors become one line on stderr and exit code 2, never a traceback."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        if any(a == "--config-dir" or a.startswith("--config-dir=") for a in args):
            from degradation.conf import take_config_dir  # deferred: only a command with a config folder needs it

            args = take_config_dir(args)
        _options_after_dashes(args)
        # not standalone: Typer's own usage errors (unknown option, not a number) come here to be one line too
        result = app(args=args, prog_name="degradation", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Abort:
        typer.echo("aborted", err=True)
        code = 1
    except TyperException as exc:
        code = exc.exit_code
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()  # type: ignore[attr-defined]  # bare `degradation`: the help, as before
        elif getattr(exc, "option_name", None) and ctx is not None:  # typer's vendored click NoSuchOption
            name = str(getattr(exc, "option_name"))  # noqa: B009  # TyperException declares no such attribute
            typer.echo(f"error: {one_line(_unknown_option(name, ctx.command, ctx.command_path))}",
                       err=True)
        elif exc.format_message().startswith("No such command"):
            typer.echo(f"error: {one_line(_no_such_command(exc.format_message()))}", err=True)
        else:
            ctx = getattr(exc, "ctx", None)
            hint = f"; see `{ctx.command_path} --help`" if ctx is not None else ""
            typer.echo(f"error: {one_line(exc.format_message().strip().splitlines()[-1])}{hint}", err=True)
    except UsageError as exc:
        typer.echo(f"error: {one_line(str(exc))}", err=True)
        code = exc.exit_code
    except (MemoryError, RuntimeError) as exc:
        message = out_of_memory(exc)
        if message is None:
            raise
        typer.echo(f"error: {message}", err=True)
        code = 2
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        code = 130
    if argv is None:
        sys.exit(code)
    return code
