"""ONNX files of Keras models (backbones and task models), checked against the Keras model with onnxruntime.

    files = export_onnx([OnnxJob(task.model, features, "out/model.onnx")], tolerance=1e-4)
    files[0]["max_abs_diff"]      # {"logits": 3e-07}: onnxruntime (CPU) vs this process's Keras model
    files[0]["inputs"]            # [{"name": "token_ids", "shape": ["batch", 128], "dtype": "int32"}, ...]

The ONNX graph has a fixed sequence length (the sample's), a dynamic batch and float32 weights; the tokenizer
stays outside it (use the export's `tokenizer/` vocabulary, packed as `funnel_tfm.data.preprocessing` does).
Tracing happens in a child process on Keras' PyTorch backend (`onnx_worker.py` says why); this side saves each
model as a Keras archive, computes its reference outputs on the sample, and refuses the export when onnxruntime
differs by more than `tolerance` on the sample or on its first row alone (a batch of another size than the traced
one, which proves the batch is dynamic). Needs the `[onnx]` extra: torch, onnx, onnxscript, onnxruntime.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from typing import Any

import keras
import numpy as np

from funnel_tfm.serving.source import ExportError

NEEDED = ("torch", "onnx", "onnxscript", "onnxruntime")
OPSET = 18
WORKER_TIMEOUT_S = 3600


@dataclasses.dataclass
class OnnxJob:
    """One model to export: its sample inputs (name -> array with the batch first, 2 or more rows) fix the
    input names, dtypes and sequence length; `outputs` defaults to every tensor the model returns."""
    model: keras.Model
    sample: dict[str, np.ndarray]
    onnx_file: str
    outputs: list[str] | None = None


def check_onnx_packages() -> None:
    missing = [name for name in NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        raise ExportError(f"--format=onnx needs {', '.join(missing)} (not installed): pip install 'funnel_tfm[onnx]'")


def reference_outputs(model: keras.Model, sample: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model's tensor outputs on `sample` by name (a bare tensor is "logits"; lists such as
    `encoder_hiddens` are left out of the ONNX graph)."""
    outputs = model(sample, training=False)
    if not isinstance(outputs, dict):
        outputs = {"logits": outputs}
    return {name: keras.ops.convert_to_numpy(value) for name, value in outputs.items()
            if not isinstance(value, (list, tuple))}


def _check_float32(model: keras.Model) -> None:
    if model.dtype_policy.name != "float32":
        raise ExportError(f"--format=onnx: model {model.name!r} has dtype policy {model.dtype_policy.name!r}; the "
                          f"ONNX export is float32 (build or load the model with dtype='float32')")


def _modules(model: keras.Model) -> list[str]:
    """The modules that register the classes of `model`'s archive (imported by the worker before loading)."""
    return sorted({type(layer).__module__ for layer in model._flatten_layers(include_self=True, recursive=True)
                   if type(layer).__module__.startswith("funnel_tfm.")})


def _run_worker(jobs_file: str) -> list[dict[str, Any]]:
    env = {**os.environ, "KERAS_BACKEND": "torch", "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-m", "funnel_tfm.serving.onnx_worker", jobs_file], capture_output=True,
                            text=True, env=env, timeout=WORKER_TIMEOUT_S)
    if result.returncode != 0:
        raise ExportError(f"--format=onnx: tracing on the PyTorch backend failed (exit {result.returncode}):\n"
                          f"{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _compare(onnx_file: str, sample: dict[str, np.ndarray], expected: dict[str, np.ndarray], names: list[str],
             tolerance: float) -> tuple[dict[str, float], list[str]]:
    """(max |onnxruntime - Keras| per output, over the whole sample and its first row alone; the graph's inputs)."""
    import onnxruntime
    session = onnxruntime.InferenceSession(onnx_file, providers=["CPUExecutionProvider"])
    accepted = {node.name for node in session.get_inputs()}  # an input the model never reads is not in the graph
    frozen = {node.name: node.shape[0] for node in session.get_inputs() if not isinstance(node.shape[0], str)}
    if frozen:  # torch.onnx falls back to a static trace when torch.export cannot keep the batch symbolic
        raise ExportError(f"{onnx_file}: the batch axis was traced as a constant ({frozen}), not dynamic; an op of "
                          f"this model specialises it under torch.export (see onnx_worker.take_along_dim_by_gather)")
    worst = dict.fromkeys(names, 0.0)
    for rows in (slice(None), slice(0, 1)):
        got = session.run(names, {name: value[rows] for name, value in sample.items() if name in accepted})
        for name, value in zip(names, got):
            want = expected[name][rows]
            if value.shape != want.shape:
                raise ExportError(f"{onnx_file}: output {name} has shape {value.shape}, the Keras model's {want.shape}")
            worst[name] = max(worst[name], float(np.max(np.abs(value.astype(np.float64) - want))))
    bad = {name: diff for name, diff in worst.items() if diff > tolerance}
    if bad:
        raise ExportError(f"{onnx_file}: onnxruntime differs from the Keras model by {bad} (tolerance {tolerance})")
    return worst, [node.name for node in session.get_inputs()]


def _describe_inputs(sample: dict[str, np.ndarray], names: list[str]) -> list[dict[str, Any]]:
    return [{"name": name, "shape": ["batch", *sample[name].shape[1:]], "dtype": str(sample[name].dtype)}
            for name in names]


def export_onnx(jobs: list[OnnxJob], tolerance: float = 1e-4) -> list[dict[str, Any]]:
    """Writes each job's ONNX file (one worker process for all of them); returns per job: onnx_file, inputs,
    outputs, max_abs_diff, opset, torch version. An ExportError when a package is missing, tracing fails or the
    results differ."""
    check_onnx_packages()
    with tempfile.TemporaryDirectory(prefix="funnel_onnx_") as scratch:
        worker_jobs, expected = [], []
        for i, job in enumerate(jobs):
            _check_float32(job.model)
            if len(next(iter(job.sample.values()))) < 2:
                raise ExportError("--format=onnx: the sample batch must have 2 or more rows")
            reference = reference_outputs(job.model, job.sample)
            names = job.outputs or list(reference)
            keras_file, sample_file = os.path.join(scratch, f"{i}.keras"), os.path.join(scratch, f"{i}.npz")
            job.model.save(keras_file)
            np.savez(sample_file, **job.sample)
            worker_jobs.append({"keras_file": keras_file, "sample_file": sample_file, "onnx_file": job.onnx_file,
                                "modules": _modules(job.model), "inputs": list(job.sample), "outputs": names,
                                "opset": OPSET})
            expected.append(reference)
        jobs_file = os.path.join(scratch, "jobs.json")
        with open(jobs_file, "w") as handle:
            json.dump(worker_jobs, handle)
        done = _run_worker(jobs_file)
    results = []
    for job, worker_job, reference, traced in zip(jobs, worker_jobs, expected, done):
        diffs, inputs = _compare(job.onnx_file, job.sample, reference, worker_job["outputs"], tolerance)
        results.append({"onnx_file": job.onnx_file, "inputs": _describe_inputs(job.sample, inputs),
                        "outputs": worker_job["outputs"], "max_abs_diff": diffs, "opset": OPSET,
                        "torch": traced["torch"], "fourier_layers_switched_to_dft":
                        traced["fourier_layers_switched_to_dft"]})
    return results
