"""The tables' number: 10-crop top-1 and top-5 error on the validation set, from the final weights.

As in the paper's "standard 10-crop testing" (Krizhevsky et al.): the four corner crops and the centre crop of
the image resized to eval_resize on its shorter side, and their mirror images; the 10 softmax outputs are
averaged, and the averaged scores rank the classes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext

import torch
from torch import nn


@torch.no_grad()
def ten_crop_errors(
    model: nn.Module, views: Iterable[tuple[torch.Tensor, torch.Tensor]],
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
    context: Callable[[], AbstractContextManager] = nullcontext,
) -> dict[str, float | int | None]:
    """{"tencrop_top1_error", "tencrop_top5_error", "tencrop_images"}; views yields ([b*10,3,c,c], [b])."""
    forward = forward or model
    was_training = model.training
    model.eval()
    wrong1 = wrong5 = count = 0
    try:
        for x, y in views:
            with context():
                logits = forward(x)
            scores = logits.float().softmax(1).view(len(y), 10, -1).mean(1)
            top = scores.topk(min(5, scores.shape[1]), dim=1).indices
            wrong1 += int((top[:, 0] != y).sum())
            wrong5 += int((~(top == y[:, None]).any(1)).sum())
            count += len(y)
    finally:
        model.train(was_training)
    if not count:
        return {"tencrop_top1_error": None, "tencrop_top5_error": None, "tencrop_images": 0}
    return {"tencrop_top1_error": wrong1 / count, "tencrop_top5_error": wrong5 / count, "tencrop_images": count}
