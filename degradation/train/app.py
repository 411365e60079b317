"""The shell around train(cfg) shared by `degradation train` and `python -m degradation.train`.

Exit codes: 0 done, 1 the run failed (NaN loss, crash; the reason is in run.json), 2 bad input (one line,
nothing written), 130 interrupted (status partial; the same command resumes).
"""

from __future__ import annotations

import sys

from degradation.errors import RunFailed, UsageError, one_line, out_of_memory
from degradation.store.schema import RunStatus
from degradation.train import argv

USAGE = """usage: python -m degradation.train [--cfg [job|all]] [--info] [hydra overrides ...]

Trains one network; the same command again resumes it (or says it is done).
  --cfg    print the composed config and stop (also -c job, --cfg job)
  --info   the config groups and their options
A grid (-m / --multirun, model.depth=20,56) is a sweep: the error names the `degradation sweep` command.
Runs go to <results_dir>/runs/<run id>: set results_dir=..., not hydra.run.dir.
examples:
  python -m degradation.train model=plain model.depth=56 data=synthetic schedule=demo
  python -m degradation.train model.depth=110 schedule=paper seed=1
"""


def _error(message: str) -> None:
    print(f"error: {one_line(message)}", file=sys.stderr)


def _defaults(cfg) -> dict[str, str]:
    """The default config's values of the sweep's flags (for the sweep command a grid is answered with)."""
    return {"--archs": str(cfg.model.arch), "--depths": str(cfg.model.depth), "--seeds": str(cfg.seed),
            "--data": str(cfg.data.name), "--preset": str(cfg.schedule.name)}


def run_from_args(args: list[str]) -> int:
    """Parse `--cfg` and overrides, compose, validate, train; return the exit code."""
    try:
        parsed = argv.parse(list(args))
        if parsed.action == "help":
            print(USAGE, end="")
            return 0
        overrides = parsed.overrides
        # deferred: `--help` and a bad override answer before torch and Hydra load
        from degradation.conf import CONF_DIR, compose, validate

        if parsed.grid:
            raise argv.grid_error(overrides, _defaults(compose([])))
        if parsed.action == "info":
            print(argv.info_text(CONF_DIR))
            return 0
        cfg = compose(overrides)
        if parsed.action == "cfg":
            # deferred: omegaconf is loaded by compose already; only --cfg needs to_yaml
            from omegaconf import OmegaConf

            if parsed.note:
                print(parsed.note, file=sys.stderr)
            print(OmegaConf.to_yaml(cfg), end="")
            return 0
        validate(cfg)
        # deferred: `--help` and a bad override answer before torch and Hydra load
        from degradation.train.run import train

        info = train(cfg)
    except UsageError as exc:
        _error(str(exc))
        return exc.exit_code
    except RunFailed as exc:
        _error(f"run failed: {exc}")
        return 1
    except KeyboardInterrupt as exc:
        _error(str(exc) or "interrupted")
        return 130
    except (MemoryError, RuntimeError) as exc:  # building a model or data set too big for this machine
        message = out_of_memory(exc)
        if message is None:
            raise
        _error(message)
        return 2
    status = info.get("status")
    if status == RunStatus.FAILED:
        _error(f"run failed: {info.get('reason')} (see {info.get('log_path')})")
        return 1
    if status == RunStatus.PARTIAL:
        _error(str(info.get("reason")))
        return 130
    return 0
