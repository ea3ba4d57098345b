"""Image loader and caption-data readers (numpy + Pillow only; no TensorFlow needed)."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from rnnkit.data.images import (
    load_image,
    load_images,
    read_caption_data,
    read_captions_txt,
    read_coco_captions,
)
from rnnkit.errors import UserError


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width x height`` (no real pixel data)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P", "1", "I;16", "I", "F", "CMYK"])
def test_any_mode_and_size_becomes_rgb_uint8(mode):
    rng = np.random.default_rng(0)
    base = Image.fromarray(rng.integers(0, 255, size=(37, 53, 3), dtype=np.uint8), "RGB")
    if mode == "I;16":
        image = Image.fromarray((rng.integers(0, 65535, size=(37, 53))).astype(np.uint16))
    elif mode == "F":
        image = Image.fromarray(rng.random((37, 53)).astype(np.float32), "F")
    else:
        image = base.convert(mode)
    array = load_image(image, 16)
    assert array.shape == (16, 16, 3) and array.dtype == np.uint8
    # Same result from encoded bytes as from the in-memory image (when the format keeps it).
    if mode in ("RGB", "RGBA", "L", "LA", "P", "I;16"):
        np.testing.assert_array_equal(load_image(_png_bytes(image), 16), array)


def test_sixteen_bit_grayscale_is_rescaled_not_clipped():
    image = Image.fromarray(np.full((4, 4), 65535 // 2, dtype=np.uint16))
    value = load_image(image, 4)[0, 0, 0]
    assert 120 <= value <= 135  # half of the 16-bit range -> about 127, not clipped to 255


def test_alpha_is_composited_on_the_background():
    image = Image.new("RGBA", (8, 8), (255, 0, 0, 0))  # fully transparent red
    assert load_image(image, 8, background=(0, 0, 255))[0, 0].tolist() == [0, 0, 255]
    palette = Image.new("P", (8, 8), 0)
    palette.putpalette([10, 20, 30] + [0] * 765)
    palette.info["transparency"] = 0
    assert load_image(palette, 8, background=(255, 255, 255))[0, 0].tolist() == [255, 255, 255]


def test_resize_modes_keep_aspect_where_asked():
    wide = Image.new("RGB", (40, 10), (200, 0, 0))
    padded = load_image(wide, 20, resize_mode="pad", background=(0, 0, 0))
    assert padded[0, 10].tolist() == [0, 0, 0] and padded[10, 10].tolist() == [200, 0, 0]
    cropped = load_image(wide, 20, resize_mode="crop")
    assert (cropped == [200, 0, 0]).all()
    assert load_image(wide, (10, 30)).shape == (10, 30, 3)
    with pytest.raises(ValueError, match="resize_mode"):
        load_image(wide, 20, resize_mode="zoom")


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_image(tmp_path / "nope.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(UserError, match="empty"):
        load_image(tmp_path / "empty.png")


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is text, not a picture")
    with pytest.raises(UserError, match="not an image"):
        load_image(path)


def test_truncated_image(tmp_path):
    rng = np.random.default_rng(1)
    data = _png_bytes(Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)))
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="cut.png"):
        load_image(path)
    jpeg = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(jpeg, "JPEG")
    with pytest.raises(UserError, match="truncated or corrupt"):
        load_image(jpeg.getvalue()[:300])


def test_zero_pixel_image():
    with pytest.raises(UserError, match="(no pixels|not an image|corrupt)"):
        load_image(_png_header_only(0, 0))


def test_huge_image_refused_before_decoding():
    # Header claims 50000 x 50000 (2.5 gigapixels): refused from the header alone.
    with pytest.raises(UserError, match="too large"):
        load_image(_png_header_only(50000, 50000))
    with pytest.raises(UserError, match="max_pixels=100"):
        load_image(Image.new("RGB", (20, 20)), 8, max_pixels=100)


def test_load_images_batch(tmp_path):
    paths = []
    for index in range(3):
        path = tmp_path / f"{index}.png"
        Image.new("RGB", (10 + index, 12), (index * 50, 0, 0)).save(path)
        paths.append(path)
    batch = load_images(paths, 8)
    assert batch.shape == (3, 8, 8, 3) and batch[2, 0, 0, 0] == 100


def _make_images(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.new("RGB", (12, 12), (0, 128, 0)).save(folder / name)


def test_flickr_captions_txt(tmp_path):
    _make_images(tmp_path / "Images", ["a.jpg", "b.jpg"])
    (tmp_path / "captions.txt").write_text(
        "image,caption\n"
        "a.jpg,A dog runs .\n"
        "a.jpg,\"A dog, brown, runs\"\n"
        "a.jpg,a dog running, fast\n"  # unquoted comma: joined back
        "b.jpg,A cat sits\n"
        "c.jpg,missing image\n"
        "b.jpg,\n"
    )
    data = read_caption_data(tmp_path)
    assert [p.split("/")[-1] for p in data.images] == ["a.jpg", "b.jpg"]
    assert data.captions[0] == ["A dog runs .", "A dog, brown, runs", "a dog running, fast"]
    assert data.captions[1] == ["A cat sits"]
    assert data.skipped == {"missing_image_file": 1, "empty_caption": 1}


def test_flickr_token_txt(tmp_path):
    _make_images(tmp_path / "Flicker8k_Dataset", ["x.jpg"])
    path = tmp_path / "Flickr8k.token.txt"
    path.write_text("x.jpg#0\tA man .\nx.jpg#1\tA person\n")
    data = read_captions_txt(path)
    assert data.captions == [["A man .", "A person"]]


def test_coco_json(tmp_path):
    _make_images(tmp_path / "val2017", ["000.jpg", "001.jpg"])
    spec = {"images": [{"id": 1, "file_name": "000.jpg"}, {"id": 2, "file_name": "001.jpg"}],
            "annotations": [{"image_id": 1, "caption": "two  birds"},
                            {"image_id": 2, "caption": "a tree"},
                            {"image_id": 1, "caption": "birds on a wire"},
                            {"image_id": 99, "caption": "orphan"}]}
    path = tmp_path / "captions_val2017.json"
    path.write_text(json.dumps(spec))
    data = read_coco_captions(path)
    assert data.captions == [["two birds", "birds on a wire"], ["a tree"]]
    assert data.skipped == {"unknown_image_id": 1}
    assert len(read_caption_data(path)) == 2


def test_reader_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_caption_data(tmp_path / "nothing.txt")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        read_caption_data(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"foo": 1}))
    with pytest.raises(UserError, match="not a COCO captions file"):
        read_coco_captions(tmp_path / "other.json")
    (tmp_path / "captions.txt").write_text("image,caption\nmissing.jpg,hello\n")
    with pytest.raises(UserError, match="No usable image/caption pairs"):
        read_captions_txt(tmp_path / "captions.txt")
    with pytest.raises(UserError, match="Unknown caption data format"):
        (tmp_path / "data.xml").write_text("<x/>")
        read_caption_data(tmp_path / "data.xml")


def test_module_is_tensorflow_free():
    code = ("import sys, rnnkit.data.images, apps.captioning.captioner, apps.captioning.data; "
            "print('tensorflow' in sys.modules or 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
