"""What build_data hands a run: its training stream and evaluation sets, for every kind of data set."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from degradation.data.normalize import Normalizer
from degradation.data.stream import StreamPosition


@dataclass
class DataBundle:
    """What a run trains and evaluates on. eval_sets: "test", plus "val" under data.split=holdout."""

    name: str
    train: StreamPosition  # BatchStream (in memory) or FileStream (image folders): the rank contract's stream
    eval_sets: dict[str, Any]  # EvalSet or FileEvalSet: len(), num_batches, shard(rank, world), batches
    train_size: int
    num_classes: int
    normalizer: Normalizer
    info: dict[str, Any] = field(default_factory=dict)
    ten_crop: Any = None  # image folders: the val set as 10-crop batches, for the final top-1/top-5 errors
