"""Image input: one loader that every image goes through, and caption-data readers.

This module is numpy + Pillow only: it never imports TensorFlow, so the TF-free runtime
captioner preprocesses images with exactly the code used in training.

- :func:`load_image` opens a file path, bytes, a binary file object or a ``PIL.Image`` of any
  size and mode (RGB, RGBA and LA — composited on a background —, palette with or without
  transparency, grayscale 8/16/32-bit, float, CMYK, YCbCr...), applies the EXIF orientation,
  and returns ``uint8 (height, width, 3)`` RGB at the requested size. Bad images raise a
  :class:`~rnnkit.errors.UserError` that names the file: missing file, not an image,
  truncated/corrupt data, an empty (0-pixel) image, or an image larger than ``max_pixels``
  (decompression-bomb guard; the size is read from the header, before decoding).
- :func:`read_captions_txt`: Flickr8k-style ``captions.txt`` (CSV ``image,caption`` with a
  header; several lines per image) or the original ``Flickr8k.token.txt``
  (``image#N<TAB>caption``), with the images in ``image_dir`` (default: ``Images/``,
  ``images/``, ``Flicker8k_Dataset/`` beside the file, or the file's folder).
- :func:`read_coco_captions`: COCO captions JSON (``images`` with ``id``/``file_name``,
  ``annotations`` with ``image_id``/``caption``).
- :func:`read_caption_data` picks the reader from a path (a file, or a folder holding
  ``captions.txt`` / ``*.token.txt`` / one ``*.json``).

Readers return a :class:`CaptionData` (image paths, several references each) and never open
the images; rows without a caption or whose image file is missing are counted in
``CaptionData.skipped`` by reason.
"""

from __future__ import annotations

import csv
import io
import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.errors import UserError

# Largest image (width * height) the loader decodes: 64 megapixels (a 8000x8000 photo).
DEFAULT_MAX_PIXELS = 64_000_000
RESIZE_MODES = ("stretch", "pad", "crop")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")


