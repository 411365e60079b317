"""Plain and residual networks of the paper, their sizes and their layer responses.

build_model(cfg.model)                       # from the Hydra model group (conf/model/*.yaml)
cifar_net("plain", 56)                        # 6n+2 depths, shortcut A/B/C, num_classes, width
imagenet_net("resnet", 50, shortcut="B")      # Table 1 nets; option B == torchvision's parameters
count_params(m), count_macs(m, (1, 3, 32, 32))
with ResponseRecorder(m) as r: m(x); r.std()  # Figure 7
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from degradation.errors import UsageError
from degradation.models.cifar import CifarNet, cifar_net
from degradation.models.complexity import count_macs, count_params
from degradation.models.depth import check_arch, check_family, check_imagenet_depth, cifar_blocks_per_stage
from degradation.models.imagenet import ImageNetNet, imagenet_net
from degradation.models.preact import PreActNet, preact_layout, preact_net
from degradation.models.responses import ResponseRecorder, response_layers

__all__ = [
    "CifarNet",
    "ImageNetNet",
    "PreActNet",
    "ResponseRecorder",
    "build_model",
    "check_depth",
    "cifar_net",
    "count_macs",
    "count_params",
    "imagenet_net",
    "input_shape",
    "preact_net",
    "response_layers",
]

INPUT_SIZE = {"cifar": 32, "imagenet": 224}


def _get(cfg: Any, key: str, default: Any = None) -> Any:
    return cfg.get(key, default) if isinstance(cfg, Mapping) or hasattr(cfg, "get") else getattr(cfg, key, default)


def build_model(model_cfg: Any) -> nn.Module:
    """A network from a model config (DictConfig or dict): arch, family, depth, shortcut, width, num_classes.

    Missing optional keys default to the paper's choices: family cifar, shortcut A (cifar) / B (imagenet),
    width 1.0, num_classes 10 (cifar) / 1000 (imagenet). Bad values raise a one-line UsageError.
    """
    for key in ("arch", "depth"):
        if _get(model_cfg, key) is None:
            raise UsageError(f"model config needs '{key}' (e.g. model.arch=resnet model.depth=20)")
    family = check_family(_get(model_cfg, "family", "cifar"))
    cifar = family == "cifar"
    kwargs = {
        "shortcut": _get(model_cfg, "shortcut", "A" if cifar else "B"),
        "num_classes": _get(model_cfg, "num_classes", 10 if cifar else 1000),
        "width": _get(model_cfg, "width", 1.0),
    }
    arch, depth = _get(model_cfg, "arch"), _get(model_cfg, "depth")
    check_depth(arch, family, depth, _get(model_cfg, "block", "auto"))
    if arch == "preact":
        kwargs["shortcut"] = _get(model_cfg, "shortcut", "B")
        return preact_net(depth, block=_get(model_cfg, "block", "auto"), **kwargs)
    factory = cifar_net if cifar else imagenet_net
    return factory(arch, depth, **kwargs)


def check_depth(arch: object, family: object, depth: object, block: object = "auto") -> None:
    """The one place that knows which depths each (arch, family) has: a one-line UsageError otherwise."""
    arch, family = check_arch(arch), check_family(family)
    if arch == "preact":
        if family != "cifar":
            raise UsageError("model.arch=preact is a CIFAR network; use model.family=cifar")
        preact_layout(depth, block)
    elif family == "cifar":
        cifar_blocks_per_stage(depth)
    else:
        check_imagenet_depth(depth)


def input_shape(family: str, batch: int = 1) -> tuple[int, int, int, int]:
    """The input a family's nets are built for: (batch, 3, 32, 32) or (batch, 3, 224, 224)."""
    size = INPUT_SIZE[check_family(family)]
    return (batch, 3, size, size)
