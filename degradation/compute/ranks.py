"""How one global batch divides among the ranks of a run (trainer.devices x trainer.num_nodes).

The one check of the rank contract's batch layout (ARCHITECTURE.md): the config check, the run and both
training streams ask it, so a layout is refused in the same words wherever it is first seen.
"""

from __future__ import annotations

from degradation.errors import UsageError


def split_batch(batch_size: int, ranks: int, layout: str = "") -> int:
    """The per-rank batch; a one-line UsageError when the global batch does not divide evenly. `layout` names
    where the rank count comes from (e.g. "trainer.devices=3 x trainer.num_nodes=1 = ")."""
    if ranks < 1:
        raise UsageError(f"{ranks} ranks: a run needs at least one")
    if batch_size % ranks:
        raise UsageError(
            f"schedule.batch_size={batch_size} does not divide among {layout}{ranks} ranks (each takes an equal "
            "slice of the global batch); choose a device count that divides it"
        )
    return batch_size // ranks
