"""Captioning data: rendered shape scenes (default) and user data (Flickr8k / COCO formats).

Default data — scenes rendered with Pillow, deterministic given a seed
----------------------------------------------------------------------
Each scene holds 1–3 objects in distinct cells of a 3x3 layout. An object has a shape
(``SHAPES``), a colour (``COLOURS``), a size (small/large) and a position (its cell, with
jitter), drawn at 4x resolution and downsampled (anti-aliased) on a noisy dark background.

Captions come from a small grammar: objects are listed in reading order (top row first, left
to right) as ``a <size> <colour> <shape> <position>`` and joined with ``,``/``and``; each scene
has several phrasings (``TEMPLATES``): all of them are references for BLEU/CIDEr and exact
match, and training samples one per scene per epoch.

Splits (``make_splits``): ``train``, ``validation`` and ``test`` only use the (colour, shape)
pairs *not* in ``held_out_pairs``; ``test_unseen`` scenes each contain at least one object whose
(colour, shape) pair never appears in training — every colour and every shape is seen in
training, only the combinations are new (compositional generalization).

Scene ``i`` of a split is drawn from ``numpy.random.default_rng([seed, split_id, i])``, so a
scene does not depend on the split's size. This module is numpy + Pillow only (no TensorFlow).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (225, 45, 45),
    "green": (45, 185, 70),
    "blue": (55, 100, 240),
    "yellow": (235, 220, 50),
    "purple": (160, 70, 215),
    "orange": (250, 140, 30),
}
SHAPES = ("circle", "square", "triangle", "diamond", "cross")
SIZES = ("small", "large")
ROWS = ("top", "middle", "bottom")
COLUMNS = ("left", "center", "right")
POSITION_PHRASES = {
    ("top", "left"): "at the top left",
    ("top", "center"): "at the top",
    ("top", "right"): "at the top right",
    ("middle", "left"): "on the left",
    ("middle", "center"): "in the middle",
    ("middle", "right"): "on the right",
    ("bottom", "left"): "at the bottom left",
    ("bottom", "center"): "at the bottom",
    ("bottom", "right"): "at the bottom right",
}
# One phrasing per template; {objects} is the joined object list.
TEMPLATES = (
    "{objects}",
    "there is {objects}",
    "a picture of {objects}",
    "{objects_is}",
)
# (colour, shape) pairs never seen in training: one per shape, each colour at most once.
DEFAULT_HELD_OUT_PAIRS = (
    ("red", "circle"),
    ("green", "square"),
    ("blue", "triangle"),
    ("yellow", "diamond"),
    ("purple", "cross"),
)
SPLIT_IDS = {"train": 0, "validation": 1, "test": 2, "test_unseen": 3}
RENDER_SCALE = 4


@dataclass(frozen=True)
class SceneObject:
    shape: str
    colour: str
    size: str
    row: str
    column: str
    # Centre (fractions of the image side) and half-extent (fraction of the side).
    x: float
    y: float
    radius: float

    def phrase(self) -> str:
        return f"a {self.size} {self.colour} {self.shape} {POSITION_PHRASES[(self.row, self.column)]}"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Scene:
    objects: list[SceneObject]
    background: tuple[int, int, int]
    noise_seed: int

    def captions(self) -> list[str]:
        """Every phrasing of the scene (the references)."""
        ordered = sorted(self.objects, key=lambda o: (ROWS.index(o.row), COLUMNS.index(o.column)))
        phrases = [o.phrase() for o in ordered]
        with_is = [p.replace(f" {o.shape} ", f" {o.shape} is ", 1)
                   for p, o in zip(phrases, ordered, strict=True)]
        return [template.format(objects=_join(phrases), objects_is=_join(with_is))
                for template in TEMPLATES]

    def to_dict(self) -> dict[str, Any]:
        return {"objects": [o.to_dict() for o in self.objects],
                "background": list(self.background), "noise_seed": self.noise_seed}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scene:
        return cls([SceneObject(**o) for o in data["objects"]], tuple(data["background"]),
                   int(data["noise_seed"]))


def _join(phrases: Sequence[str]) -> str:
    if len(phrases) == 1:
        return phrases[0]
    return " , ".join(phrases[:-1]) + " and " + phrases[-1]


def allowed_pairs(held_out: Sequence[Sequence[str]]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(seen pairs, held-out pairs), validated."""
    held = []
    for pair in held_out:
        colour, shape = pair
        if colour not in COLOURS or shape not in SHAPES:
            from rnnkit.errors import UserError

            raise UserError(f"`held_out_pairs` entries must be (colour, shape) with colour in "
                            f"{list(COLOURS)} and shape in {list(SHAPES)}. Received: {pair!r}")
        held.append((colour, shape))
    seen = [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in held]
    return seen, held


