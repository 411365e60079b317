"""The arguments of `degradation train` / `python -m degradation.train`, and the Hydra habits people bring.

A run is composed with Hydra's compose API, not launched by Hydra's app runner, so the runner's flags mean
something else here or nothing. Each gets what makes sense, or one line that says what to type instead:

    --cfg, --cfg job, -c job   print the composed config and stop (the job config is the whole config here)
    --cfg all                  the same, with a note that there is no hydra section
    --cfg hydra                refused: there is no hydra config; --cfg job prints the run's
    --info                     the config folder, its groups and their options, the defaults
    --hydra-help               one line: what this command takes instead
    --resolve                  accepted: configs are always resolved
    -m / --multirun, a=1,2     refused with the equivalent `degradation sweep` command (a grid is a sweep)
"""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from degradation.errors import UsageError

CFG_FLAGS = ("--cfg", "-c")
CFG_CHOICES = ("job", "hydra", "all")
OPTIONS = ("--cfg", "-c", "--config-dir", "-cd", "--info", "--hydra-help", "--resolve", "-m", "--multirun", "-h",
           "--help")

# A config key (or group) that is a sweep axis, and the `degradation sweep` flag that sets it.
SWEEP_FLAGS = {
    "model": "--archs",
    "model.arch": "--archs",
    "model.depth": "--depths",
    "model.family": "--family",
    "model.shortcut": "--shortcut",
    "seed": "--seeds",
    "data": "--data",
    "schedule": "--preset",
    "launcher": "--launcher",
    "results_dir": "--results",
}
_CHOICE = re.compile(r"^choice\((.*)\)$")
_RANGE = re.compile(r"^range\((\d+)\s*,\s*(\d+)\)$")


@dataclass
class TrainArgs:
    """What was asked: train (the default), print the config, or show the config groups."""

    action: str = "train"  # train | cfg | info | help
    overrides: list[str] = field(default_factory=list)
    note: str | None = None  # one line for stderr (e.g. `--cfg all` has no hydra section)
    grid: bool = False  # -m / --multirun or an axis with several values: answered with a sweep command


def parse(args: list[str]) -> TrainArgs:
    """Sort the command line into an action and overrides; a Hydra habit that cannot work here is one
    UsageError that names what to type instead."""
    out = TrainArgs()
    multirun = False
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        flag, _, attached = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if flag in CFG_FLAGS:
            choice = attached or (args[i] if i < len(args) and args[i] in CFG_CHOICES else "")
            i += 1 if (choice and not attached) else 0
            _cfg(out, choice)
        elif flag in ("--config-dir", "-cd"):
            folder = attached or (args[i] if i < len(args) else "")
            i += 0 if attached else 1
            from degradation.conf import add_config_dir  # deferred: --help answers before omegaconf loads

            add_config_dir(folder or "")
        elif arg in ("-m", "--multirun"):
            multirun = True
        elif arg in ("-h", "--help"):
            out.action = "help"
        elif flag == "--info":
            out.action = "info"
        elif arg == "--hydra-help":
            raise UsageError("--hydra-help: no Hydra app runner here; `degradation train` takes key=value overrides, "
                             "--cfg [job|all] and --info; see `degradation train --help`")
        elif arg == "--resolve":
            continue  # configs are always resolved
        elif arg.startswith("-"):
            close = difflib.get_close_matches(flag, OPTIONS, n=2, cutoff=0.6)
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            raise UsageError(f"unknown option {arg}; {hint}`degradation train` takes key=value overrides, "
                             f"--cfg [job|all], --info and -h")
        else:
            out.overrides.append(arg)
    out.grid = multirun or any(_is_grid(o) for o in out.overrides)
    return out


