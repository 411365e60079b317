"""The Hydra config tree: where it lives, composing it with overrides, validating it, naming runs.

Everything turns Hydra's multi-line exceptions into one-line `UsageError`s, so that a bad override
reads the same from `degradation train`, `python -m degradation.train` and `degradation sweep`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from degradation.errors import UsageError, first_line
from degradation.precision import REFUSED, RUN_PRECISIONS, precision_name


def _conf_dir() -> Path:
    """$DEGRADATION_CONF; else the copy an installed wheel carries (degradation/_conf, put there by setup.py's
    build step); else the checkout's top-level conf/, the one source both come from."""
    if os.environ.get("DEGRADATION_CONF"):
        return Path(os.environ["DEGRADATION_CONF"])
    package = Path(__file__).resolve().parent
    shipped = package / "_conf"
    return shipped if (shipped / "config.yaml").is_file() else package.parent / "conf"


CONF_DIR = _conf_dir()

LOGGERS = ("none", "csv", "tensorboard", "wandb", "mlflow")  # conf/logger/*.yaml; train/loggers.py builds them
OPTIONAL_LOGGERS = ("tensorboard", "wandb", "mlflow")  # each an optional extra of the same name

# Keys that say where or how a run computes, not what it computes: left out of the run id's hash.
NON_RESULT_KEYS = (
    "results_dir",
    "data.root",
    "data.download",
    "data.workers",
    "data.decode",
    "data.verify",
    "data.eval_batch_size",
    "trainer.accelerator",
    "trainer.devices",
    "trainer.num_nodes",
    "trainer.threads",
    "trainer.progress",
    "trainer.compile",
    "trainer.cuda_graphs",
    "trainer.activation_checkpointing",
    "trainer.cudnn_benchmark",
    "trainer.channels_last",
    "trainer.record_layers",
    "logger",
    "launcher",
)


