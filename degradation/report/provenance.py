"""Where a study's numbers come from: the tool that made the page, the code and libraries each run trained
with, on which device, and a command line that trains each run again.

A run's command is rebuilt from its recorded result-changing settings (runs.parquet's `settings`, conf.py's
variant_settings): the config groups of its arch, data set and preset, plus every setting whose value is not
the group's default. Composed again, it gives the run's own run id, which tests/test_report.py checks; so
the command is the one that reproduces the folder, whatever command line was typed at the time.
"""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path

import pandas as pd

from degradation.conf import compose, resolved_dict, variant_settings
from degradation.errors import UsageError
from degradation.store.runs import RUN_FILE

GROUPS = ("model.arch", "data.name", "schedule.name")  # chosen by a config group, not overridden as values


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def tool() -> dict[str, str]:
    """The tool making the page: its version and git revision, Python and torch versions."""
    from degradation.compute.revision import git_revision  # deferred: only the page needs it

    return {"degradation": _version("degradation"), "git revision": git_revision() or "unknown (not a git checkout)",
            "python": platform.python_version(), "torch": _version("torch")}


def _run_json(run_dir: object) -> dict:
    try:
        return json.loads((Path(str(run_dir)) / RUN_FILE).read_text())
    except (OSError, ValueError, TypeError):
        return {}


def environments(runs: pd.DataFrame) -> pd.DataFrame:
    """The distinct (git revision, torch, CUDA, device) the runs trained with, and how many runs each."""
    rows = []
    for _, r in runs.iterrows():
        versions = _run_json(r.get("run_dir")).get("versions") or {}
        rows.append({"git revision": r.get("git_revision") or "unknown", "torch": versions.get("torch") or "unknown",
                     "CUDA": versions.get("cuda") or "none", "device": r.get("device") or "unknown"})
    if not rows:
        return pd.DataFrame(columns=["git revision", "torch", "CUDA", "device", "runs"])
    frame = pd.DataFrame(rows)
    return frame.groupby(list(frame.columns), dropna=False).size().reset_index(name="runs")


def _value(value: object) -> str:
    """A setting as Hydra override syntax: lists in brackets, None as null, booleans lower case."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ",".join(_value(v) for v in value) + "]"
    return str(value)


def overrides(settings: dict, defaults: dict, seed: int) -> list[str]:
    """The train overrides that give these settings, from the defaults of the same config groups."""
    out = [f"model={settings['model.arch']}", f"data={settings['data.name']}", f"schedule={settings['schedule.name']}"]
    for key in sorted(set(settings) | set(defaults)):
        if key in GROUPS:
            continue
        if key not in defaults:
            out.append(f"+{key}={_value(settings[key])}")
        elif key not in settings:
            out.append(f"~{key}")
        elif _value(settings[key]) != _value(defaults[key]):
            out.append(f"{key}={_value(settings[key])}")
    return out + [f"seed={int(seed)}"]


def commands(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """(run id, `degradation train ...` that trains it again) per run with recorded settings; the group defaults
    are composed once per (arch, data set, preset)."""
    defaults: dict[tuple, dict | None] = {}
    out = []
    for _, r in runs.iterrows():
        try:
            settings = json.loads(r["settings"]) if isinstance(r.get("settings"), str) else None
        except ValueError:
            settings = None
        if not settings or not set(GROUPS) <= set(settings):
            out.append((r["run_id"], "(its settings were not recorded; see its config.yaml)"))
            continue
        key = tuple(settings[g] for g in GROUPS)
        if key not in defaults:
            try:
                groups = [f"model={key[0]}", f"data={key[1]}", f"schedule={key[2]}"]
                defaults[key] = variant_settings(resolved_dict(compose(groups)))
            except UsageError:
                defaults[key] = None
        base = defaults[key]
        if base is None:
            out.append((r["run_id"], f"(no config groups model={key[0]} data={key[1]} schedule={key[2]} here)"))
            continue
        out.append((r["run_id"], "degradation train " + " ".join(overrides(settings, base, r["seed"]))))
    return out
