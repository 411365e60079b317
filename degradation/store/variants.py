"""Which runs are seeds of one experiment, and how to name experiments that differ in a setting.

A run's variant is the hash of its result-changing settings without the seed (conf.variant_of). Runs of one
network with different variants (one with schedule.lr=0.05, say) are separate rows and curves, never averaged as
seeds, and each is named by the settings that differ: "plain-20, schedule.lr=0.05".
"""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf

from degradation.conf import variant_of, variant_settings
from degradation.store.runs import CONFIG_FILE

UNSET = "(unset)"
LABEL_KEYS = 3  # at most this many differing settings are named; more are counted


def _config(info: dict, run_dir: Path) -> dict | None:
    """The run's resolved config: run.json's copy, else its config.yaml (older folders), else None."""
    config = info.get("config")
    if isinstance(config, dict):
        return config
    path = Path(run_dir) / CONFIG_FILE
    if path.is_file():
        try:
            loaded = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
        except Exception:  # an unreadable config.yaml: the run keeps an identity of its own
            return None
        return loaded if isinstance(loaded, dict) else None
    return None


def run_variant(info: dict, run_dir: Path) -> dict:
    """runs.parquet's `variant` (hash) and `settings` (JSON of the dotted settings) for one run folder.

    run.json of newer runs records the variant; older ones get it computed from their config. A run with no
    config at all is its own variant (its run id), so it is never pooled with another.
    """
    config = _config(info, run_dir)
    if config is None:
        return {"variant": info.get("variant") or f"run:{info.get('run_id') or Path(run_dir).name}", "settings": None}
    return {
        "variant": info.get("variant") or variant_of(config),
        "settings": json.dumps(variant_settings(config), sort_keys=True, default=str),
    }


def _value(value: object) -> str:
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def differences(settings: dict[str, str | None]) -> dict[str, str]:
    """variant -> the settings (as "key=value, ...") in which it differs from the other variants given."""
    parsed = {v: (json.loads(s) if s else {}) for v, s in settings.items()}
    if len(parsed) < 2:
        return {v: "" for v in parsed}
    keys = sorted(set().union(*parsed.values()))
    differing = [k for k in keys if len({_value(p.get(k, UNSET)) for p in parsed.values()}) > 1]
    out = {}
    for variant, values in parsed.items():
        named = [f"{k}={_value(values.get(k, UNSET))}" for k in differing[:LABEL_KEYS]]
        if len(differing) > LABEL_KEYS:
            named.append(f"+{len(differing) - LABEL_KEYS} more settings")
        out[variant] = ", ".join(named) if named else f"variant {variant}"
    return out