def compose(overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """Compose conf/config.yaml with Hydra overrides; raise UsageError with one line on a bad one."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    check_hydra_keys(overrides)
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
    fill_image_classes(cfg)
    try:
        OmegaConf.resolve(cfg)
    except Exception as exc:
        raise UsageError(f"config cannot be resolved: {first_line(exc)}") from None
    return cfg


def fill_image_classes(cfg: DictConfig) -> None:
    """Image-folder data: data.num_classes=auto becomes the number of class folders, and data.classes_digest a
    hash of their names (a run id must tell two folders apart; data.root itself is a path, not a result key)."""
    data = cfg.get("data")
    if data is None or data.get("name") not in ("imagenet", "imagefolder"):
        return
    # deferred: the image-folder modules load torchvision; CIFAR configs never need them
    from degradation.data.folders import classes_digest
    from degradation.data.imagedata import check_classes

    classes = check_classes(data)
    if data.get("num_classes") == "auto":
        data.num_classes = len(classes)
    data.classes_digest = classes_digest(classes)


# Hydra app-runner settings people bring, and what sets the same thing here.
HYDRA_KEYS = {key: "results_dir" for key in ("hydra.run.dir", "hydra.sweep.dir", "hydra.runtime.output_dir")}


def check_hydra_keys(overrides: list[str] | tuple[str, ...]) -> None:
    """Refuse hydra.* overrides: runs are composed, not launched by Hydra's app runner, so Hydra would ignore
    them silently (hydra.run.dir would leave the run in the default results folder)."""
    for override in overrides:
        key, _, value = str(override).partition("=")
        key = key.lstrip("+~")
        if not (key == "hydra" or key.startswith(("hydra.", "hydra/"))):
            continue
        instead = HYDRA_KEYS.get(key)
        if instead:
            raise UsageError(f"{key} is not used here (runs go to <results_dir>/runs/<run id>); "
                             f"set {instead}={value or '...'} instead")
        raise UsageError(f"{key} is a setting of Hydra's app runner, which runs here do not use; leave it out "
                         f"(the folder is results_dir=..., the config is printed by --cfg)")


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


def result_tree(tree: dict) -> dict:
    """The part of a resolved config (a plain dict, e.g. run.json's "config") that changes the result."""
    tree = copy.deepcopy(tree)
    for key in NON_RESULT_KEYS:
        _drop(tree, key)
    if tree.get("model", {}).get("arch") == "plain":
        tree["model"]["shortcut"] = "none"
    if not tree.get("trainer", {}).get("sync_batchnorm", False):
        _drop(tree, "trainer.sync_batchnorm")  # the default (BN per device) keeps the run ids made before the key
    return tree


def result_dict(cfg: DictConfig) -> dict:
    """The part of the config that changes the result: what the run id hashes."""
    return result_tree(resolved_dict(cfg))


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def variant_settings(tree: dict) -> dict:
    """A resolved config's result-changing settings as dotted keys, without the seed: what seeds of one experiment
    share. Runs whose settings differ in anything else are different experiments, never pooled as seeds."""
    flat = _flat(result_tree(tree))
    flat.pop("seed", None)
    return flat


def variant_of(tree: dict) -> str:
    """The 8-hex hash of `variant_settings`: equal for exactly the runs that differ only in their seed."""
    return hashlib.sha256(json.dumps(variant_settings(tree), sort_keys=True).encode()).hexdigest()[:8]


def variant_id(cfg: DictConfig) -> str:
    """The run id's identity without the seed (see variant_of)."""
    return variant_of(resolved_dict(cfg))


def run_id(cfg: DictConfig) -> str:
    """Readable prefix plus a hash of the result-changing config: the same cell always maps to one folder.

    The seed is one of the hashed settings (result_dict keeps it); variant_id is the same identity without it.
    """
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
    from degradation.models import check_depth
    from degradation.models.depth import check_shortcut

    model, data, sched, trainer = cfg.model, cfg.data, cfg.schedule, cfg.trainer
    _need(_whole(cfg.seed, "seed", 0) < 2**32, f"seed={cfg.seed} must be < 2**32 (numpy's seed range)")
    check_depth(model.arch, model.family, model.depth, model.get("block", "auto"))
    check_shortcut(model.shortcut)
    _need(_number(model.width, "model.width") > 0, f"model.width={model.width} must be > 0")
    _whole(model.num_classes, "model.num_classes", 2)

    _need(
        data.name in ("cifar10", "cifar100", "synthetic", "imagenet", "imagefolder"),
        f"unknown data set '{data.name}'; choose from cifar10, cifar100, synthetic, imagenet, imagefolder",
    )
    _need(
        data.normalize in ("mean_image", "channel"), f"data.normalize={data.normalize!r}; choose mean_image or channel"
    )
    if data.name in ("imagenet", "imagefolder"):
        _validate_images(data)
    else:
        _need(data.split in ("full", "holdout"), f"data.split={data.split!r}; choose full or holdout")
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
    _whole(sched.warmup.get("max_iters"), "schedule.warmup.max_iters", 1)  # the cap; past max_iters it never bites
    archs = sched.warmup.get("archs")
    _need(
        archs is not None and not isinstance(archs, str) and all(a in ("plain", "resnet") for a in archs),
        f"schedule.warmup.archs={archs!r}; a list of plain and/or resnet (the nets `enabled: auto` warms up)",
    )
    _need(max_iters >= 1, "schedule.max_iters must be >= 1")

    _need(
        trainer.accelerator in ("auto", "cpu", "cuda", "gpu", "mps"),
        f"trainer.accelerator={trainer.accelerator!r}; choose auto, cpu, cuda or mps",
    )
    devices = _whole(trainer.devices, "trainer.devices", 1)
    nodes = _whole(trainer.get("num_nodes", 1), "trainer.num_nodes", 1)
    _need(
        isinstance(trainer.get("sync_batchnorm", False), bool),
        f"trainer.sync_batchnorm={trainer.get('sync_batchnorm')!r}; choose true or false",
    )
    _need(
        sched.batch_size % (devices * nodes) == 0,
        f"schedule.batch_size={sched.batch_size} does not divide among trainer.devices={devices} x "
        f"trainer.num_nodes={nodes} = {devices * nodes} ranks (each takes an equal slice of the global batch); "
        "choose a device count that divides it",
    )
    refused = REFUSED.get(precision_name(trainer.precision))
    _need(
        precision_name(trainer.precision) in RUN_PRECISIONS,
        f"trainer.precision={trainer.precision!r}" + (f" is refused: {refused}" if refused else
                                                       "; choose 32-true (fp32, TF32 off), tf32 or bf16-mixed"),
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
        isinstance(trainer.get("record_layers", True), bool),
        f"trainer.record_layers={trainer.get('record_layers')!r}; choose true or false",
    )
    _check_logger(cfg.get("logger"))
    _need(
        trainer.progress in ("auto", "lines", "none"),
        f"trainer.progress={trainer.progress!r}; choose auto, lines or none",
    )


def _validate_images(data: DictConfig) -> None:
    # deferred: the image-folder modules load torch and torchvision; CIFAR configs never need them
    from degradation.data.filestream import auto_workers
    from degradation.data.imageaug import AugmentSpec

    for key in ("crop", "scale_min", "scale_max", "eval_resize", "mean_samples", "holdout_per_class",
                "eval_batch_size"):
        _whole(data[key], f"data.{key}", 1)
    _number(data.lighting, "data.lighting")
    AugmentSpec.from_cfg(data).check()
    _need(data.get("decode", "workers") in ("workers", "device"),
          f"data.decode={data.get('decode')!r}; choose workers or device")
    _need(data.verify in ("headers", "decode", "none"), f"data.verify={data.verify!r}; choose headers, decode or none")
    _need(data.workers == "auto" or (isinstance(data.workers, int) and not isinstance(data.workers, bool)),
          f"data.workers={data.workers!r}; use auto or a whole number >= 0")
    auto_workers(data.workers)


def _check_logger(logger: object) -> None:
    """A known logger whose package is installed: a missing extra is found before anything is created."""
    name = logger.get("name", "none") if logger is not None and hasattr(logger, "get") else "none"
    _need(name in LOGGERS, f"unknown logger '{name}'; choose from {', '.join(LOGGERS)}")
    if name in OPTIONAL_LOGGERS:
        import importlib.util  # deferred: only an optional logger needs the look-up

        _need(importlib.util.find_spec(name) is not None,
              f"logger={name} needs the {name} package: pip install 'degradation[{name}]' (or logger=none)")
