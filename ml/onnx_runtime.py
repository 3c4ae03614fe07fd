"""Inference of a Keras model under ONNX Runtime: the same function, exported by Keras's own ONNX export.

:meth:`ml.model.Embedder.use_onnx` runs the forward passes (the backbone at each input size, the tapped
pass of a look, the parser head) through :class:`OnnxModel`: on the 2-core development CPU the passes
run about 1.5x faster than TensorFlow's ``predict_on_batch``, with outputs equal to 1e-4 (docs/ml.md,
"ONNX Runtime"). Keras stays the path for
training and for anything that changes weights: an export is a copy of the weights at that moment.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def export(model, input_shapes: Sequence[tuple[int, ...]], path: str | Path) -> Path:
    """Write ``model`` as ONNX to ``path`` (batch dimension left free), atomically: a process reading
    ``path`` meanwhile sees the old file or the new one, never half of one."""
    import keras

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    specs = [keras.InputSpec(shape=(None, *shape), dtype="float32") for shape in input_shapes]
    # A model of several inputs takes them as one dict by the inputs' names (the call's one argument).
    signature = specs if len(specs) == 1 else [{i.name: spec for i, spec in zip(model.inputs, specs, strict=True)}]
    try:
        model.export(str(tmp), format="onnx", input_signature=signature, verbose=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


class OnnxModel:
    """``predict_on_batch`` of a Keras model by an onnxruntime session over its export at ``path``
    (exported there first when the file is missing). ``threads``: intra-op threads, 0 = onnxruntime's
    default (the machine's physical cores)."""

    def __init__(self, model, input_shapes: Sequence[tuple[int, ...]], path: str | Path, *, threads: int = 0):
        import onnxruntime as ort

        path = Path(path)
        if not path.exists():
            export(model, input_shapes, path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        self.path = path
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        # the export's input names, in the Keras model's input order (a dict argument's keys come out
        # as "args_0_<name>", sorted)
        names = [i.name for i in self.session.get_inputs()]
        if len(names) == 1:
            self.inputs = names
        else:
            self.inputs = [next(n for n in names if n == i.name or n.endswith("_" + i.name)) for i in model.inputs]
        self.several = len(model.outputs) > 1

    def predict_on_batch(self, x):
        """Like Keras: one array, or a list of arrays for a model of several outputs (in the model's order)."""
        xs = x if isinstance(x, (list, tuple)) else [x]
        feed = {
            name: np.ascontiguousarray(value, dtype=np.float32) for name, value in zip(self.inputs, xs, strict=True)
        }
        outputs = self.session.run(None, feed)
        return outputs if self.several else outputs[0]
