import io
import pickle
import struct
import sys
import types
import zipfile

import numpy as np
import pytest

from ml.backbones import efficientnet_lite
from ml.backbones.torch_state import load_state_dict


@pytest.fixture
def fake_torch(monkeypatch):
    """Just enough of torch's names for pickle to write a state_dict the way torch does."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called when writing")

    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"
    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    torch.FloatStorage = FloatStorage
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch, utils


class _StorageRef:
    def __init__(self, key, array):
        self.key, self.array = key, array


class _Tensor:
    def __init__(self, key, array, utils, offset=0, size=None, stride=None):
        self.key, self.array, self.utils = key, array, utils
        self.offset = offset
        self.size = size if size is not None else array.shape
        self.stride = stride if stride is not None else tuple(s // 4 for s in array.strides)

    def __reduce__(self):
        import collections

        storage = _StorageRef(self.key, self.array)
        return (
            self.utils._rebuild_tensor_v2,
            (storage, self.offset, self.size, self.stride, False, collections.OrderedDict()),
        )


def _write(tensors, torch, legacy: bool) -> bytes:
    import collections

    storages = {}

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _StorageRef):
                storages[obj.key] = obj.array
                if legacy:
                    return ("storage", torch.FloatStorage, obj.key, "cpu", obj.array.size, None)
                return ("storage", torch.FloatStorage, obj.key, "cpu", obj.array.size)
            return None

    state = collections.OrderedDict(tensors)

    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump(state)
    if not legacy:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as z:
            z.writestr("archive/data.pkl", buf.getvalue())
            for key, arr in storages.items():
                z.writestr(f"archive/data/{key}", np.ascontiguousarray(arr, "<f4").tobytes())
        return out.getvalue()
    head = io.BytesIO()
    for obj in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
        pickle.dump(obj, head, protocol=2)
    tail = io.BytesIO()
    pickle.dump(list(storages), tail, protocol=2)
    raw = b"".join(
        struct.pack("<q", arr.size) + np.ascontiguousarray(arr, "<f4").tobytes() for arr in storages.values()
    )
    return head.getvalue() + buf.getvalue() + tail.getvalue() + raw


@pytest.mark.parametrize("legacy", [False, True])
def test_reads_state_dict_without_torch(tmp_path, fake_torch, legacy):
    torch, utils = fake_torch
    a = np.arange(12, dtype=np.float32)
    b = np.array([5.0, 6.0], np.float32)
    tensors = {
        "conv.weight": _Tensor("0", a, utils, size=(3, 4), stride=(4, 1)),
        "transposed": _Tensor("0", a, utils, size=(4, 3), stride=(1, 4)),
        "offset": _Tensor("0", a, utils, offset=2, size=(2,), stride=(1,)),
        "bias": _Tensor("1", b, utils),
    }
    path = tmp_path / "weights.pth"
    path.write_bytes(_write(tensors, torch, legacy))
    sys.modules.pop("torch"), sys.modules.pop("torch._utils")
    state = load_state_dict(path)
    np.testing.assert_array_equal(state["conv.weight"], a.reshape(3, 4))
    np.testing.assert_array_equal(state["transposed"], a.reshape(3, 4).T)
    np.testing.assert_array_equal(state["offset"], [2.0, 3.0])
    np.testing.assert_array_equal(state["bias"], b)


def test_refuses_arbitrary_globals(tmp_path):
    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        for obj in (0x1950A86A20F9469CFC6C, 1001, {}):
            pickle.dump(obj, f, protocol=2)
        pickle.dump(Evil(), f, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_state_dict(path)


def test_reads_the_packaged_lite0_weights():
    state = load_state_dict(efficientnet_lite.torch_weights_path("efficientnet_lite0"))
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert state["_conv_stem.weight"].dtype == np.float32
