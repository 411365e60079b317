"""The Hydra config tree: where it lives, composing it with overrides, validating it, naming runs.

Everything turns Hydra's multi-line exceptions into one-line `UsageError`s, so that a bad override
reads the same from `degradation train`, `python -m degradation.train` and `degradation sweep`.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from degradation.compute.precision import REFUSED, RUN_PRECISIONS, precision_name
from degradation.compute.ranks import split_batch
from degradation.conf import schema
from degradation.data.registry import dataset, is_file_backed, streams_files
from degradation.errors import UsageError, did_you_mean, first_line
from degradation.models.registry import (
    NETWORKS,
    check_network_output,
    check_shortcut_of,
    network_of,
    source_digest,
    source_file,
)


def _conf_dir() -> Path:
    """$DEGRADATION_CONF; else the copy an installed wheel carries (degradation/_conf, put there by setup.py's
    build step); else the checkout's top-level conf/, the one source both come from."""
    if os.environ.get("DEGRADATION_CONF"):
        return Path(os.environ["DEGRADATION_CONF"])
    package = Path(__file__).resolve().parent.parent
    shipped = package / "_conf"
    return shipped if (shipped / "config.yaml").is_file() else package.parent / "conf"


CONF_DIR = _conf_dir()
CONFIG_DIR_ENV = "DEGRADATION_CONFIG_DIR"  # folders of the user's own configs (model/<name>.yaml), os.pathsep-separated


def config_dirs() -> list[Path]:
    """The user's config folders (--config-dir / $DEGRADATION_CONFIG_DIR), searched after the tool's own conf/."""
    return [Path(p).absolute() for p in os.environ.get(CONFIG_DIR_ENV, "").split(os.pathsep) if p]


def add_config_dir(folder: str | os.PathLike) -> None:
    """`--config-dir DIR`: its YAMLs join every compose of this process and of the runs it starts (the variable
    is inherited), and a factory module beside them imports."""
    if not str(folder):
        raise UsageError("--config-dir needs a folder (the one that holds model/<name>.yaml)")
    path = Path(folder)
    if not path.is_dir():
        raise UsageError(f"--config-dir {folder}: no such folder; give the folder that holds model/<name>.yaml")
    dirs = [str(d) for d in config_dirs()]
    if str(path.absolute()) not in dirs:
        os.environ[CONFIG_DIR_ENV] = os.pathsep.join([*dirs, str(path.absolute())])


def take_config_dir(args: list[str]) -> list[str]:
    """The arguments without `--config-dir DIR` / `--config-dir=DIR` (before any `--`), each folder added."""
    out: list[str] = []
    rest = iter(args)
    for arg in rest:
        if arg == "--":
            out += [arg, *rest]
            break
        if arg == "--config-dir":
            folder = next(rest, None)
            if folder is None:
                raise UsageError("--config-dir needs a folder (the one that holds model/<name>.yaml)")
            add_config_dir(folder)
        elif arg.startswith("--config-dir="):
            add_config_dir(arg.partition("=")[2])
        else:
            out.append(arg)
    return out


def _import_config_dirs() -> None:
    """A factory module in a config folder imports as it is (`_target_: mynet.build` beside model/mynet.yaml)."""
    import sys

    for folder in map(str, config_dirs()):
        if folder not in sys.path:
            sys.path.append(folder)


def group_names(group: str) -> list[str]:
    """The choices of a config group: the tool's conf/<group>/*.yaml and the user's (config folders)."""
    return sorted({p.stem for d in (CONF_DIR, *config_dirs()) for p in (d / group).glob("*.yaml")})


def model_names() -> list[str]:
    """Every network a sweep can name: the built-in ones and the user's model YAMLs."""
    return group_names("model")


def plugin_configs(names: list[str]) -> dict[str, dict]:
    """The composed model configs of the networks among `names` that are not built in (the user's own)."""
    return {name: resolved_dict(compose([f"model={name}"]))["model"] for name in names if name not in NETWORKS}


