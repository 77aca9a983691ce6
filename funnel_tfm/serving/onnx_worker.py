"""The PyTorch half of `--format=onnx`: run as its own process with KERAS_BACKEND=torch, it loads Keras archives
written by the TensorFlow side and traces each one to an ONNX file.

    KERAS_BACKEND=torch python -m funnel_tfm.serving.onnx_worker jobs.json
    # jobs.json: [{"keras_file": "m.keras", "sample_file": "x.npz", "onnx_file": "m.onnx",
    #              "modules": ["funnel_tfm.tasks.classification"], "inputs": ["token_ids", ...],
    #              "outputs": ["logits"], "opset": 18}, ...]

Why a second process: Keras picks its backend once per process, and the only ONNX exporter that runs on this
project's TensorFlow (2.20/2.21) is PyTorch's. Keras 3's own `export(format="onnx")` goes through tf2onnx on the
TensorFlow backend (tested only up to TensorFlow 2.15, not installable here) and, on the torch backend, through
TorchScript tracing whenever the batch is dynamic, which freezes every `ops.shape(x)[0]` into a constant. So we
call `torch.onnx.export(dynamo=True)` ourselves: torch.export traces the Keras model symbolically, with the batch
as the one dynamic dimension, and onnxscript lowers it to ONNX. Our model layer is `keras.ops` only, so the same
Keras archive runs here unchanged (the weights travel in the archive, by layer path).

Fourier mixing is switched to its DFT-matrix form before tracing (FNet and hybrids): it is the same function with
no weights, and it needs only MatMul, where the FFT form would need ONNX's DFT op.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import sys
import warnings
from typing import Any

if __name__ == "__main__":  # the backend must be chosen before Keras is imported
    import os
    os.environ["KERAS_BACKEND"] = "torch"

import keras
import numpy as np


def use_dft_mixing(model: keras.Model) -> int:
    """Switches every FourierMixing layer of `model` to its DFT-matrix path; returns how many it switched."""
    from funnel_tfm.layers.fourier import FourierMixing
    switched = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, FourierMixing) and layer.use_fft:
            layer.use_fft = False
            switched += 1
    return switched


@contextlib.contextmanager
def take_along_dim_by_gather():
    """`torch.take_along_dim` as an explicit broadcast + `torch.gather` while tracing.

    Why: torch.export (PyTorch 2.13) specialises the batch of `take_along_dim` to the sample's size even when the
    indices are already broadcast, so the SQuAD head's gather of its top-k starts (`layers.core.take_along_sequence`
    through `keras.ops.take_along_axis`) froze the ONNX batch; `torch.gather` keeps it symbolic. Same values.
    """
    import torch
    original = torch.take_along_dim

    def by_gather(input, indices, dim=None):  # noqa: A002  (torch's argument names)
        if dim is None:
            return original(input, indices)
        dim = dim % input.dim()
        ones = lambda shape: tuple(1 if d == dim else size for d, size in enumerate(shape))  # noqa: E731
        common = list(torch.broadcast_shapes(ones(input.shape), ones(indices.shape)))
        input_shape, index_shape = list(common), list(common)
        input_shape[dim], index_shape[dim] = input.shape[dim], indices.shape[dim]
        return torch.gather(input.expand(input_shape), dim, indices.expand(index_shape))

    torch.take_along_dim = by_gather
    try:
        yield
    finally:
        torch.take_along_dim = original


def _flat_module(model: keras.Model, input_names: list[str], output_names: list[str]):
    """A torch module with positional tensor inputs and a tuple of tensor outputs (what torch.export traces)."""
    import torch

    class FlatModel(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors):
            outputs = self.model(dict(zip(input_names, tensors)), training=False)
            if not isinstance(outputs, dict):
                outputs = {"logits": outputs}
            return tuple(outputs[name] for name in output_names)

    return FlatModel().eval()


def export_job(job: dict[str, Any]) -> dict[str, Any]:
    """Traces one Keras archive to `job["onnx_file"]`; returns what it did (for the export's metadata)."""
    import torch
    for module in job["modules"]:  # registers the archive's classes with Keras
        importlib.import_module(module)
    model = keras.saving.load_model(job["keras_file"], compile=False)
    switched = use_dft_mixing(model)
    samples = np.load(job["sample_file"])
    names = job["inputs"]
    args = tuple(torch.from_numpy(samples[name]) for name in names)
    if args[0].shape[0] < 2:
        raise ValueError(f"{job['sample_file']}: the sample batch must have 2 or more rows (torch.export "
                         f"specialises a batch of 1 to a constant)")
    batch = torch.export.Dim("batch", min=1, max=65536)
    with warnings.catch_warnings(), take_along_dim_by_gather():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(_flat_module(model, names, job["outputs"]), args, dynamo=True,
                                    input_names=names, output_names=job["outputs"], opset_version=job.get("opset"),
                                    dynamic_shapes=(tuple({0: batch} for _ in names),), verbose=False)
        program.optimize()
    program.save(job["onnx_file"])
    return {"onnx_file": job["onnx_file"], "fourier_layers_switched_to_dft": switched,
            "torch": torch.__version__}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: KERAS_BACKEND=torch python -m funnel_tfm.serving.onnx_worker jobs.json", file=sys.stderr)
        return 2
    if keras.backend.backend() != "torch":
        print(f"onnx_worker: KERAS_BACKEND={keras.backend.backend()}, expected torch", file=sys.stderr)
        return 2
    with open(argv[1]) as handle:
        jobs = json.load(handle)
    print(json.dumps([export_job(job) for job in jobs]), flush=True)  # the last stdout line: read by the caller
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
