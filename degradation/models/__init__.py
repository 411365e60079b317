"""Plain and residual networks of the paper, their registry, sizes and layer responses.

build_model(cfg.model)                       # from the Hydra model group (conf/model/*.yaml, or a plug-in's)
network("resnet"), network_of(cfg.model)      # the registry: label, families, default shortcut, depth rule
cifar_net("plain", 56)                        # 6n+2 depths, shortcut A/B/C, num_classes, width
imagenet_net("resnet", 50, shortcut="B")      # Table 1 nets; option B == torchvision's parameters
count_params(m), count_macs(m, (1, 3, 32, 32))
with ResponseRecorder(m) as r: m(x); r.std()  # Figure 7

The names resolve on first use, so that asking the registry (models/registry.py) loads no torch.
"""

from __future__ import annotations

from typing import Any

# name -> module that holds it
_LAZY = {
    "CifarNet": "degradation.models.cifarnet",
    "cifar_net": "degradation.models.cifarnet",
    "ImageNetNet": "degradation.models.imagenet",
    "imagenet_net": "degradation.models.imagenet",
    "PreActNet": "degradation.models.preact",
    "preact_net": "degradation.models.preact",
    "ResponseRecorder": "degradation.models.response_hooks",
    "response_layers": "degradation.models.response_hooks",
    "count_macs": "degradation.models.complexity",
    "count_params": "degradation.models.complexity",
    "build_model": "degradation.models.build",
    "check_depth": "degradation.models.build",
    "input_shape": "degradation.models.build",
    "NETWORKS": "degradation.models.registry",
    "Network": "degradation.models.registry",
    "network": "degradation.models.registry",
    "network_of": "degradation.models.registry",
}
__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'degradation.models' has no attribute {name!r}")
    import importlib  # deferred: the networks load torch; a registry look-up does not need it

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
