"""Real-object scenes (``scenes=objects``): Noto Color Emoji objects on photo textures.

Each scene holds 1–3 objects drawn from :data:`OBJECTS` — single-code-point emoji whose names
are their Unicode character names (``unicodedata.name``, lowercased: U+1F408 is "cat", U+1F34E
"red apple") — rendered with the Noto Color Emoji font (Debian ``fonts-noto-color-emoji``), in
distinct cells of a 3x3 layout with jitter and a random size, on a background that is a
random crop of a tinted scikit-image texture (grass, gravel, brick; CC0, in
``backgrounds/``) or a plain colour.

Captions come from a small grammar with several phrasings per scene (all of them are
references; training samples one per scene per epoch):

* one object: ``a cat in the middle on grass``, ``there is a cat ...``, ``a cat on grass``;
  a fifth of the one-object scenes are close-ups (the object fills 60–95 % of the side, like a
  photo of one thing): ``a close up of a cat on grass``, ``a cat on grass``, ``there is ...``;
* two: ``a dog to the left of a red apple on grass``, the converse (``a red apple to the right
  of a dog ...``), ``a dog and a red apple ...``, and both absolute positions;
* three: the reading-order list with and without positions.

Splits: ``train``/``validation``/``test`` never hold an object of ``held_out_objects`` nor both
objects of a pair in ``held_out_object_pairs``; ``test_unseen`` scenes each contain a held-out
pair (both objects were seen in training, never together); ``test_new_objects`` scenes each
contain an object never seen in training (its name is not in the vocabulary: this split
measures how the rest of the caption holds up). Scene ``i`` of a split is drawn from
``numpy.random.default_rng([seed, split_id, i])``. numpy + Pillow only (no TensorFlow).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

FONT_PATHS = ("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
              "/usr/share/fonts/noto/NotoColorEmoji.ttf")
FONT_PACKAGE = "fonts-noto-color-emoji"
EMOJI_POINT_SIZE = 109  # the font's only bitmap strike
BACKGROUND_DIR = Path(__file__).resolve().parent / "backgrounds"
# background name -> (texture file or None, caption phrase, tint)
BACKGROUNDS = {
    "grass": ("grass.jpg", "on grass", (0.55, 0.95, 0.45)),
    "gravel": ("gravel.jpg", "on gravel", (0.95, 0.9, 0.8)),
    "brick": ("brick.jpg", "in front of a brick wall", (1.0, 0.6, 0.5)),
    "plain": (None, "", None),
}
# Code points of everyday objects (singular names); each caption name is the character's
# Unicode name.
OBJECT_CODEPOINTS = (
    # animals
    0x1F408, 0x1F415, 0x1F407, 0x1F401, 0x1F404, 0x1F416, 0x1F40E, 0x1F411, 0x1F410, 0x1F412,
    0x1F414, 0x1F427, 0x1F418, 0x1F405, 0x1F406, 0x1F428, 0x1F40B, 0x1F42C, 0x1F41F, 0x1F419,
    0x1F422, 0x1F40C, 0x1F40D, 0x1F40A, 0x1F426, 0x1F989, 0x1F986, 0x1F985, 0x1F98B, 0x1F41D,
    0x1F41E, 0x1F577, 0x1F980, 0x1F988, 0x1F998, 0x1F994, 0x1F9A9, 0x1F99C, 0x1F9A2, 0x1F98C,
    # food
    0x1F34E, 0x1F34F, 0x1F34C, 0x1F350, 0x1F351, 0x1F353, 0x1F349, 0x1F34B,
    0x1F34D, 0x1F345, 0x1F955, 0x1F966, 0x1F954, 0x1F344, 0x1F354, 0x1F35E, 0x1F369, 0x1F36A,
    0x1F368, 0x1F382, 0x1F950, 0x1F951, 0x1F95A, 0x1F9C0, 0x1F968, 0x1F96A, 0x1F37F, 0x1F36D,
    # plants
    0x1F335, 0x1F33B, 0x1F339, 0x1F337, 0x1F334, 0x1F332, 0x1F341,
    # things
    0x1F388, 0x1F381, 0x1F3B8, 0x1F3BB, 0x1F3BA, 0x1F3A4, 0x1F3A9, 0x1F451, 0x1F454,
    0x1F455, 0x1F457, 0x1F45C, 0x1F511, 0x1F512, 0x1F514, 0x1F528, 0x1F527, 0x1F4F7, 0x1F4FA,
    0x1F4FB, 0x1F4F1, 0x1F4BB, 0x270F, 0x2709, 0x1F56F, 0x1F9F8, 0x26BD, 0x26BE,
    0x1F3C6, 0x1F3B2, 0x2693, 0x2615, 0x1F377, 0x1F944, 0x1F9FA, 0x2603,
    # vehicles
    0x1F6B2, 0x1F68C, 0x1F695, 0x1F697, 0x1F691, 0x1F692, 0x1F693, 0x1F69C, 0x1F686, 0x1F6A2,
    0x26F5, 0x2708, 0x1F681, 0x1F680, 0x1F6F4, 0x1F6F9, 0x1F6F6,
)
DEFAULT_HELD_OUT_OBJECTS = "owl,lemon,guitar,tulip,taxi,teddy bear"
DEFAULT_HELD_OUT_OBJECT_PAIRS = ("cat+dog,red apple+banana,horse+bicycle,fish+ship,"
                                 "cow+tractor,bird+airplane,hamburger+hot beverage,"
                                 "rabbit+carrot,penguin+snowman,monkey+banana")
CLOSE_UP = 0.2  # share of scenes that are one object filling most of the image
CLOSE_UP_SCALE = 0.5
SPLIT_IDS = {"train": 0, "validation": 1, "test": 2, "test_unseen": 3, "test_new_objects": 4}
ROWS = ("top", "middle", "bottom")
COLUMNS = ("left", "center", "right")
POSITION_PHRASES = {
    ("top", "left"): "at the top left", ("top", "center"): "at the top",
    ("top", "right"): "at the top right", ("middle", "left"): "on the left",
    ("middle", "center"): "in the middle", ("middle", "right"): "on the right",
    ("bottom", "left"): "at the bottom left", ("bottom", "center"): "at the bottom",
    ("bottom", "right"): "at the bottom right",
}


def object_name(codepoint: int) -> str:
    """The caption name of an emoji: its Unicode character name, lowercased."""
    return unicodedata.name(chr(codepoint)).lower()


OBJECTS: dict[str, int] = {object_name(cp): cp for cp in OBJECT_CODEPOINTS}


def article(name: str) -> str:
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


def font_path() -> str:
    for path in FONT_PATHS:
        if Path(path).is_file():
            return path
    from rnnkit.errors import UserError

    raise UserError(f"`scenes=objects` needs the Noto Color Emoji font ({FONT_PACKAGE}: "
                    f"apt-get install {FONT_PACKAGE}); looked in {list(FONT_PATHS)}")


def parse_objects(text: str) -> list[str]:
    names = [n.strip() for n in str(text).split(",") if n.strip()]
    for name in names:
        if name not in OBJECTS:
            from rnnkit.errors import UserError

            raise UserError(f"`held_out_objects`: unknown object {name!r}; objects are "
                            f"{sorted(OBJECTS)}")
    return names


def parse_object_pairs(text: str) -> list[frozenset[str]]:
    pairs = []
    for item in str(text).split(","):
        item = item.strip()
        if not item:
            continue
        parts = [p.strip() for p in item.split("+")]
        if len(parts) != 2 or parts[0] == parts[1] or any(p not in OBJECTS for p in parts):
            from rnnkit.errors import UserError

            raise UserError("`held_out_object_pairs` items are two different objects joined by "
                            f"'+' (e.g. 'cat+dog'), objects from {sorted(OBJECTS)}. "
                            f"Received: {item!r}")
        pairs.append(frozenset(parts))
    return pairs


@dataclass(frozen=True)
class PlacedObject:
    name: str
    row: str
    column: str
    x: float  # centre, fraction of the side
    y: float
    scale: float  # glyph height, fraction of the side

    def phrase(self) -> str:
        return f"{article(self.name)} {POSITION_PHRASES[(self.row, self.column)]}"


@dataclass
class ObjectScene:
    objects: list[PlacedObject]
    background: str
    tint: tuple[float, float, float]
    crop: tuple[float, float]
    noise_seed: int

    def ordered(self) -> list[PlacedObject]:
        return sorted(self.objects, key=lambda o: (ROWS.index(o.row), COLUMNS.index(o.column)))

    def captions(self) -> list[str]:
        """Every phrasing of the scene (the references)."""
        where = BACKGROUNDS[self.background][1]
        suffix = f" {where}" if where else ""
        objs = self.ordered()
        names = [article(o.name) for o in objs]
        if len(objs) == 1 and objs[0].scale >= CLOSE_UP_SCALE:
            bodies = [f"a close up of {names[0]}", names[0], f"there is {names[0]}"]
        elif len(objs) == 1:
            bodies = [objs[0].phrase(), f"there is {objs[0].phrase()}", names[0]]
        elif len(objs) == 2:
            a, b = objs
            bodies = [f"{article(a.name)} {relation(a, b)} {article(b.name)}",
                      f"{article(b.name)} {relation(b, a)} {article(a.name)}",
                      f"{names[0]} and {names[1]}",
                      f"{a.phrase()} and {b.phrase()}"]
        else:
            bodies = [_join(names), _join([o.phrase() for o in objs]),
                      f"there is {_join(names)}"]
        return [body + suffix for body in bodies]

    def to_dict(self) -> dict[str, Any]:
        return {"objects": [dict(o.__dict__) for o in self.objects],
                "background": self.background}


def relation(a: PlacedObject, b: PlacedObject) -> str:
    """Where ``a`` is relative to ``b``: by column when they differ, else by row."""
    ca, cb = COLUMNS.index(a.column), COLUMNS.index(b.column)
    if ca != cb:
        return "to the left of" if ca < cb else "to the right of"
    return "above" if ROWS.index(a.row) < ROWS.index(b.row) else "below"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else " , ".join(parts[:-1]) + " and " + parts[-1]


def _allowed(names: list[str], held_pairs: list[frozenset[str]]) -> bool:
    return not any(pair <= set(names) for pair in held_pairs)


def sample_object_scene(rng: np.random.Generator, split: str, objects: list[str],
                        held_objects: list[str], held_pairs: list[frozenset[str]],
                        max_objects: int = 3) -> ObjectScene:
    seen = [o for o in objects if o not in held_objects]
    count = int(rng.integers(1, max_objects + 1))
    if split == "test_unseen":
        count = max(count, 2)
    names: list[str] = []
    for _ in range(100):
        if split == "test_unseen":
            pair = sorted(held_pairs[int(rng.integers(len(held_pairs)))])
            extra = [seen[int(i)] for i in rng.choice(len(seen), count - 2, replace=False)]
            names = pair + [e for e in extra if e not in pair][:count - 2]
            if len(names) == count:
                break
        elif split == "test_new_objects":
            new = held_objects[int(rng.integers(len(held_objects)))]
            others = [seen[int(i)] for i in rng.choice(len(seen), count - 1, replace=False)]
            names = [new] + others
            if _allowed(names, held_pairs):
                break
        else:
            names = [seen[int(i)] for i in rng.choice(len(seen), count, replace=False)]
            if _allowed(names, held_pairs):
                break
    else:  # pragma: no cover - 100 draws of few pairs among ~130 objects
        raise RuntimeError("could not draw a scene that respects the held-out pairs")
    cells = rng.permutation(9)[:len(names)]
    placed = []
    if len(names) == 1 and rng.uniform() < CLOSE_UP:  # like a photo of one thing
        scale = float(rng.uniform(0.6, 0.95))
        x, y = (0.5 + float(rng.uniform(-0.05, 0.05)) for _ in range(2))
        placed.append(PlacedObject(names[0], "middle", "center", x, y, scale))
        cells = []
    for name, cell in zip(names[len(placed):], cells, strict=True):
        scale = float(rng.uniform(0.17, 0.3))
        slack = max(0.0, 1 / 6 - scale / 2 + 0.03)
        x = (cell % 3 * 2 + 1) / 6 + float(rng.uniform(-slack, slack))
        y = (cell // 3 * 2 + 1) / 6 + float(rng.uniform(-slack, slack))
        placed.append(PlacedObject(name, ROWS[cell // 3], COLUMNS[cell % 3], x, y, scale))
    order = rng.permutation(len(placed))
    background = list(BACKGROUNDS)[int(rng.integers(len(BACKGROUNDS)))]
    tint = tuple(float(v) for v in rng.uniform(0.75, 1.15, size=3))
    crop = (float(rng.uniform()), float(rng.uniform()))
    return ObjectScene([placed[i] for i in order], background, tint, crop,
                       int(rng.integers(2**31)))


@cache
def _glyph(name: str):
    """The emoji of ``name`` as an RGBA image cropped to its content (cached)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(font_path(), EMOJI_POINT_SIZE)
    canvas = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((8, 8), chr(OBJECTS[name]), font=font, embedded_color=True)
    box = canvas.getbbox()
    if box is None:
        from rnnkit.errors import UserError

        raise UserError(f"the emoji font at {font_path()} has no glyph for {name!r}")
    return canvas.crop(box)