def parse_pairs(text: str | Sequence[str]) -> list[tuple[str, str]]:
    """``"red-circle,green-square"`` (or a list of ``"red-circle"``) → pairs."""
    items = text.split(",") if isinstance(text, str) else list(text)
    pairs = []
    for item in items:
        item = str(item).strip()
        if not item:
            continue
        if "-" not in item:
            from rnnkit.errors import UserError

            raise UserError(f"`held_out_pairs` items are colour-shape. Received: {item!r}")
        colour, shape = item.split("-", 1)
        pairs.append((colour.strip(), shape.strip()))
    return pairs


def sample_scene(rng: np.random.Generator, pairs: Sequence[tuple[str, str]],
                 max_objects: int = 3, required_pairs: Sequence[tuple[str, str]] = ()) -> Scene:
    """One random scene; with ``required_pairs``, the first object uses one of them."""
    count = int(rng.integers(1, max_objects + 1))
    cells = rng.permutation(9)[:count]
    objects = []
    for index, cell in enumerate(cells):
        row, column = ROWS[cell // 3], COLUMNS[cell % 3]
        pool = required_pairs if (index == 0 and required_pairs) else pairs
        colour, shape = pool[int(rng.integers(len(pool)))]
        size = SIZES[int(rng.integers(2))]
        radius = (0.075 if size == "small" else 0.135) * float(rng.uniform(0.9, 1.1))
        # Cell centres at 1/6, 3/6, 5/6; jitter so the object stays inside its cell.
        slack = max(0.0, 1 / 6 - radius - 0.01)
        x = (cell % 3 * 2 + 1) / 6 + float(rng.uniform(-slack, slack))
        y = (cell // 3 * 2 + 1) / 6 + float(rng.uniform(-slack, slack))
        objects.append(SceneObject(shape, colour, size, row, column, x, y, radius))
    order = rng.permutation(len(objects))  # object 0 (a required pair) anywhere in the list
    objects = [objects[i] for i in order]
    background = tuple(int(v) for v in rng.integers(20, 70, size=3))
    return Scene(objects, background, int(rng.integers(2**31)))


def _polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]] | None:
    if shape == "square":
        s = r * 0.88
        return [(cx - s, cy - s), (cx + s, cy - s), (cx + s, cy + s), (cx - s, cy + s)]
    if shape == "triangle":
        return [(cx, cy - r), (cx + r * 0.95, cy + r * 0.8), (cx - r * 0.95, cy + r * 0.8)]
    if shape == "diamond":
        return [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)]
    if shape == "cross":
        a, b = r, r * 0.36
        return [(cx - b, cy - a), (cx + b, cy - a), (cx + b, cy - b), (cx + a, cy - b),
                (cx + a, cy + b), (cx + b, cy + b), (cx + b, cy + a), (cx - b, cy + a),
                (cx - b, cy + b), (cx - a, cy + b), (cx - a, cy - b), (cx - b, cy - b)]
    return None


def render_scene(scene: Scene, image_size: int = 64, noise: float = 6.0) -> np.ndarray:
    """Draw a scene → ``uint8 (image_size, image_size, 3)``."""
    from PIL import Image, ImageDraw

    side = image_size * RENDER_SCALE
    canvas = Image.new("RGB", (side, side), scene.background)
    draw = ImageDraw.Draw(canvas)
    rng = np.random.default_rng(scene.noise_seed)
    for obj in scene.objects:
        base = np.asarray(COLOURS[obj.colour], dtype=np.float64)
        colour = tuple(int(v) for v in np.clip(base + rng.uniform(-18, 18, size=3), 0, 255))
        cx, cy, r = obj.x * side, obj.y * side, obj.radius * side
        points = _polygon(obj.shape, cx, cy, r)
        if points is None:
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
        else:
            draw.polygon(points, fill=colour)
    image = canvas.resize((image_size, image_size), Image.Resampling.BOX)
    array = np.asarray(image, dtype=np.float32)
    if noise:
        array = array + rng.normal(0.0, noise, size=array.shape)
    return np.clip(np.rint(array), 0, 255).astype(np.uint8)


