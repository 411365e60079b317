"""The config schema as data: one dataclass per config group (Hydra structured configs), with typed and
enumerated fields and each single-field bound in the field's metadata.

`check(cfg)` runs when a config is composed: each group is merged onto its schema (OmegaConf checks the types
and the enumerations), then every bound is checked, each failure one line naming the key and what is allowed.
The composed config itself is left as composed, so run ids do not depend on this check. The schemas are also
registered with Hydra's ConfigStore (`schema/<group>`), for a user who composes these configs with Hydra.
`conf.validate` keeps only the rules that span fields (a depth rule per network, milestones against the
schedule, batch against ranks, the image augmentation's sizes).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Optional

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from degradation.errors import UsageError


def bounded(default: Any = dataclasses.MISSING, **bounds: float) -> Any:
    """A field with bounds: ge, gt, lt, le (checked after the types)."""
    return field(default=default, metadata=bounds)


class Accelerator(enum.Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    gpu = "gpu"
    mps = "mps"


class Progress(enum.Enum):
    auto = "auto"
    lines = "lines"
    none = "none"


class Family(enum.Enum):
    cifar = "cifar"
    imagenet = "imagenet"


class Normalize(enum.Enum):
    mean_image = "mean_image"
    channel = "channel"


class Split(enum.Enum):
    full = "full"
    holdout = "holdout"


class Recipe(enum.Enum):
    auto = "auto"  # resolved when composed: cifar for small images (folders.SMALL_SIDE), else imagenet
    cifar = "cifar"
    imagenet = "imagenet"


class Decode(enum.Enum):
    workers = "workers"
    device = "device"


class BadImages(enum.Enum):
    skip = "skip"  # the next image stands in; counted in run.json
    stop = "stop"


class Verify(enum.Enum):
    headers = "headers"
    decode = "decode"
    none = "none"


@dataclass
class Warmup:
    enabled: Any = "auto"  # auto | true | false (a bool or the word; conf.validate reads it)
    archs: list[str] = field(default_factory=lambda: ["resnet"])
    min_depth: int = 110
    lr: float = bounded(0.01, gt=0)
    until_train_error: float = bounded(0.8, ge=0)  # above 1: the first window ends the warm-up
    max_iters: int = bounded(4000, ge=1)


@dataclass
class Schedule:
    name: str = MISSING
    batch_size: int = bounded(128, ge=1)
    lr: float = bounded(0.1, gt=0)
    momentum: float = bounded(0.9, ge=0, lt=1)
    weight_decay: float = bounded(1e-4, ge=0)
    nesterov: bool = False
    max_iters: int = bounded(64000, ge=1)
    milestones: list[int] = field(default_factory=list)
    gamma: float = bounded(0.1, gt=0, le=1)
    warmup: Warmup = field(default_factory=Warmup)
    log_every: int = bounded(100, ge=1)
    eval_every: int = bounded(1000, ge=1)
    checkpoint_every: int = bounded(1000, ge=1)


@dataclass
class Trainer:
    accelerator: Accelerator = Accelerator.auto
    devices: int = bounded(1, ge=1)
    num_nodes: int = bounded(1, ge=1)
    sync_batchnorm: bool = False
    precision: str = "32-true"  # a name of the precision table (compute/precision.py), checked by validate
    channels_last: bool = True
    compile: bool = False
    cuda_graphs: Any = "auto"  # auto | true | false | emulate
    activation_checkpointing: bool = False
    deterministic: bool = False  # deterministic algorithms, cuDNN autotuning off (train/determinism.py)
    cudnn_benchmark: bool = True
    threads: Any = "auto"  # auto | a whole number >= 1
    progress: Progress = Progress.auto
    record_layers: bool = True


@dataclass
class Model:
    """The built-in networks' keys; a user's network (model._target_) brings its own and is checked by building
    it (models/registry.check_network_output)."""

    arch: str = MISSING
    family: Family = Family.cifar
    depth: int = 20
    shortcut: str = "A"  # A | B | C for a network with a shortcut option (the registry knows which)
    width: float = bounded(1.0, gt=0)
    num_classes: int = bounded(10, ge=2)
    block: str = "auto"  # pre-activation units: auto | basic | bottleneck


@dataclass
class ArrayData:
    """CIFAR-10/100: the official archives, held in memory."""

    name: str = MISSING
    root: str = "data"
    download: bool = True
    split: Split = Split.full
    val_size: int = bounded(5000, ge=1)
    split_seed: int = 0
    train_subset: Optional[int] = bounded(None, ge=1)  # noqa: UP045  (OmegaConf reads typing.Optional only)
    normalize: Normalize = Normalize.mean_image
    num_classes: int = bounded(10, ge=2)


@dataclass
class SyntheticData:
    name: str = "synthetic"
    train_size: int = bounded(10000, ge=1)
    test_size: int = bounded(500, ge=1)
    num_classes: int = bounded(10, ge=2)
    seed: int = 0
    split: Split = Split.full
    val_size: int = bounded(1000, ge=1)
    split_seed: int = 0
    normalize: Normalize = Normalize.mean_image


@dataclass
class ImageData:
    """Image folders (ImageNet, any class-per-folder set): read from files by worker processes."""

    name: str = MISSING
    root: str = MISSING
    num_classes: Any = "auto"  # auto (the class folders) or their number
    classes_digest: str = "auto"
    recipe: Recipe = Recipe.imagenet  # data=imagenet: always (conf.validate); image folders choose
    holdout_per_class: int = bounded(50, ge=1)
    split_seed: int = 0
    normalize: Normalize = Normalize.mean_image
    mean_samples: int = bounded(10000, ge=1)
    crop: int = bounded(224, ge=1)
    scale_min: int = bounded(256, ge=1)
    scale_max: int = bounded(480, ge=1)
    eval_resize: int = bounded(256, ge=1)
    flip: bool = True
    lighting: float = bounded(0.1, ge=0)
    verify: Verify = Verify.headers
    decode: Decode = Decode.workers
    workers: Any = "auto"  # auto | a whole number >= 0
    eval_batch_size: int = bounded(100, ge=1)
    max_pixels: int = bounded(100_000_000, ge=1)  # a file declaring more is refused before any decode
    bad_images: BadImages = BadImages.skip
    max_bad_images: int = bounded(10, ge=0)


@dataclass
class FolderData(ImageData):
    """A class-per-folder set of any image size (data=imagefolder): the recipe is chosen, a subset can train."""

    recipe: Recipe = Recipe.auto  # the same field as ImageData's, another default
    recipe_why: str = ""  # filled in when composed: how the recipe was chosen (not a result key)
    resize: Optional[int] = bounded(None, ge=1)  # noqa: UP045  (OmegaConf reads typing.Optional only)
    train_subset: Optional[int] = bounded(None, ge=1)  # noqa: UP045


GROUPS: dict[str, type] = {"schedule": Schedule, "trainer": Trainer}


def data_schema(name: object) -> type:
    """The schema of a data set's config, by its registry entry."""
    # deferred: the data registry is light, but conf/__init__ imports this module first
    from degradation.data.registry import DATASETS

    entry = DATASETS.get(str(name))
    if entry is None or entry.file_backed:
        return FolderData if entry is None or entry.recipe == "auto" else ImageData
    return SyntheticData if entry.name == "synthetic" else ArrayData


