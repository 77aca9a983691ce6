"""Loading and saving `FunnelTFM` weights: Hugging Face Funnel directories and our own format.

Every weight has an original TF variable name (`input/word_embedding/lookup_table`,
`encoder/layer_3/rel_attn/q/kernel`, ...; see `FunnelTFM.weight_names`). Other formats are mapped onto
those names, with reshapes done axis by axis so that `n_head * d_head != d_model` converts correctly.

    model = FunnelTFM.from_pretrained("path/to/hf_dir")         # config.json + model.safetensors
    save_pretrained(model, "out/ours")                           # funnel_config.json + model.safetensors
    FunnelTFM.from_pretrained("out/ours")
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from typing import Callable

import numpy as np

from funnel_tfm import file_io
from funnel_tfm.config import ConfigError, ModelConfig

OUR_CONFIG = "funnel_config.json"
WEIGHTS = "model.safetensors"
HF_CONFIG = "config.json"
HF_TORCH_WEIGHTS = "pytorch_model.bin"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not match the model (names the file / variable)."""


@dataclasses.dataclass
class LoadReport:
    """What a load did: loaded original names, skipped source names (with why), model weights left missing."""

    loaded: list[str] = dataclasses.field(default_factory=list)
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)
    missing: list[str] = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        return f"loaded {len(self.loaded)} tensors, skipped {len(self.skipped)}, left {len(self.missing)} at init"


# ---------------------------------------------------------------------------------- Hugging Face names
Transform = Callable[[np.ndarray, ModelConfig], np.ndarray]


def _linear_in(array: np.ndarray, config: ModelConfig) -> np.ndarray:
    """torch Linear(D -> N·H) weight [N·H, D] -> our kernel [D, N, H]."""
    return array.T.reshape(array.shape[1], config.n_head, config.d_head)


def _linear_out(array: np.ndarray, config: ModelConfig) -> np.ndarray:
    """torch Linear(N·H -> D) weight [D, N·H] -> our kernel [N, H, D]."""
    return array.T.reshape(config.n_head, config.d_head, array.shape[0])


def _head_bias(array: np.ndarray, config: ModelConfig) -> np.ndarray:
    return array.reshape(config.n_head, config.d_head)


def _transpose(array: np.ndarray, config: ModelConfig) -> np.ndarray:
    return array.T


def _same(array: np.ndarray, config: ModelConfig) -> np.ndarray:
    return array


# HF suffix inside one layer -> (original suffix, HF -> ours); the inverse is derived in `_to_hf`.
_HF_LAYER_PARTS: dict[str, tuple[str, Transform]] = {
    "attention.q_head.weight": ("rel_attn/q/kernel", _linear_in),
    "attention.k_head.weight": ("rel_attn/k/kernel", _linear_in),
    "attention.k_head.bias": ("rel_attn/k/bias", _head_bias),
    "attention.v_head.weight": ("rel_attn/v/kernel", _linear_in),
    "attention.v_head.bias": ("rel_attn/v/bias", _head_bias),
    "attention.post_proj.weight": ("rel_attn/o/kernel", _linear_out),
    "attention.post_proj.bias": ("rel_attn/o/bias", _same),
    "attention.r_w_bias": ("rel_attn/r_w_bias", _same),
    "attention.r_r_bias": ("rel_attn/r_r_bias", _same),
    "attention.r_kernel": ("rel_attn/r/kernel", _same),
    "attention.r_s_bias": ("rel_attn/r_s_bias", _same),
    "attention.seg_embed": ("rel_attn/seg_embed", _same),
    "attention.layer_norm.weight": ("rel_attn/layer_norm/gamma", _same),
    "attention.layer_norm.bias": ("rel_attn/layer_norm/beta", _same),
    "ffn.linear_1.weight": ("ff/layer_1/kernel", _transpose),
    "ffn.linear_1.bias": ("ff/layer_1/bias", _same),
    "ffn.linear_2.weight": ("ff/layer_2/kernel", _transpose),
    "ffn.linear_2.bias": ("ff/layer_2/bias", _same),
    "ffn.layer_norm.weight": ("ff/layer_norm/gamma", _same),
    "ffn.layer_norm.bias": ("ff/layer_norm/beta", _same),
}
_HF_EMBEDDING_PARTS: dict[str, tuple[str, Transform]] = {
    "embeddings.word_embeddings.weight": ("input/word_embedding/lookup_table", _same),
    "embeddings.layer_norm.weight": ("input/layer_norm/gamma", _same),
    "embeddings.layer_norm.bias": ("input/layer_norm/beta", _same),
}


def hf_name_map(config: ModelConfig, with_decoder: bool) -> dict[str, tuple[str, Transform]]:
    """Every backbone key of a transformers FunnelModel/FunnelBaseModel -> (original name, transform)."""
    names = dict(_HF_EMBEDDING_PARTS)
    layer = 0
    for block, params in enumerate(config.block_param_sizes):
        for i in range(params):
            for part, (suffix, fn) in _HF_LAYER_PARTS.items():
                names[f"encoder.blocks.{block}.{i}.{part}"] = (f"encoder/layer_{layer}/{suffix}", fn)
            layer += 1
    if with_decoder:
        for j in range(config.decoder_param_size):
            for part, (suffix, fn) in _HF_LAYER_PARTS.items():
                names[f"decoder.layers.{j}.{part}"] = (f"decoder/layer_{layer + j}/{suffix}", fn)
    return names


def _read_safetensors(path: str) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file
    try:
        return load_file(path)
    except Exception as error:  # safetensors raises its own error types for truncated / foreign files
        raise CheckpointError(f"{path}: not a readable safetensors file ({error})") from None


