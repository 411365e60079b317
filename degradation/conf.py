"""The Hydra config tree: where it lives, composing it with overrides, validating it, naming runs.

Everything turns Hydra's multi-line exceptions into one-line `UsageError`s, so that a bad override
reads the same from `degradation train`, `python -m degradation.train` and `degradation sweep`.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from degradation.errors import UsageError, first_line
from degradation.precision import AUTOCAST, precision_name


def _conf_dir() -> Path:
    """$DEGRADATION_CONF; else the copy an installed wheel carries (degradation/_conf, put there by setup.py's
    build step); else the checkout's top-level conf/, the one source both come from."""
    if os.environ.get("DEGRADATION_CONF"):
        return Path(os.environ["DEGRADATION_CONF"])
    package = Path(__file__).resolve().parent
    shipped = package / "_conf"
    return shipped if (shipped / "config.yaml").is_file() else package.parent / "conf"


CONF_DIR = _conf_dir()

# Keys that say where or how a run computes, not what it computes: left out of the run id's hash.
NON_RESULT_KEYS = (
    "results_dir",
    "data.root",
    "data.download",
    "trainer.accelerator",
    "trainer.devices",
    "trainer.threads",
    "trainer.progress",
    "trainer.compile",
    "trainer.cuda_graphs",
    "trainer.activation_checkpointing",
    "trainer.cudnn_benchmark",
    "trainer.channels_last",
    "launcher",
)