def _describe(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return repr(str(source))
    if isinstance(source, (bytes, bytearray)):
        return f"<{len(source)} bytes>"
    return f"<{type(source).__name__}>"


def _open(source: Any):
    """A lazily-decoded ``PIL.Image`` from a path, bytes, file object or image."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(source, Image.Image):
        return source
    name = _describe(source)
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(bytes(source))
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise UserError(f"Image file not found: {name}")
        if path.stat().st_size == 0:
            raise UserError(f"Image {name} is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(source)
    except UnidentifiedImageError:
        raise UserError(
            f"{name} is not an image Pillow can read (supported: PNG, JPEG, BMP, GIF, WebP, "
            "TIFF, PPM...)"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise UserError(f"Image {name} is too large to decode safely: {error}") from None
    except OSError as error:
        raise UserError(f"Image {name} is truncated or corrupt: {error}") from None


def _to_rgb(image, background: tuple[int, int, int]):
    """Any Pillow mode → RGB (alpha composited on ``background``)."""
    from PIL import Image

    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        # High bit-depth grayscale: rescale to 0..255 by the type's range (PIL's convert
        # would clip 16-bit values at 255).
        array = np.asarray(image, dtype=np.float64)
        top = 1.0 if mode == "F" and array.size and array.max() <= 1.0 else (
            65535.0 if mode.startswith("I;16") or (array.size and array.max() > 255) else 255.0)
        if mode == "I" and array.size and array.max() > 65535:
            top = float(array.max())
        gray = np.clip(np.rint(array / top * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(np.repeat(gray[..., None], 3, axis=-1), "RGB")
    if mode in ("RGBA", "LA", "La", "RGBa", "PA") or (
            mode in ("RGB", "L") and "transparency" in image.info):
        rgba = image.convert("RGBA")
        base = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(base, rgba).convert("RGB")
    if mode == "1":
        return image.convert("L").convert("RGB")
    if mode != "RGB":
        return image.convert("RGB")
    return image


def _resize(image, size: tuple[int, int], mode: str, background: tuple[int, int, int]):
    from PIL import Image

    width, height = size
    if image.size == (width, height):
        return image
    resample = Image.Resampling.BILINEAR
    if mode == "stretch":
        return image.resize((width, height), resample, reducing_gap=None)
    scale_w, scale_h = width / image.width, height / image.height
    if mode == "pad":
        scale = min(scale_w, scale_h)
        new = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        resized = image.resize(new, resample, reducing_gap=None)
        canvas = Image.new("RGB", (width, height), background)
        canvas.paste(resized, ((width - new[0]) // 2, (height - new[1]) // 2))
        return canvas
    # crop: scale to cover, then cut the centre.
    scale = max(scale_w, scale_h)
    new = (max(width, round(image.width * scale)), max(height, round(image.height * scale)))
    resized = image.resize(new, resample, reducing_gap=None)
    left, top = (new[0] - width) // 2, (new[1] - height) // 2
    return resized.crop((left, top, left + width, top + height))


def load_image(
    source: Any,
    size: int | Sequence[int] = 64,
    *,
    resize_mode: str = "stretch",
    background: Sequence[int] = (255, 255, 255),
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Read one image as ``uint8 (height, width, 3)`` RGB.

    Args:
        source: a path, ``bytes``, a binary file object or a ``PIL.Image``.
        size: output ``side`` or ``(height, width)``.
        resize_mode: ``"stretch"`` (ignore the aspect ratio), ``"pad"`` (fit inside, pad with
            ``background``) or ``"crop"`` (cover, cut the centre).
        background: RGB that transparent pixels are composited on (and the padding colour).
        max_pixels: refuse images with more pixels than this (read from the header, before
            decoding).

    Raises:
        UserError: the file is missing, empty, not an image, truncated or corrupt, has 0 pixels,
            or has more than ``max_pixels`` pixels.
    """
    from PIL import Image, ImageOps

    height, width = (int(size), int(size)) if np.isscalar(size) else (int(size[0]), int(size[1]))
    if height < 1 or width < 1:
        raise ValueError(f"`size` must be positive. Received: size={size!r}")
    if resize_mode not in RESIZE_MODES:
        raise ValueError(
            f"`resize_mode` must be one of {RESIZE_MODES}. Received: resize_mode={resize_mode!r}"
        )
    background = tuple(int(c) for c in background)
    name = _describe(source)
    image = _open(source)
    image_width, image_height = image.size
    if image_width < 1 or image_height < 1:
        raise UserError(f"Image {name} has no pixels (size {image_width}x{image_height})")
    if image_width * image_height > max_pixels:
        raise UserError(
            f"Image {name} is too large: {image_width}x{image_height} = "
            f"{image_width * image_height} pixels; the limit is max_pixels={max_pixels}"
        )
    try:
        image.load()
        image = ImageOps.exif_transpose(image)
        image = _to_rgb(image, background)
        image = _resize(image, (width, height), resize_mode, background)
        array = np.asarray(image, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as error:
        raise UserError(f"Image {name} is truncated or corrupt: {error}") from None
    except Image.DecompressionBombError as error:  # pragma: no cover - checked above
        raise UserError(f"Image {name} is too large to decode safely: {error}") from None
    if array.shape != (height, width, 3):  # pragma: no cover - defensive
        raise UserError(f"Image {name} decoded to shape {array.shape}, expected ({height}, {width}, 3)")
    return array


def load_images(sources: Sequence[Any], size: int | Sequence[int] = 64, **options) -> np.ndarray:
    """:func:`load_image` over many sources → ``uint8 (N, height, width, 3)``."""
    height, width = (int(size), int(size)) if np.isscalar(size) else (int(size[0]), int(size[1]))
    out = np.zeros((len(sources), height, width, 3), dtype=np.uint8)
    for index, source in enumerate(sources):
        out[index] = load_image(source, (height, width), **options)
    return out


# ----------------------------------------------------------------------------- caption data
@dataclass
class CaptionData:
    """Images with their reference captions (``captions[i]`` belong to ``images[i]``)."""

    images: list[str] = field(default_factory=list)
    captions: list[list[str]] = field(default_factory=list)
    source: str = ""
    skipped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, indices: Sequence[int]) -> CaptionData:
        return CaptionData([self.images[i] for i in indices],
                           [list(self.captions[i]) for i in indices], self.source)


def _skip(data: CaptionData, reason: str) -> None:
    data.skipped[reason] = data.skipped.get(reason, 0) + 1


def _group(pairs: list[tuple[str, str]], image_dir: Path, source: str) -> CaptionData:
    data = CaptionData(source=source)
    index_of: dict[str, int] = {}
    for file_name, caption in pairs:
        caption = " ".join(str(caption).split())
        if not file_name:
            _skip(data, "missing_image_name")
            continue
        if not caption:
            _skip(data, "empty_caption")
            continue
        if file_name not in index_of:
            path = image_dir / file_name
            if not path.is_file():
                _skip(data, "missing_image_file")
                index_of[file_name] = -1
                continue
            index_of[file_name] = len(data.images)
            data.images.append(str(path))
            data.captions.append([])
        if index_of[file_name] >= 0:
            data.captions[index_of[file_name]].append(caption)
        else:
            _skip(data, "missing_image_file")
    if not data.images:
        detail = f" (skipped: {data.skipped})" if data.skipped else ""
        raise UserError(f"No usable image/caption pairs in {source} with images in "
                        f"{str(image_dir)!r}{detail}")
    return data


def _find_image_dir(base: Path, names: list[str], candidates: Sequence[str]) -> Path:
    sample = [n for n in names[:20] if n]
    for candidate in candidates:
        folder = base / candidate if candidate else base
        if folder.is_dir() and sample and any((folder / n).is_file() for n in sample):
            return folder
    return base


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise UserError(f"{str(path)!r} is not valid UTF-8 text: {error}") from None


def read_captions_txt(path: str | Path, image_dir: str | Path | None = None) -> CaptionData:
    """Flickr8k-style captions: ``captions.txt`` (``image,caption`` CSV with a header row) or
    ``Flickr8k.token.txt`` (``image#N<TAB>caption``)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"Captions file not found: {str(path)!r}")
    text = _read_text(path)
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise UserError(f"Captions file {str(path)!r} is empty")
    pairs: list[tuple[str, str]] = []
    if "\t" in lines[0] and "#" in lines[0].split("\t", 1)[0]:
        for line in lines:
            name, _, caption = line.partition("\t")
            pairs.append((name.split("#", 1)[0].strip(), caption))
    else:
        rows = list(csv.reader(lines))
        header = [cell.strip().lower() for cell in rows[0]]
        if "image" in header and "caption" in header:
            image_col, caption_col = header.index("image"), header.index("caption")
            rows = rows[1:]
        else:
            image_col, caption_col = 0, 1
        for row in rows:
            if len(row) <= max(image_col, caption_col):
                pairs.append((row[0].strip() if row else "", ""))
                continue
            # An unquoted caption with commas spans several cells: join them back.
            caption = ",".join(row[caption_col:]) if caption_col == len(header) - 1 else row[caption_col]
            pairs.append((row[image_col].strip(), caption))
    names = [name for name, _ in pairs]
    folder = Path(image_dir) if image_dir is not None else _find_image_dir(
        path.parent, names, ("Images", "images", "Flicker8k_Dataset", "Flickr8k_Dataset", ""))
    if image_dir is not None and not folder.is_dir():
        raise UserError(f"Image folder not found: {str(folder)!r}")
    return _group(pairs, folder, str(path))


def read_coco_captions(path: str | Path, image_dir: str | Path | None = None) -> CaptionData:
    """COCO captions JSON (``captions_train2017.json`` layout)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"COCO captions file not found: {str(path)!r}")
    try:
        spec = json.loads(_read_text(path))
    except json.JSONDecodeError as error:
        raise UserError(f"{str(path)!r} is not valid JSON: {error}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("images"), list) or not isinstance(
            spec.get("annotations"), list):
        raise UserError(f"{str(path)!r} is not a COCO captions file: it needs 'images' and "
                        "'annotations' lists")
    files: dict[Any, str] = {}
    for entry in spec["images"]:
        if isinstance(entry, dict) and "id" in entry and entry.get("file_name"):
            files[entry["id"]] = str(entry["file_name"])
    pairs = []
    missing_id = 0
    for annotation in spec["annotations"]:
        if not isinstance(annotation, dict) or annotation.get("image_id") not in files:
            missing_id += 1
            continue
        pairs.append((files[annotation["image_id"]], str(annotation.get("caption") or "")))
    stem = path.stem.split("_")[-1]  # captions_val2017 -> val2017
    folder = Path(image_dir) if image_dir is not None else _find_image_dir(
        path.parent, [n for n, _ in pairs], (stem, "images", "", f"../{stem}", "../images"))
    if image_dir is not None and not folder.is_dir():
        raise UserError(f"Image folder not found: {str(folder)!r}")
    data = _group(pairs, folder, str(path))
    if missing_id:
        data.skipped["unknown_image_id"] = missing_id
    return data


def read_caption_data(path: str | Path, image_dir: str | Path | None = None) -> CaptionData:
    """Read user caption data: a ``captions.txt`` / ``*.token.txt`` / ``*.csv`` file, a COCO
    ``*.json``, or a folder holding one of them."""
    path = Path(path)
    if path.is_dir():
        for name in ("captions.txt", "captions.csv", "Flickr8k.token.txt"):
            if (path / name).is_file():
                return read_captions_txt(path / name, image_dir)
        jsons = sorted(path.glob("*.json"))
        if len(jsons) == 1:
            return read_coco_captions(jsons[0], image_dir)
        raise UserError(
            f"{str(path)!r} holds no captions.txt and not exactly one COCO *.json "
            f"(found {len(jsons)} .json files)"
        )
    if not path.exists():
        raise UserError(f"Caption data not found: {str(path)!r}")
    if path.suffix.lower() == ".json":
        return read_coco_captions(path, image_dir)
    if path.suffix.lower() in (".txt", ".csv", ".tsv"):
        return read_captions_txt(path, image_dir)
    raise UserError(
        f"Unknown caption data format {path.suffix!r} for {str(path)!r}: use a captions.txt "
        "(image,caption), a Flickr8k.token.txt or a COCO captions .json"
    )