def schemas_of(cfg: DictConfig) -> dict[str, type]:
    """Each group of a composed config and its schema (a user's network has none here)."""
    out = dict(GROUPS)
    if cfg.get("data") is not None:
        out["data"] = data_schema(cfg.data.get("name"))
    if cfg.get("model") is not None and cfg.model.get("_target_") is None:
        out["model"] = Model
    return {group: schema for group, schema in out.items() if cfg.get(group) is not None}


_KINDS = {int: " is not a whole number", float: " is not a number", bool: "; choose true or false"}


def _type_error(group: str, schema: type, exc: OmegaConfBaseException, node: Any) -> UsageError:
    """OmegaConf's multi-line validation error as the tool's one line: the key, the value, what is allowed."""
    key = str(getattr(exc, "full_key", "") or getattr(exc, "key", "") or "?")
    value = OmegaConf.select(node, key, default=None) if key != "?" else None
    kind = _field_type(schema, key)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        choices = ", ".join(m.value for m in kind)
        return UsageError(f"{group}.{key}={value!r}; choose {choices}")
    if kind in _KINDS:
        return UsageError(f"{group}.{key}={value!r}{_KINDS[kind]}")
    return UsageError(f"{group}.{key}={value!r}: {str(exc).splitlines()[0]}")


def _field_type(schema: type, dotted: str) -> Any:
    current: Any = schema
    for part in dotted.split("."):
        hit = next((f for f in fields(current) if f.name == part), None) if is_dataclass(current) else None
        if hit is None:
            return None
        current = hit.type if not isinstance(hit.type, str) else _resolve(hit.type)
    return current


def _resolve(name: str) -> Any:
    return {"int": int, "float": float, "bool": bool, "str": str}.get(name) or globals().get(name)


def _bounds(group: str, schema: type, node: Any, prefix: str = "") -> None:
    """Each field's bounds (metadata ge/gt/lt/le), and booleans that are booleans."""
    for f in fields(schema):
        value = node.get(f.name) if hasattr(node, "get") else None
        kind = f.type if not isinstance(f.type, str) else _resolve(f.type)
        if is_dataclass(kind) and value is not None:
            _bounds(group, kind, value, f"{prefix}{f.name}.")
            continue
        if kind is bool and value is not None and not isinstance(value, bool):  # OmegaConf would take 3 as true
            raise UsageError(f"{group}.{prefix}{f.name}={value!r}; choose true or false")
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        key = f"{group}.{prefix}{f.name}"
        for name, limit in f.metadata.items():
            bad = {"ge": value < limit, "gt": value <= limit, "lt": value >= limit, "le": value > limit}[name]
            if bad:
                sign = {"ge": ">=", "gt": ">", "lt": "<", "le": "<="}[name]
                raise UsageError(f"{key}={value} must be {sign} {limit:g}")


def check(cfg: DictConfig) -> None:
    """Types, enumerations and bounds of every group with a schema; the first failure as one line."""
    for group, schema in schemas_of(cfg).items():
        node = cfg[group]
        try:
            OmegaConf.merge(OmegaConf.structured(schema), node)
        except OmegaConfBaseException as exc:
            raise _type_error(group, schema, exc, node) from None
        if not isinstance(node, DictConfig):
            raise UsageError(f"{group} is not a config group here ({type(node).__name__}); choose one of its YAMLs")
        missing = [f.name for f in fields(schema) if f.name not in node and group != "model"]
        if missing:
            raise UsageError(f"config key {group}.{missing[0]} is missing; an override removed it (~key): put it back")
        _bounds(group, schema, node)


@functools.cache
def register() -> None:
    """The schemas in Hydra's ConfigStore, as `schema/<group>[_<variant>]` (once per process: compose calls it)."""
    from hydra.core.config_store import ConfigStore  # deferred: only a Hydra user of the schemas needs it

    store = ConfigStore.instance()
    for name, node in (("schedule", Schedule), ("trainer", Trainer), ("model", Model), ("data_array", ArrayData),
                       ("data_synthetic", SyntheticData), ("data_images", ImageData),
                       ("data_folder", FolderData)):
        store.store(group="schema", name=name, node=node)
