"""Input normalisation, fitted on the training split actually used (45k under holdout, never the test set).

Pixels are scaled to [0, 1] first. `mean_image` (the paper's choice) subtracts the per-pixel mean image and
nothing else; `channel` subtracts a per-channel mean and divides by a per-channel standard deviation (the
population std over every pixel of the training split). Sums are taken in exact integer arithmetic, so the
statistics do not depend on chunking or summation order.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from degradation.errors import UsageError

MODES = ("mean_image", "channel")


@dataclass(frozen=True)
class Normalizer:
    """x_float = (x_uint8 / 255 - mean) * inv_std, with mean [3,32,32] and inv_std [3] (ones for mean_image)."""

    mode: str
    mean: torch.Tensor  # float32 [3, H, W], in [0, 1] units
    inv_std: torch.Tensor  # float32 [3]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Normalise uint8 [B,3,H,W] images (on any device) to float32."""
        mean = self.mean.to(images.device)
        scale = (self.inv_std / 255.0).to(images.device).view(1, -1, 1, 1)
        neg_mean = (-mean * self.inv_std.to(images.device).view(-1, 1, 1)).unsqueeze(0)
        return torch.addcmul(neg_mean, images.float(), scale)

    def state(self) -> dict:
        return {"mode": self.mode, "mean": self.mean.clone(), "inv_std": self.inv_std.clone()}


def _integer_sums(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel sum and per-channel sum of squares, exactly (int32 holds 8M images' sums; squares via counts)."""
    images = images.cpu()
    total = images.sum(dim=0, dtype=torch.int32).to(torch.int64)
    values = torch.arange(256, dtype=torch.int64)
    counts = [torch.bincount(images[:, ch].reshape(-1), minlength=256) for ch in range(images.shape[1])]
    squares = torch.stack([(count * values * values).sum() for count in counts])
    return total, squares


def fit_normalizer(train_images: torch.Tensor, mode: str = "mean_image") -> Normalizer:
    """Statistics of uint8 [N,3,H,W] training images; a UsageError for an unknown mode or an empty set."""
    if mode not in MODES:
        raise UsageError(f"data.normalize={mode!r}; choose mean_image or channel")
    if train_images.dtype != torch.uint8 or train_images.ndim != 4 or train_images.shape[0] == 0:
        got = f"{train_images.dtype} {tuple(train_images.shape)}"
        raise ValueError(f"expected uint8 [N,3,H,W] images with N > 0, got {got}")
    n = train_images.shape[0]
    total, squares = _integer_sums(train_images)
    pixel_mean = total.double() / (n * 255.0)  # [3,H,W]
    if mode == "mean_image":
        return Normalizer(mode, pixel_mean.float(), torch.ones(train_images.shape[1]))
    count = n * train_images.shape[2] * train_images.shape[3]
    channel_mean = total.double().sum(dim=(1, 2)) / count  # in 0..255 units
    variance = squares.double() / count - channel_mean**2
    std = variance.clamp_min(1e-12).sqrt() / 255.0
    mean = (channel_mean / 255.0).view(-1, 1, 1).expand_as(pixel_mean)
    return Normalizer(mode, mean.float().contiguous(), (1.0 / std).float())
