"""degradation: plain vs residual networks at many depths, the CIFAR-10 study of He et al. (2015).

The notebook surface (stable; everything else is internal):

    import degradation as dg
    curves = dg.load_curves("results")        # long: run_id, arch, depth, ..., step, split, metric, value
    runs = dg.load_runs("results")            # one row per run: status, final errors, params, ...
    layers = dg.load_layers("results")        # gradient norm / update ratio per layer and logging window
    lesion = dg.load_lesion("results")        # test error with blocks removed (`degradation lesion`)
    responses = dg.load_responses("results")  # Figure 7's layer response stds (None before any are computed)
    net, cfg = dg.load_run("results/runs/<run_id>", device="cpu")  # final weights, eval mode, resolved config

The tables are the collected parquet files (`degradation collect`, `lesion`, `responses`); a missing one is a
one-line UsageError that names the command making it. `import degradation` itself stays cheap: the loaders
load pandas and torch on first use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__version__ = "0.1.0"

# name -> (module, attribute): resolved on first use by __getattr__, so the CLI's start-up pays nothing for them
_LAZY = {
    "load_curves": ("degradation.store.results", "load_curves"),
    "load_runs": ("degradation.store.results", "load_runs"),
    "load_layers": ("degradation.store.results", "load_layers"),
    "load_lesion": ("degradation.analysis.lesion", "load_lesion"),
    "load_responses": ("degradation.analysis.load", "load_responses"),
}
__all__ = [*_LAZY, "load_run", "__version__"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'degradation' has no attribute {name!r}")
    import importlib  # deferred: the loaders pull in pandas/torch; only a notebook that uses them pays

    module, attribute = _LAZY[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def load_run(run_dir: str | Path, device: str = "cpu") -> tuple[Any, Any]:
    """(the run's network with its final checkpoint's weights, in eval mode, on `device`; its resolved config)."""
    from degradation.analysis.trained import load_network  # deferred: torch loads on first use
    from degradation.errors import UsageError  # deferred: keeps `import degradation` free of everything else
    from degradation.store.runs import CHECKPOINT, CONFIG_FILE  # deferred: as above

    folder = Path(run_dir)
    for name in (CONFIG_FILE, CHECKPOINT):
        if not (folder / name).is_file():
            raise UsageError(f"{folder / name} does not exist; load_run needs a run folder with a checkpoint")
    model, cfg = load_network(folder)
    return model.to(device).eval(), cfg
