"""A procedurally generated, CIFAR-shaped data set for the offline demo and the tests. It is NOT CIFAR-10.

The class of an image is the kind of one shape (disk, ring, square, square frame, triangle, plus, bar, two
dots, five-pointed star, crescent) drawn with soft edges at a random position, size, rotation and colour over
a smooth random colour field, plus pixel noise. Colour, position, size and background carry no label
information, so a network has to learn shapes from edges and their arrangement. Each colour channel of a shape
is at least MIN_CONTRAST away from mid-grey, so every shape is visible: the demo's few hundred iterations are
spent on learning shapes, not on images that carry no signal (issue 15, point 5). Every
shape is mirror-symmetric up to a rotation, so the horizontal-flip augmentation never changes a label.

The set is a pure function of (sizes, num_classes, seed), drawn with batched tensor arithmetic (10k images
in about a second on a CPU); no file is read or written.
"""

from __future__ import annotations

import math

import torch

from degradation.errors import UsageError

SIZE = 32
NUM_SHAPES = 10
_CHUNK = 2048
BACKGROUND_CONTRAST = 0.15  # of the smooth random colour field around mid-grey
NOISE = 0.02  # std of the per-pixel Gaussian noise, in [0, 1] units
MIN_CONTRAST = 0.25  # of each channel of a shape's colour from mid-grey
SHAPE_SIZE = (8.0, 12.0)  # radius range in pixels of the unit shapes


def _tri(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    sides = [u * math.cos(a) + v * math.sin(a) for a in (0.0, 2 * math.pi / 3, 4 * math.pi / 3)]
    return torch.maximum(torch.maximum(sides[0], sides[1]), sides[2]) - 0.5


def _plus(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    au, av = u.abs(), v.abs()
    return torch.minimum(torch.maximum(au - 1.0, av - 0.28), torch.maximum(av - 1.0, au - 0.28))


# Signed distance-like functions (< 0 inside) of the ten shapes in their own unit frame. All are symmetric
# under a horizontal flip up to a rotation, so flip augmentation never turns one class into another.
_SHAPES = (
    lambda u, v: torch.hypot(u, v) - 0.95,  # disk
    lambda u, v: (torch.hypot(u, v) - 0.72).abs() - 0.26,  # ring
    lambda u, v: torch.maximum(u.abs(), v.abs()) - 0.8,  # square
    lambda u, v: (torch.maximum(u.abs(), v.abs()) - 0.72).abs() - 0.2,  # square frame
    _tri,  # triangle
    _plus,  # plus
    lambda u, v: torch.maximum(u.abs() - 1.1, v.abs() - 0.3),  # bar
    lambda u, v: torch.minimum(torch.hypot(u - 0.6, v), torch.hypot(u + 0.6, v)) - 0.38,  # two dots
    lambda u, v: torch.hypot(u, v) - (0.62 + 0.38 * torch.cos(5 * torch.atan2(v, u))),  # star
    lambda u, v: torch.maximum(torch.hypot(u, v) - 1.0, 0.75 - torch.hypot(u - 0.5, v)),  # crescent
)


def _shape_distance(kind: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The distance of each image's own shape, evaluated only on the images of that shape."""
    out = torch.empty_like(u)
    for k, shape in enumerate(_SHAPES):
        chosen = kind == k
        if chosen.any():
            out[chosen] = shape(u[chosen], v[chosen])
    return out


def _draw_shapes(canvas: torch.Tensor, kind: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Alpha-blend one shape per image onto canvas [n,3,H,W] (float, 0..1) at a random place, size, angle, colour."""
    n = canvas.shape[0]
    grid = torch.arange(SIZE, dtype=torch.float32) + 0.5
    cy, cx = (torch.rand(2, n, 1, 1, generator=gen) * 16 + 8).unbind(0)
    radius = torch.empty(n, 1, 1).uniform_(*SHAPE_SIZE, generator=gen)
    angle = torch.rand(n, 1, 1, generator=gen) * (2 * math.pi)
    dy, dx = grid.view(1, -1, 1) - cy, grid.view(1, 1, -1) - cx
    u = (dx * torch.cos(angle) + dy * torch.sin(angle)) / radius
    v = (-dx * torch.sin(angle) + dy * torch.cos(angle)) / radius
    alpha = torch.sigmoid(-_shape_distance(kind, u, v) * radius / 0.6).unsqueeze(1)  # about 1 px soft edge
    # each channel at least MIN_CONTRAST above or below mid-grey, so the shape is always visible
    sign = torch.randint(0, 2, (n, 3, 1, 1), generator=gen) * 2 - 1
    colour = 0.5 + sign * (MIN_CONTRAST + torch.rand(n, 3, 1, 1, generator=gen) * (0.5 - MIN_CONTRAST))
    return canvas * (1 - alpha) + colour * alpha


def _upsampler(cells: int) -> torch.Tensor:
    """[SIZE, cells] matrix of bicubic interpolation: a smooth background is upsampler @ noise @ upsampler.T."""
    basis = torch.eye(cells).view(cells, 1, cells, 1)
    return torch.nn.functional.interpolate(basis, size=(SIZE, 1), mode="bicubic", align_corners=False)[:, 0, :, 0].T


def _chunk(labels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """uint8 images of the given labels: smooth colour field, one shape, noise."""
    n = labels.shape[0]
    upsample = _upsampler(4)
    background = torch.einsum("hi,ncij,wj->nchw", upsample, torch.rand(n, 3, 4, 4, generator=gen), upsample)
    background = 0.5 + (background - 0.5) * BACKGROUND_CONTRAST
    image = _draw_shapes(background, labels, gen)
    image = image + torch.randn(image.shape, generator=gen) * NOISE
    return (image.clamp(0, 1) * 255).round().to(torch.uint8)


def _make_split(count: int, num_classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(count) % num_classes  # balanced
    labels = labels[torch.randperm(count, generator=gen)]
    images = torch.empty(count, 3, SIZE, SIZE, dtype=torch.uint8)
    for start in range(0, count, _CHUNK):
        images[start : start + _CHUNK] = _chunk(labels[start : start + _CHUNK], gen)
    return images, labels.to(torch.int64)


def make_synthetic(train_size: int, test_size: int, num_classes: int = 10, seed: int = 0) -> dict[str, torch.Tensor]:
    """{"train_x": uint8 [N,3,32,32], "train_y": int64 [N], "test_x", "test_y"}, a pure function of its arguments."""
    for key, value in (("train_size", train_size), ("test_size", test_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"data.{key}={value!r} must be a whole number >= 1")
    if not 2 <= num_classes <= NUM_SHAPES:
        raise UsageError(f"data.num_classes={num_classes} for synthetic data must be between 2 and {NUM_SHAPES}")
    train_x, train_y = _make_split(train_size, num_classes, 2 * int(seed))
    test_x, test_y = _make_split(test_size, num_classes, 2 * int(seed) + 1)
    return {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y}