@dataclass
class CaptionSplit:
    """Images ``uint8 (N, H, W, 3)`` with references; ``scenes`` for rendered data."""

    images: np.ndarray
    references: list[list[str]]
    scenes: list[Scene] | None = None
    paths: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.references)

    def take(self, count: int) -> CaptionSplit:
        return CaptionSplit(self.images[:count], self.references[:count],
                            None if self.scenes is None else self.scenes[:count],
                            None if self.paths is None else self.paths[:count], dict(self.meta))


def make_scene_split(name: str, size: int, seed: int, image_size: int = 64,
                     held_out_pairs: Sequence[Sequence[str]] = DEFAULT_HELD_OUT_PAIRS,
                     max_objects: int = 3, noise: float = 6.0) -> CaptionSplit:
    """Render split ``name`` (``train``, ``validation``, ``test``, ``test_unseen``)."""
    if name not in SPLIT_IDS:
        raise ValueError(f"`name` must be one of {list(SPLIT_IDS)}. Received: name={name!r}")
    seen, held = allowed_pairs(held_out_pairs)
    if name == "test_unseen" and not held:
        from rnnkit.errors import UserError

        raise UserError("The test_unseen split needs at least one held-out pair "
                        "(`held_out_pairs` is empty)")
    scenes = []
    for index in range(int(size)):
        rng = np.random.default_rng([int(seed), SPLIT_IDS[name], index])
        if name == "test_unseen":
            scenes.append(sample_scene(rng, seen + held, max_objects, required_pairs=held))
        else:
            scenes.append(sample_scene(rng, seen, max_objects))
    images = np.zeros((len(scenes), image_size, image_size, 3), dtype=np.uint8)
    for index, scene in enumerate(scenes):
        images[index] = render_scene(scene, image_size, noise)
    return CaptionSplit(images, [s.captions() for s in scenes], scenes, None, {"split": name})


def make_scene_splits(config) -> dict[str, CaptionSplit]:
    """The four rendered splits of a config (``train_size`` ... ``test_size``)."""
    held = parse_pairs(config.held_out_pairs)
    options = dict(seed=config.seed, image_size=config.image_size, held_out_pairs=held,
                   max_objects=config.max_objects, noise=config.noise)
    return {
        "train": make_scene_split("train", config.train_size, **options),
        "validation": make_scene_split("validation", config.validation_size, **options),
        "test": make_scene_split("test", config.test_size, **options),
        "test_unseen": make_scene_split("test_unseen", config.test_size, **options),
    }


# ------------------------------------------------------------------------------ user data
def load_user_images(path: str | Path, config) -> CaptionSplit:
    """Every image of Flickr8k ``captions.txt`` / COCO JSON data with its references (what
    ``evaluate --data`` scores: no train/validation/test split)."""
    from rnnkit.data.images import load_image, read_caption_data
    from rnnkit.errors import UserError

    data = read_caption_data(path)
    if not len(data.images):
        raise UserError(f"No images with captions in {path}")
    images = np.stack([load_image(image, config.image_size, resize_mode=config.resize_mode)
                       for image in data.images])
    return CaptionSplit(images, list(data.captions), None, list(data.images),
                        {"split": "all", "source": str(path), "skipped": data.skipped})


def load_user_splits(path: str | Path, config) -> dict[str, CaptionSplit]:
    """Flickr8k ``captions.txt`` / COCO JSON data → train/validation/test splits (by a hash of
    the image file name: 80/10/10), images loaded with :func:`rnnkit.data.images.load_image`."""
    from rnnkit.data.images import load_image, read_caption_data
    from rnnkit.data.split import split_items
    from rnnkit.errors import UserError

    data = read_caption_data(path)
    parts = split_items(range(len(data.images)), lambda i: Path(data.images[i]).name)
    if not parts["train"]:
        raise UserError(f"No training images in {path}: {len(data)} images in all")
    for name in ("validation", "test"):
        if not parts[name]:
            parts[name] = parts["train"][-1:]
    splits = {}
    for name, indices in parts.items():
        if config.max_train_examples and name == "train":
            indices = indices[: config.max_train_examples]
        images = np.stack([load_image(data.images[i], config.image_size,
                                      resize_mode=config.resize_mode) for i in indices])
        splits[name] = CaptionSplit(images, [data.captions[i] for i in indices], None,
                                    [data.images[i] for i in indices],
                                    {"split": name, "source": str(path), "skipped": data.skipped})
    return splits