def compose(overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """Compose conf/config.yaml with Hydra overrides; raise UsageError with one line on a bad one."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if not (CONF_DIR / "config.yaml").is_file():
        raise UsageError(f"config tree not found at {CONF_DIR}; set DEGRADATION_CONF to the project's conf/ folder")
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = hydra_compose(config_name="config", overrides=list(overrides))
    except Exception as exc:  # Hydra raises several exception types, all user errors here
        raise UsageError(_one_line_hydra_error(exc, overrides)) from None
    finally:
        GlobalHydra.instance().clear()
    try:
        OmegaConf.resolve(cfg)
    except Exception as exc:
        raise UsageError(f"config cannot be resolved: {first_line(exc)}") from None
    return cfg


def _one_line_hydra_error(exc: BaseException, overrides: list[str] | tuple[str, ...]) -> str:
    """Hydra's message, first line only, plus what a user would do about it."""
    line = first_line(exc)
    cause = exc.__cause__ or exc.__context__
    if "not in struct" in line or (cause and "not in struct" in str(cause)):
        key = line.split("'")[1] if "'" in line else "?"
        return f"unknown config key '{key}'; see `degradation train --cfg` for the keys (add new ones with +key=value)"
    if "Could not find" in line or "Could not load" in line:
        groups = ", ".join(
            f"{g.name}: {'/'.join(sorted(p.stem for p in g.glob('*.yaml')))}"
            for g in sorted(CONF_DIR.iterdir())
            if g.is_dir()
        )
        return f"{line} (choices: {groups})"
    return f"bad override in {' '.join(overrides) or '(none)'}: {line}"


def resolved_dict(cfg: DictConfig) -> dict:
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def _drop(tree: dict, dotted: str) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        tree = tree.get(key, {})
        if not isinstance(tree, dict):
            return
    tree.pop(leaf, None)


def result_dict(cfg: DictConfig) -> dict:
    """The part of the config that changes the result: what the run id hashes."""
    tree = resolved_dict(cfg)
    for key in NON_RESULT_KEYS:
        _drop(tree, key)
    if tree.get("model", {}).get("arch") == "plain":
        tree["model"]["shortcut"] = "none"
    return tree


def run_id(cfg: DictConfig) -> str:
    """Readable prefix plus a hash of the result-changing config: the same cell always maps to one folder."""
    digest = hashlib.sha256(json.dumps(result_dict(cfg), sort_keys=True).encode()).hexdigest()[:8]
    model = cfg.model
    shortcut = "" if model.arch == "plain" else f"-{model.shortcut}"
    return f"{model.arch}-{model.depth}{shortcut}-{cfg.data.name}-{cfg.schedule.name}-s{cfg.seed}-{digest}"


def run_dir(cfg: DictConfig) -> Path:
    return Path(cfg.results_dir) / "runs" / run_id(cfg)


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise UsageError(message)


def _number(value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"{key}={value!r} is not a number")
    return float(value)


def _whole(value: object, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{key}={value!r} is not a whole number (>= {minimum})")
    _need(value >= minimum, f"{key}={value} must be >= {minimum}")
    return value


def validate(cfg: DictConfig) -> None:
    """Check every value a run depends on before anything is built or written."""
    # deferred: degradation.models loads torch; composing a config does not need it
    from degradation.models.depth import (
        check_arch,
        check_family,
        check_imagenet_depth,
        check_shortcut,
        cifar_blocks_per_stage,
    )

    model, data, sched, trainer = cfg.model, cfg.data, cfg.schedule, cfg.trainer
    _need(_whole(cfg.seed, "seed", 0) < 2**32, f"seed={cfg.seed} must be < 2**32 (numpy's seed range)")
    check_arch(model.arch)
    family = check_family(model.family)
    if family == "cifar":
        cifar_blocks_per_stage(model.depth)
    else:
        check_imagenet_depth(model.depth)
    check_shortcut(model.shortcut)
    _need(_number(model.width, "model.width") > 0, f"model.width={model.width} must be > 0")
    _whole(model.num_classes, "model.num_classes", 2)

    _need(
        data.name in ("cifar10", "cifar100", "synthetic"),
        f"unknown data set '{data.name}'; choose from cifar10, cifar100, synthetic",
    )
    _need(data.split in ("full", "holdout"), f"data.split={data.split!r}; choose full or holdout")
    _need(
        data.normalize in ("mean_image", "channel"), f"data.normalize={data.normalize!r}; choose mean_image or channel"
    )
    _whole(data.val_size, "data.val_size", 1)

    _whole(sched.batch_size, "schedule.batch_size", 1)
    _need(_number(sched.lr, "schedule.lr") > 0, f"schedule.lr={sched.lr} must be > 0")
    _need(
        0 <= _number(sched.momentum, "schedule.momentum") < 1, f"schedule.momentum={sched.momentum} must be in [0, 1)"
    )
    _need(_number(sched.weight_decay, "schedule.weight_decay") >= 0, "schedule.weight_decay must be >= 0")
    _need(0 < _number(sched.gamma, "schedule.gamma") <= 1, f"schedule.gamma={sched.gamma} must be in (0, 1]")
    max_iters = _whole(sched.max_iters, "schedule.max_iters", 1)
    milestones = list(sched.milestones)
    for m in milestones:
        _whole(m, "schedule.milestones[]", 1)
    _need(milestones == sorted(set(milestones)), f"schedule.milestones={milestones} must be increasing")
    log_every = _whole(sched.log_every, "schedule.log_every", 1)
    _whole(sched.eval_every, "schedule.eval_every", 1)
    ckpt = _whole(sched.checkpoint_every, "schedule.checkpoint_every", 1)
    _need(ckpt % log_every == 0, f"schedule.checkpoint_every={ckpt} must be a multiple of log_every={log_every}")
    _need(
        sched.eval_every % log_every == 0,
        f"schedule.eval_every={sched.eval_every} must be a multiple of log_every={log_every}",
    )
    _need(
        str(sched.warmup.enabled).lower() in ("auto", "true", "false"),
        f"schedule.warmup.enabled={sched.warmup.enabled!r}; choose auto, true or false",
    )
    _need(_number(sched.warmup.lr, "schedule.warmup.lr") > 0, "schedule.warmup.lr must be > 0")
    _need(max_iters >= 1, "schedule.max_iters must be >= 1")

    _need(
        trainer.accelerator in ("auto", "cpu", "cuda", "gpu", "mps"),
        f"trainer.accelerator={trainer.accelerator!r}; choose auto, cpu, cuda or mps",
    )
    _whole(trainer.devices, "trainer.devices", 1)
    _need(
        precision_name(trainer.precision) in AUTOCAST,
        f"trainer.precision={trainer.precision!r}; choose 32-true or bf16-mixed",
    )
    _need(
        trainer.threads == "auto" or (isinstance(trainer.threads, int) and trainer.threads >= 1),
        f"trainer.threads={trainer.threads!r}; use auto or a whole number >= 1",
    )
    _need(
        str(trainer.get("cuda_graphs", "auto")).lower() in ("auto", "true", "false", "emulate"),
        f"trainer.cuda_graphs={trainer.get('cuda_graphs')!r}; choose auto, true, false or emulate",
    )
    _need(
        isinstance(trainer.get("activation_checkpointing", False), bool),
        f"trainer.activation_checkpointing={trainer.get('activation_checkpointing')!r}; choose true or false",
    )
    _need(
        trainer.progress in ("auto", "lines", "none"),
        f"trainer.progress={trainer.progress!r}; choose auto, lines or none",
    )
