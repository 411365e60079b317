"""The paper's ImageNet augmentation (section 3.4), as pure functions of an image and its drawn parameters.

Training: the shorter side resized to a size drawn uniformly from [scale_min, scale_max] (paper: 256-480), a
random crop x crop window (224), a random horizontal flip, AlexNet's PCA colour ("lighting") noise, then the
mean subtracted. Evaluation: the shorter side resized to eval_resize (256), the centre crop (Figure 4's bold
curves); at the end, 10-crop testing (four corners and the centre, and their mirror images; softmax averaged).

Every random number of an epoch is drawn at once from a generator seeded by (seed, epoch): the permutation and,
per position, the scale, the crop offsets (as fractions of the free range), the flip and the lighting weights.
A sample's augmentation is then a pure function of (seed, epoch, position), whatever process decodes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from degradation.data.stream import epoch_seed
from degradation.errors import UsageError

# AlexNet's PCA of ImageNet's RGB pixels (values in [0, 1]), as published with fb.resnet.torch and widely reused:
# eigenvalues and eigenvectors (columns) of the 3x3 covariance; the noise std is 0.1 (Krizhevsky et al. 2012).
EIGVAL = (0.2175, 0.0188, 0.0045)
EIGVEC = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)


@dataclass(frozen=True)
class AugmentSpec:
    """Sizes and switches of the augmentation (data.* keys); small values make CPU tests and smokes possible."""

    crop: int = 224
    scale_min: int = 256
    scale_max: int = 480
    eval_resize: int = 256
    flip: bool = True
    lighting: float = 0.1  # std of the PCA weights; 0 switches it off

    @property
    def largest_side(self) -> int:
        """The largest shorter side an image is resized to (training or evaluation): what the cap holds too."""
        return max(self.scale_max, self.eval_resize)

    @classmethod
    def from_cfg(cls, data_cfg: Any) -> AugmentSpec:
        """From a composed data config, which holds every key (conf/schema.py ImageData): no second set of defaults
        here to drift from conf/data/imagenet.yaml."""
        return cls(int(data_cfg["crop"]), int(data_cfg["scale_min"]), int(data_cfg["scale_max"]),
                   int(data_cfg["eval_resize"]), bool(data_cfg["flip"]), float(data_cfg["lighting"]))

    def check(self) -> None:
        if not (1 <= self.crop <= self.scale_min <= self.scale_max and self.crop <= self.eval_resize):
            raise UsageError(
                f"data.crop={self.crop}, scale_min={self.scale_min}, scale_max={self.scale_max}, eval_resize="
                f"{self.eval_resize}: need 1 <= crop <= scale_min <= scale_max and crop <= eval_resize "
                "(the paper: 224, 256, 480, 256)"
            )
        if self.lighting < 0:
            raise UsageError(f"data.lighting={self.lighting} must be >= 0 (the paper: 0.1; 0 switches it off)")


@dataclass
class EpochDraws:
    """One epoch's order and per-position augmentation parameters (CPU tensors, indexed by position)."""

    order: torch.Tensor  # int64 [N]
    scale: torch.Tensor  # int64 [N]: shorter side after the resize
    frac: torch.Tensor  # float64 [N, 2]: crop row/col offset as a fraction of the free range
    flip: torch.Tensor  # bool [N]
    alpha: torch.Tensor  # float32 [N, 3]: lighting weights


def draw_epoch(num_images: int, spec: AugmentSpec, seed: int, epoch: int) -> EpochDraws:
    gen = torch.Generator().manual_seed(epoch_seed(seed, epoch, "images"))
    order = torch.randperm(num_images, generator=gen)
    scale = torch.randint(spec.scale_min, spec.scale_max + 1, (num_images,), generator=gen)
    frac = torch.rand(num_images, 2, generator=gen, dtype=torch.float64)
    flip = torch.randint(0, 2, (num_images,), generator=gen).bool()
    alpha = torch.randn(num_images, 3, generator=gen) * spec.lighting
    if not spec.flip:
        flip.zero_()
    return EpochDraws(order, scale, frac, flip, alpha)


def resized_size(h: int, w: int, size: int) -> tuple[int, int]:
    """(H, W) of an h x w image with its shorter side resized to `size`, aspect ratio kept (what the header
    check holds to data.max_pixels before anything is decoded)."""
    if min(h, w) == size:
        return h, w
    return (size, max(size, round(w * size / h))) if h <= w else (max(size, round(h * size / w)), size)


def resize_shorter(image: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [3,H,W] with its shorter side resized to `size` (bilinear, antialiased), aspect ratio kept."""
    from torchvision.transforms.v2 import functional as TF

    h, w = image.shape[-2:]
    if min(h, w) == size:
        return image
    return TF.resize(image, list(resized_size(h, w, size)), antialias=True)


def train_view(image: torch.Tensor, spec: AugmentSpec, scale: int, frac: tuple[float, float], flip: bool
               ) -> torch.Tensor:
    """The training crop of one decoded image: resize, crop at the drawn offsets, maybe mirror; uint8 [3,c,c]."""
    resized = resize_shorter(image, int(scale))
    h, w = resized.shape[-2:]
    top = min(int(frac[0] * (h - spec.crop + 1)), h - spec.crop)
    left = min(int(frac[1] * (w - spec.crop + 1)), w - spec.crop)
    view = resized[:, top : top + spec.crop, left : left + spec.crop]
    return view.flip(-1) if flip else view


def resized_centre(image: torch.Tensor, shorter: int, crop: int) -> torch.Tensor:
    """The shorter side resized to `shorter`, then the centre crop x crop (evaluation; a CIFAR-recipe data.resize)."""
    resized = resize_shorter(image, shorter)
    h, w = resized.shape[-2:]
    top, left = (h - crop) // 2, (w - crop) // 2
    return resized[:, top : top + crop, left : left + crop]


def centre_view(image: torch.Tensor, spec: AugmentSpec) -> torch.Tensor:
    return resized_centre(image, spec.eval_resize, spec.crop)


def ten_views(image: torch.Tensor, spec: AugmentSpec) -> torch.Tensor:
    """[10,3,c,c]: the four corner crops and the centre crop of the eval-resized image, then their mirrors."""
    resized = resize_shorter(image, spec.eval_resize)
    h, w = resized.shape[-2:]
    c = spec.crop
    corners = [(0, 0), (0, w - c), (h - c, 0), (h - c, w - c), ((h - c) // 2, (w - c) // 2)]
    views = torch.stack([resized[:, t : t + c, s : s + c] for t, s in corners])
    return torch.cat((views, views.flip(-1)))


def lighting_shift(alpha: torch.Tensor) -> torch.Tensor:
    """[b,3] PCA weights -> [b,3] RGB shift (in [0,1] pixel units): eigvec @ (alpha * eigval)."""
    eigval = torch.tensor(EIGVAL, dtype=torch.float32, device=alpha.device)
    eigvec = torch.tensor(EIGVEC, dtype=torch.float32, device=alpha.device)
    return (alpha.float() * eigval) @ eigvec.T