def check_choice(group: str, value: str, flag: str) -> str:
    """A config group's choice (`--data`, `--preset`, `--archs`), or one line naming the choices."""
    names = group_names(group)
    if value not in names:
        what = "arch" if group == "model" else group
        own = " (or your own network: model/<name>.yaml in a --config-dir folder)" if group == "model" else ""
        raise UsageError(f"{flag}: unknown {what} '{value}'; choose from {', '.join(names)}{own}"
                         f"{did_you_mean(value, names)}")
    return value

LOGGERS = ("none", "csv", "tensorboard", "wandb", "mlflow")  # conf/logger/*.yaml; train/loggers.py builds them
OPTIONAL_LOGGERS = ("tensorboard", "wandb", "mlflow")  # each an optional extra of the same name
WANDB_MODES = ("offline", "online")  # logger.wandb.mode: offline keeps everything on this machine (`wandb sync`)

# Keys that say where or how a run computes, not what it computes: left out of the run id's hash.
NON_RESULT_KEYS = (
    "results_dir",
    "data.root",
    "model.source_file",
    "data.download",
    "data.workers",
    "data.decode",
    "data.verify",
    "data.recipe_why",
    "data.max_pixels",
    "data.bad_images",
    "data.max_bad_images",
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
    "trainer.deterministic",
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
    schema.register()
    GlobalHydra.instance().clear()
    search = [f"hydra.searchpath=[{','.join(f'file://{d}' for d in config_dirs())}]"] if config_dirs() else []
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = hydra_compose(config_name="config", overrides=[*search, *overrides])
    except Exception as exc:  # Hydra raises several exception types, all user errors here
        raise UsageError(_one_line_hydra_error(exc, overrides)) from None
    finally:
        GlobalHydra.instance().clear()
    fill_image_classes(cfg)
    try:
        OmegaConf.resolve(cfg)
    except Exception as exc:
        raise UsageError(f"config cannot be resolved: {first_line(exc)}") from None
    fill_plugin(cfg)
    schema.check(cfg)
    return cfg


def fill_plugin(cfg: DictConfig) -> None:
    """A user's network (model._target_): its arch is its name, its family cifar unless said, and the hash of
    its factory's source joins the config, so editing the network makes a new variant with a new run id."""
    model = cfg.get("model")
    if model is None or model.get("_target_") is None:
        return
    name = model.get("name") or model.get("arch")
    if not name or not str(name).replace("_", "").replace("-", "").isalnum():
        raise UsageError(f"model {model.get('_target_')}: its YAML needs a 'name' (letters, digits, - or _), "
                         "e.g. name: rezero")
    _import_config_dirs()
    with open_dict(model):
        model.arch = str(name)
        model.family = model.get("family", "cifar")
        model.source_digest = source_digest(str(model._target_))
        model.source_file = source_file(str(model._target_))  # where it loads from later; not a result key


def fill_image_classes(cfg: DictConfig) -> None:
    """Image-folder data: data.num_classes=auto becomes the number of class folders, and data.classes_digest a
    hash of their names (a run id must tell two folders apart; data.root itself is a path, not a result key);
    data.recipe=auto becomes cifar or imagenet by the images' size, data.recipe_why says which and why."""
    data = cfg.get("data")
    if data is None or not is_file_backed(data.get("name")):
        return
    # deferred: the image-folder modules load torchvision; CIFAR configs never need them
    from degradation.data.folders import auto_recipe, classes_digest
    from degradation.data.imagedata import check_classes

    classes = check_classes(data)
    if data.get("num_classes") == "auto":
        data.num_classes = len(classes)
    data.classes_digest = classes_digest(classes)
    if data.get("recipe") == "auto":
        data.recipe, data.recipe_why = auto_recipe(str(data.root))
    elif "recipe_why" in data:
        data.recipe_why = f"data.recipe={data.recipe}"


# An image folder's keys that only the ImageNet recipe reads (data/imageaug.py, the file stream's mean).
IMAGENET_RECIPE_KEYS = ("crop", "scale_min", "scale_max", "eval_resize", "lighting", "mean_samples")

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
    data = tree.get("data", {})
    for key in ("train_subset", "resize"):
        if data.get(key) is None:
            _drop(tree, f"data.{key}")  # unset keeps the run ids made before the keys
    if data.get("recipe") == "imagenet":
        _drop(tree, "data.recipe")  # an image folder's recipe before the key existed
    elif data.get("recipe") == "cifar":
        for key in IMAGENET_RECIPE_KEYS:  # CIFAR's recipe never reads them: changing one is not a new result
            _drop(tree, f"data.{key}")
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
    option = None if model.arch == "plain" else model.get("shortcut")  # plug-ins have none
    shortcut = f"-{option}" if option else ""
    return f"{model.arch}-{model.depth}{shortcut}-{cfg.data.name}-{cfg.schedule.name}-s{cfg.seed}-{digest}"


@functools.lru_cache(maxsize=32)
def _preset_file(name: str) -> dict:
    """conf/schedule/<name>.yaml (or a user's config folder's) as plain values, {} when there is none."""
    for folder in (CONF_DIR, *config_dirs()):
        path = folder / "schedule" / f"{name}.yaml"
        if path.is_file():
            return _flat(OmegaConf.to_container(OmegaConf.load(path), resolve=False))  # type: ignore[arg-type]
    return {}


def preset_changes(name: str, settings: dict) -> dict[str, object]:
    """The schedule keys whose values in `settings` (a run's dotted result keys) differ from the preset `name`'s
    YAML: `schedule=quick schedule.max_iters=1000` is not the quick preset, and titles say what changed."""
    preset = _preset_file(name)
    prefix = "schedule."
    return {key: value for key, value in settings.items()
            if key.startswith(prefix) and key[len(prefix):] in preset and preset[key[len(prefix):]] != value}


def run_dir(cfg: DictConfig) -> Path:
    return Path(cfg.results_dir) / "runs" / run_id(cfg)


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise UsageError(message)


def _whole(value: object, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{key}={value!r} is not a whole number (>= {minimum})")
    _need(value >= minimum, f"{key}={value} must be >= {minimum}")
    return value


def validate(cfg: DictConfig) -> None:
    """Check every value a run depends on before anything is built or written; a key an override removed or made
    unreadable (`~schedule.lr`, `schedule=[]`, `${nope}`) is a one-line UsageError too."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        _validate_values(cfg)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "?"
        raise UsageError(f"config key {key} is missing or unreadable ({first_line(exc)}); check the overrides that "
                         f"remove or change it (~key, group=[], ${{...}})") from None


def _validate_values(cfg: DictConfig) -> None:
    model, data, sched, trainer = cfg.model, cfg.data, cfg.schedule, cfg.trainer
    _need(_whole(cfg.seed, "seed", 0) < 2**32, f"seed={cfg.seed} must be < 2**32 (numpy's seed range)")
    network_of(model).check_depth(model.family, model.depth, model.get("block", "auto"))
    check_shortcut_of(model)
    _whole(model.num_classes, "model.num_classes", 2)  # a user's network has no schema: its classes checked here
    check_network_output(model)  # a plug-in builds and gives [N, num_classes] logits; built-in nets are trusted

    _need(data.name != "imagenet" or data.get("recipe", "imagenet") == "imagenet",
          f"data.recipe={data.get('recipe')}: data=imagenet always trains with the paper's ImageNet recipe; for "
          "another recipe read the folder as data=imagefolder")
    if streams_files(data):
        _validate_images(data)
    _validate_subset(data)

    milestones = list(sched.milestones)
    for m in milestones:
        _whole(m, "schedule.milestones[]", 1)
    _need(milestones == sorted(set(milestones)), f"schedule.milestones={milestones} must be increasing")
    log_every, ckpt = sched.log_every, sched.checkpoint_every
    _need(ckpt % log_every == 0, f"schedule.checkpoint_every={ckpt} must be a multiple of log_every={log_every}")
    _need(
        sched.eval_every % log_every == 0,
        f"schedule.eval_every={sched.eval_every} must be a multiple of log_every={log_every}",
    )
    _need(
        str(sched.warmup.enabled).lower() in ("auto", "true", "false"),
        f"schedule.warmup.enabled={sched.warmup.enabled!r}; choose auto, true or false",
    )
    archs, names = sched.warmup.get("archs"), model_names()
    _need(
        archs is not None and not isinstance(archs, str) and all(a in names for a in archs),
        f"schedule.warmup.archs={archs!r}; a list of networks ({', '.join(names)}) that `enabled: auto` warms up",
    )

    devices, nodes = trainer.devices, trainer.get("num_nodes", 1)
    split_batch(sched.batch_size, devices * nodes, f"trainer.devices={devices} x trainer.num_nodes={nodes} = ")
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
    _check_logger(cfg.get("logger"))


def _validate_images(data: DictConfig) -> None:
    # deferred: the image-folder modules load torch and torchvision; CIFAR configs never need them
    from degradation.data.filestream import auto_workers
    from degradation.data.imageaug import AugmentSpec

    AugmentSpec.from_cfg(data).check()  # the sizes against each other (crop within the scales)
    _need(data.workers == "auto" or (isinstance(data.workers, int) and not isinstance(data.workers, bool)),
          f"data.workers={data.workers!r}; use auto or a whole number >= 0")
    auto_workers(data.workers)


def _validate_subset(data: DictConfig) -> None:
    """data.train_subset within CIFAR's training set (an image folder's is checked by its scan, which counts)."""
    size = data.get("train_subset")
    entry = dataset(data.name)
    if size is None or entry.train_size is None:
        return
    total = entry.train_size - (int(data.val_size) if data.get("split") == "holdout" else 0)
    what = f"{entry.display}'s training {'split' if data.get('split') == 'holdout' else 'set'} ({total:,} images)"
    _need(int(size) <= total, f"data.train_subset={size} is larger than {what}; choose at most {total}, or null "
          "for all of them")
    _need(int(size) >= int(data.num_classes), f"data.train_subset={size} is fewer than the {data.num_classes} "
          f"classes of {entry.display}; choose at least {data.num_classes} (one image per class)")


def chosen_loggers(logger: Any) -> dict[str, Any]:
    """The run's loggers as {name: options}. Each conf/logger/<name>.yaml holds its options under its name, so
    `logger=[csv,tensorboard]` merges into {csv: {}, tensorboard: {}}; `logger=none` and `logger=[]` are no
    logger; an older run's config ({name: csv, ...}) reads as {csv: {...}}."""
    if logger is None or not hasattr(logger, "keys"):
        return {} if logger in (None, "none") else {str(logger): {}}
    if "name" in logger:
        rest = {key: logger[key] for key in logger if key != "name"}
        return {} if logger["name"] == "none" else {str(logger["name"]): rest}
    return {str(key): logger[key] for key in logger}


def _check_logger(logger: object) -> None:
    """Known loggers whose packages are installed: a missing extra is found before anything is created."""
    for name, options in chosen_loggers(logger).items():
        _need(name in LOGGERS and name != "none",
              f"unknown logger '{name}'; choose from {', '.join(LOGGERS)} (several: logger=[csv,tensorboard])")
        _need(options is None or hasattr(options, "keys"),
              f"logger.{name}={options!r}; the logger's options are a mapping, e.g. logger.wandb.mode=online")
        if name in OPTIONAL_LOGGERS:
            import importlib.util  # deferred: only an optional logger needs the look-up

            _need(importlib.util.find_spec(name) is not None,
                  f"logger={name} needs the {name} package: pip install 'degradation[{name}]' (or logger=none)")
        if name == "wandb":
            mode = (options or {}).get("mode", "offline")
            _need(mode in WANDB_MODES, f"logger.wandb.mode={mode!r}; choose offline or online")