def _read_torch_bin(path: str) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise CheckpointError(f"{path}: reading pytorch_model.bin needs PyTorch (pip install torch==2.13.0), or "
                              f"convert the checkpoint to model.safetensors") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"{path}: not a readable PyTorch state dict ({error})") from None
    return {k: v.float().numpy() for k, v in state.items()}


def read_hf_state(directory: str) -> dict[str, np.ndarray]:
    """The tensors of an HF directory with any task-model prefix (`funnel.`) removed."""
    safetensors_path = os.path.join(directory, WEIGHTS)
    torch_path = os.path.join(directory, HF_TORCH_WEIGHTS)
    if os.path.exists(safetensors_path):
        state = _read_safetensors(safetensors_path)
    elif os.path.exists(torch_path):
        state = _read_torch_bin(torch_path)
    else:
        raise CheckpointError(f"{directory}: no {WEIGHTS} or {HF_TORCH_WEIGHTS}")
    return {(k[len("funnel."):] if k.startswith("funnel.") else k): v for k, v in state.items()}


# ---------------------------------------------------------------------------------------- assigning
def assign_weights(model, values: dict[str, np.ndarray], source: str, report: LoadReport) -> LoadReport:
    """Assigns original-named arrays to the model; shape mismatches name the variable and both shapes."""
    targets = model.weight_names()
    for name, array in values.items():
        if name not in targets:
            report.skipped[name] = "the model has no such weight"
            continue
        variable = targets[name]
        if tuple(variable.shape) != tuple(array.shape):
            raise CheckpointError(f"{source}: {name} has shape {tuple(array.shape)} in the checkpoint but "
                                  f"{tuple(variable.shape)} in the model built from the config")
        variable.assign(array.astype(np.float32))
        report.loaded.append(name)
    report.missing = sorted(set(targets) - set(report.loaded))
    return report


def load_hf(directory: str, **model_kwargs):
    """A FunnelTFM from a transformers Funnel directory; decoder present iff the checkpoint has one."""
    from funnel_tfm.modeling import FunnelTFM
    config = ModelConfig.from_json(os.path.join(directory, HF_CONFIG))
    state = read_hf_state(directory)
    with_decoder = any(k.startswith("decoder.") for k in state)
    model = FunnelTFM(config, use_decoder=model_kwargs.pop("use_decoder", with_decoder), **model_kwargs)
    mapping = hf_name_map(config, with_decoder)
    values, report = {}, LoadReport()
    for key, array in state.items():
        if key not in mapping:
            report.skipped[key] = "not part of the backbone (task head or unknown)"
            continue
        name, transform = mapping[key]
        try:
            values[name] = transform(array, config)
        except ValueError:
            raise CheckpointError(f"{directory}: {key} has shape {array.shape}, which does not fit the config "
                                  f"(d_model {config.d_model}, n_head {config.n_head}, d_head {config.d_head})") from None
    assign_weights(model, values, directory, report)
    # The pooled summary is not part of transformers' backbone; everything else must be there.
    absent = [n for n in report.missing if not n.startswith("sequnece_summary/")]
    if absent:
        raise CheckpointError(f"{directory}: missing weights for {', '.join(absent[:10])}"
                              f"{' ...' if len(absent) > 10 else ''} ({len(absent)} in all)")
    model.load_report = report
    return model


def save_pretrained(model, directory: str) -> None:
    """Writes our format (funnel_config.json + model.safetensors with original names); atomic per directory."""
    from safetensors.numpy import save_file
    parent = os.path.dirname(os.path.abspath(directory))
    os.makedirs(parent, exist_ok=True)
    staging = file_io.temporary_sibling(os.path.abspath(directory))
    os.makedirs(staging)
    try:
        model.config.to_json(os.path.join(staging, OUR_CONFIG))
        arrays = {name: np.asarray(variable.numpy()) for name, variable in model.weight_names().items()}
        save_file(arrays, os.path.join(staging, WEIGHTS), metadata={"format": "funnel_tfm",
                                                                      "use_decoder": str(model.use_decoder)})
        if os.path.exists(directory):
            shutil.rmtree(directory)
        os.rename(staging, directory)
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging)


def load_ours(directory: str, **model_kwargs):
    from safetensors import safe_open
    from funnel_tfm.modeling import FunnelTFM
    config = ModelConfig.from_json(os.path.join(directory, OUR_CONFIG))
    path = os.path.join(directory, WEIGHTS)
    try:
        with safe_open(path, framework="numpy") as handle:
            metadata = handle.metadata() or {}
    except Exception as error:
        raise CheckpointError(f"{path}: not a readable safetensors file ({error})") from None
    use_decoder = model_kwargs.pop("use_decoder", metadata.get("use_decoder", "True") == "True")
    model = FunnelTFM(config, use_decoder=use_decoder, **model_kwargs)
    report = assign_weights(model, _read_safetensors(path), directory, LoadReport())
    if report.missing:
        raise CheckpointError(f"{directory}: missing weights for {', '.join(report.missing[:10])}")
    model.load_report = report
    return model


def load_pretrained(path: str, **model_kwargs):
    """Detects the format of a directory and loads it (see the module docstring)."""
    if not os.path.isdir(path):
        raise CheckpointError(f"{path}: not a directory")
    if os.path.exists(os.path.join(path, OUR_CONFIG)):
        return load_ours(path, **model_kwargs)
    if os.path.exists(os.path.join(path, HF_CONFIG)):
        try:
            return load_hf(path, **model_kwargs)
        except ConfigError as error:
            raise CheckpointError(str(error)) from None
    raise CheckpointError(f"{path}: found neither {OUR_CONFIG} (funnel_tfm) nor {HF_CONFIG} (Hugging Face)")