def _cfg(out: TrainArgs, choice: str) -> None:
    if choice == "hydra":
        raise UsageError("--cfg hydra: runs are composed without Hydra's app runner, so there is no hydra config; "
                         "`--cfg job` prints the run's config")
    if choice and choice not in CFG_CHOICES:
        raise UsageError(f"--cfg {choice}: choose job or all (or plain --cfg)")
    out.action = "cfg"
    if choice == "all":
        out.note = "note: --cfg all prints the job config only (no hydra section: Hydra's app runner is not used)"


def _key_value(override: str) -> tuple[str, str]:
    key, _, value = override.partition("=")
    return key.lstrip("+~"), value


def _is_grid(override: str) -> bool:
    """A sweep axis given several values (Hydra's multirun syntax: 20,56 or choice(...) or range(...))."""
    key, value = _key_value(override)
    if not value or value[0] in "[{'\"":
        return False
    return "," in value or bool(_CHOICE.match(value) or _RANGE.match(value))


def _values(value: str) -> str:
    """Hydra's sweep values as a sweep flag's comma list."""
    if match := _CHOICE.match(value):
        value = match.group(1)
    if match := _RANGE.match(value):
        value = ",".join(str(v) for v in range(int(match.group(1)), int(match.group(2))))
    return ",".join(v.strip() for v in value.split(","))


def grid_error(overrides: list[str], defaults: dict[str, str]) -> UsageError:
    return UsageError(f"`degradation train` runs one network; a grid is a sweep: "
                      f"{sweep_command(overrides, defaults)}")


def sweep_command(overrides: list[str], defaults: dict[str, str]) -> str:
    """The `degradation sweep` command that trains the grid these overrides describe.

    Flags the user did not give are filled with train's defaults (`defaults`: sweep flag -> the composed
    default config's value), since a sweep's own defaults differ (plain and resnet at five depths)."""
    flags: dict[str, str] = {}
    rest: list[str] = []
    gridded_other: list[str] = []
    for override in overrides:
        key, value = _key_value(override)
        flag = SWEEP_FLAGS.get(key)
        if flag is None:
            if _is_grid(override):
                values = _values(value).split(",")
                gridded_other.append(f"{key} ({', '.join(values)})")
                override = f"{override.partition('=')[0]}={values[0]}"
            rest.append(override)
            continue
        flags[flag] = _values(value)
    for flag in ("--archs", "--depths", "--seeds", "--data", "--preset"):
        flags.setdefault(flag, defaults[flag])
    order = ["--archs", "--depths", "--shortcut", "--seeds", "--data", "--preset", "--launcher", "--results"]
    words = ["degradation", "sweep"] + [w for f in order if f in flags for w in (f, flags[f])]
    if rest:
        words += ["--", *rest]
    text = " ".join(shlex.quote(w) for w in words)
    if gridded_other:
        text += (f"  (a sweep varies archs, depths, shortcuts and seeds; run one sweep per value of "
                 f"{', '.join(gridded_other)})")
    return text


def config_defaults(conf_dir: Path) -> dict[str, str]:
    """The group -> option defaults of conf/config.yaml (its `defaults:` list)."""
    out = {}
    tree: Any = OmegaConf.load(conf_dir / "config.yaml")
    for item in tree.get("defaults", []):
        if isinstance(item, DictConfig):
            out.update({str(k): str(v) for k, v in item.items()})
    return out


def info_text(conf_dir: Path) -> str:
    """--info: where the configs are, each group's options and which one is the default."""
    defaults = config_defaults(conf_dir)
    lines = [f"config folder: {conf_dir}", "config groups (pick one with group=name; * = default):"]
    for group in sorted(p for p in conf_dir.iterdir() if p.is_dir()):
        names = sorted(p.stem for p in group.glob("*.yaml"))
        marked = [f"{n}*" if defaults.get(group.name) == n else n for n in names]
        lines.append(f"  {group.name}: {', '.join(marked)}")
    lines.append("print the composed config: --cfg; change a value: key=value; add a key: +key=value")
    return "\n".join(lines)