@cache
def _texture(file: str):
    from PIL import Image

    return np.asarray(Image.open(BACKGROUND_DIR / file).convert("L"), dtype=np.float32)


def render_object_scene(scene: ObjectScene, image_size: int = 160, noise: float = 4.0) -> np.ndarray:
    """Draw a scene → ``uint8 (image_size, image_size, 3)``."""
    from PIL import Image

    rng = np.random.default_rng(scene.noise_seed)
    file, _, base_tint = BACKGROUNDS[scene.background]
    if file is None:
        colour = rng.uniform(40, 230, size=3)
        array = np.broadcast_to(colour, (image_size, image_size, 3)).astype(np.float32)
    else:
        texture = _texture(file)
        side = int(min(texture.shape) * 0.75)
        top = int(scene.crop[0] * (texture.shape[0] - side))
        left = int(scene.crop[1] * (texture.shape[1] - side))
        patch = Image.fromarray(texture[top:top + side, left:left + side].astype(np.uint8))
        gray = np.asarray(patch.resize((image_size, image_size), Image.Resampling.BILINEAR),
                          np.float32)
        tint = np.asarray(base_tint) * np.asarray(scene.tint)
        array = gray[..., None] * tint[None, None, :]
    canvas = Image.fromarray(np.clip(array, 0, 255).astype(np.uint8)).convert("RGBA")
    for obj in scene.objects:
        glyph = _glyph(obj.name)
        height = max(4, int(round(obj.scale * image_size)))
        width = max(4, int(round(glyph.width * height / glyph.height)))
        if width > image_size:  # a wide glyph in a close-up
            width, height = image_size, max(4, int(round(glyph.height * image_size / glyph.width)))
        sprite = glyph.resize((width, height), Image.Resampling.LANCZOS)
        left = int(round(obj.x * image_size - width / 2))
        top = int(round(obj.y * image_size - height / 2))
        canvas.alpha_composite(sprite, (min(max(left, 0), image_size - width),
                                        min(max(top, 0), image_size - height)))
    out = np.asarray(canvas.convert("RGB"), dtype=np.float32)
    if noise:
        out = out + rng.normal(0.0, noise, size=out.shape)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def make_object_split(name: str, size: int, seed: int, image_size: int = 160,
                      held_out_objects: str = DEFAULT_HELD_OUT_OBJECTS,
                      held_out_object_pairs: str = DEFAULT_HELD_OUT_OBJECT_PAIRS,
                      max_objects: int = 3, noise: float = 4.0):
    """Render split ``name`` (``train``, ``validation``, ``test``, ``test_unseen``,
    ``test_new_objects``) → :class:`apps.captioning.data.CaptionSplit`."""
    from apps.captioning.data import CaptionSplit

    if name not in SPLIT_IDS:
        raise ValueError(f"`name` must be one of {list(SPLIT_IDS)}. Received: name={name!r}")
    held_objects = parse_objects(held_out_objects)
    held_pairs = parse_object_pairs(held_out_object_pairs)
    if any(pair & set(held_objects) for pair in held_pairs):
        from rnnkit.errors import UserError

        raise UserError("`held_out_object_pairs` must not use `held_out_objects` (those are "
                        f"never in training). Received: pairs {held_out_object_pairs!r}, "
                        f"objects {held_out_objects!r}")
    if name == "test_unseen" and not held_pairs:
        from rnnkit.errors import UserError

        raise UserError("The test_unseen split needs `held_out_object_pairs`")
    if name == "test_new_objects" and not held_objects:
        from rnnkit.errors import UserError

        raise UserError("The test_new_objects split needs `held_out_objects`")
    font_path()
    objects = sorted(OBJECTS)
    scenes = [sample_object_scene(np.random.default_rng([int(seed), SPLIT_IDS[name], i]), name,
                                  objects, held_objects, held_pairs, max_objects)
              for i in range(int(size))]
    images = np.zeros((len(scenes), image_size, image_size, 3), dtype=np.uint8)
    for index, scene in enumerate(scenes):
        images[index] = render_object_scene(scene, image_size, noise)
    return CaptionSplit(images, [s.captions() for s in scenes], scenes, None,
                        {"split": name, "scenes": "objects"})
