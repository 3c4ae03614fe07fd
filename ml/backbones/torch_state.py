"""Read a PyTorch ``state_dict`` file (.pth) into NumPy arrays without importing torch.

Both on-disk formats are supported:

* the zip format (torch >= 1.6): ``<name>/data.pkl`` plus one raw file per storage
  under ``<name>/data/<key>``;
* the legacy format: consecutive pickles (magic number, protocol version, system
  info, the object, the list of storage keys), followed by each storage as an
  int64 element count and its raw little-endian bytes.

The pickle is read with a restricted unpickler: only the handful of globals a
state_dict needs (``collections.OrderedDict``, torch's tensor rebuild function
and storage types) resolve; anything else raises ``pickle.UnpicklingError``, so
a crafted file cannot run code.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, name: str):
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Storage:
    """A lazily filled flat buffer, shared by the tensors that view it."""

    def __init__(self, dtype: np.dtype, numel: int):
        self.dtype = dtype
        self.numel = numel
        self.data: np.ndarray | None = None


class _TensorRef:
    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def to_numpy(self) -> np.ndarray:
        flat = self.storage.data
        if flat is None:
            raise pickle.UnpicklingError("tensor storage was never read")
        if not self.size:
            return np.array(flat[self.offset], dtype=flat.dtype)
        itemsize = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset :],
            shape=self.size,
            strides=tuple(s * itemsize for s in self.stride),
            writeable=False,
        )
        return np.array(view)  # own the memory, C-contiguous


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, storages: dict[str, _Storage]):
        super().__init__(file)
        self._storages = storages

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from a weights file")

    def persistent_load(self, saved_id):
        if not isinstance(saved_id, tuple) or not saved_id or saved_id[0] != "storage":
            raise pickle.UnpicklingError(f"unsupported persistent id {saved_id!r}")
        if len(saved_id) == 5:  # zip: (tag, storage_type, key, location, numel)
            _, storage_type, key, _location, numel = saved_id
        else:  # legacy: (tag, storage_type, root_key, location, numel, view_metadata)
            _, storage_type, key, _location, numel, _view = saved_id
        key = str(key)
        if key not in self._storages:
            self._storages[key] = _Storage(storage_type.dtype, int(numel))
        return self._storages[key]


def _to_arrays(obj) -> dict[str, np.ndarray]:
    if not isinstance(obj, dict):
        raise pickle.UnpicklingError(f"expected a state_dict (a mapping), got {type(obj).__name__}")
    return {k: v.to_numpy() for k, v in obj.items() if isinstance(v, _TensorRef)}


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Return ``{parameter name: array}`` from a torch state_dict file."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            pkl = next(n for n in names if n.endswith("/data.pkl") or n == "data.pkl")
            prefix = pkl[: -len("data.pkl")]
            storages: dict[str, _Storage] = {}
            obj = _RestrictedUnpickler(io.BytesIO(archive.read(pkl)), storages).load()
            for key, storage in storages.items():
                raw = archive.read(f"{prefix}data/{key}")
                storage.data = np.frombuffer(raw, dtype=storage.dtype.newbyteorder("<"))
        return _to_arrays(obj)

    with open(path, "rb") as f:
        magic = pickle.load(f)
        if magic != _LEGACY_MAGIC:
            raise pickle.UnpicklingError(f"{path} is not a torch weights file")
        pickle.load(f)  # protocol version
        pickle.load(f)  # system info (endianness, type sizes)
        storages = {}
        obj = _RestrictedUnpickler(f, storages).load()
        keys = pickle.load(f)
        for key in keys:
            storage = storages[str(key)]
            (numel,) = struct.unpack("<q", f.read(8))
            raw = f.read(numel * storage.dtype.itemsize)
            storage.data = np.frombuffer(raw, dtype=storage.dtype.newbyteorder("<"))
    return _to_arrays(obj)
