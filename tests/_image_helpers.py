"""A generated JPEG folder: various sizes, grayscale, CMYK and a PNG named .JPEG, as in the real ILSVRC-2012."""

from __future__ import annotations

import random
from pathlib import Path

WNIDS = ("n01440764", "n01443537", "n01484850")
# Overrides that make an ImageNet net train on the generated folder in seconds on a CPU.
SMALL = ["data.recipe=imagenet", "data.crop=16", "data.scale_min=18", "data.scale_max=24", "data.eval_resize=18",
         "data.workers=0", "data.mean_samples=20", "data.eval_batch_size=10"]


def _image(rng: random.Random, label: int, size: tuple[int, int], mode: str):
    from PIL import Image, ImageDraw

    colour = [(200, 40, 40), (40, 200, 40), (40, 40, 200)][label % 3]
    image = Image.new("RGB", size, tuple(rng.randrange(60) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    w, h = size
    x, y = rng.randrange(w // 2), rng.randrange(h // 2)
    draw.rectangle((x, y, x + w // 2, y + h // 2), fill=colour)
    return image.convert(mode)


def make_folder(root: Path, *, classes: tuple[str, ...] = WNIDS, per_class: int = 6, val_per_class: int = 2,
                val: bool = True, seed: int = 0) -> Path:
    """root/train/<class>/*.JPEG (+ root/val/<class>/*.JPEG); returns root. Every odd file kind is present."""
    rng = random.Random(seed)
    splits = [("train", per_class)] + ([("val", val_per_class)] if val else [])
    for split, count in splits:
        for label, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                size = (rng.randrange(20, 48), rng.randrange(20, 48))
                kind = i % 4 if split == "train" else 0
                path = folder / f"{name}_{split}_{i}.JPEG"
                if kind == 1:
                    _image(rng, label, size, "L").save(path, "JPEG")
                elif kind == 2:
                    _image(rng, label, size, "CMYK").save(path, "JPEG")
                elif kind == 3:
                    _image(rng, label, size, "RGB").save(path, "PNG")  # a PNG named .JPEG
                else:
                    _image(rng, label, size, "RGB").save(path, "JPEG", quality=90)
    return root
