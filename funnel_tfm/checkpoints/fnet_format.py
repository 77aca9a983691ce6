"""This project's FNet directory: `fnet_config.json` + `model.safetensors` under the original f_net names.

It holds what transformers' format cannot: hybrids with attention layers (fnet semantics N9) and d_embed != d_model
(N2). Names are the Flax parameter paths of N5, plus `encoder/self_attention_{i}/{query,key,value,out}/{kernel,bias}`
for a hybrid's attention layers (kernels [D, H, D/H] and [H, D/H, D], as Flax's DenseGeneral stores them).

    write_fnet("staging", config, state, "FNetForPreTraining")
    contents = read_fnet("out/hybrid")        # config, state by original name, architecture
    check_mixers(config, contents.state, "out/hybrid")   # CheckpointError when a layer's mixer differs
    check_backbone(config, contents.state, "out/hybrid")  # ... when a backbone weight is missing or extra
    contents = read_any_fnet("fnet-base")     # ours (mixers checked) or a transformers directory (hf_fnet)
"""

from __future__ import annotations

import dataclasses
import os
import re

import numpy as np

from funnel_tfm.checkpoints import hf_fnet
from funnel_tfm.checkpoints.hf_format import read_safetensors
from funnel_tfm.config import ConfigError
from funnel_tfm.config_fnet import FNET_CONFIG_FILE as FNET_CONFIG, FNetConfig
from funnel_tfm.errors import CheckpointError

FNET_WEIGHTS = "model.safetensors"
_ATTENTION_NAME = re.compile(r"^encoder/self_attention_(\d+)/")
_LAYER_NAME = re.compile(r"^encoder/(?:encoder|feed_forward|self_attention)_(\d+)/")


@dataclasses.dataclass
class FNetContents:
    config: FNetConfig
    state: dict[str, np.ndarray]   # original name -> float32 array
    architecture: str              # "FNetModel" or "FNetForPreTraining": what wrote it


def is_fnet_directory(path: str) -> bool:
    return os.path.isfile(os.path.join(path, FNET_CONFIG))


def write_fnet(directory: str, config: FNetConfig, state: dict[str, np.ndarray], architecture: str) -> None:
    """Writes fnet_config.json + model.safetensors into an existing (staging) directory."""
    from safetensors.numpy import save_file
    config.to_json(os.path.join(directory, FNET_CONFIG))
    arrays = {name: np.ascontiguousarray(np.asarray(value, np.float32)) for name, value in state.items()}
    save_file(arrays, os.path.join(directory, FNET_WEIGHTS),
              metadata={"format": "funnel_tfm_fnet", "architecture": architecture})


def read_fnet(directory: str) -> FNetContents:
    """Reads a directory written by `write_fnet`; CheckpointError names the file for anything unreadable."""
    config_path, weights = os.path.join(directory, FNET_CONFIG), os.path.join(directory, FNET_WEIGHTS)
    try:
        config = FNetConfig.from_json(config_path)
    except ConfigError as error:
        raise CheckpointError(str(error)) from None
    if not os.path.exists(weights):
        raise CheckpointError(f"{directory}: no {FNET_WEIGHTS} next to {FNET_CONFIG}")
    state, metadata = read_safetensors(weights)
    return FNetContents(config=config, state=state, architecture=metadata.get("architecture", "FNetModel"))


def check_mixers(config: FNetConfig, state: dict[str, np.ndarray], source: str) -> None:
    """Raises CheckpointError when the checkpoint's attention layers are not the config's (N9): attention
    weights for a Fourier layer, or none for an attention layer."""
    attending = set(config.attention_layers())
    found = {int(m.group(1)) for m in map(_ATTENTION_NAME.match, state) if m}
    if found == attending or not any(name.startswith("encoder/") for name in state):
        return
    raise CheckpointError(
        f"{source}: the checkpoint has attention weights (encoder/self_attention_*) in layers {sorted(found)}, but "
        f"the config (num_attention_layers {config.num_attention_layers}, attention_layout "
        f"{config.attention_layout!r}) makes layers {sorted(attending)} attend; load it with the config it was "
        f"saved with")


def check_backbone(config: FNetConfig, state: dict[str, np.ndarray], source: str) -> None:
    """Raises CheckpointError when a backbone weight of the config is missing from `state` (it would silently stay
    at its random init) or `state` holds layers beyond `n_layer`; the pooler may be absent (an FNetModel without
    one)."""
    required = {rule.name for rule in hf_fnet.backbone_rules(config.n_layer).values()} - set(hf_fnet.POOLER)
    missing = sorted(required - set(state))
    extra = sorted({int(m.group(1)) for m in map(_LAYER_NAME.match, state) if m and int(m.group(1)) >= config.n_layer})
    hf_fnet.check_backbone_fit(source, FNET_CONFIG, missing, extra, f"n_layer ({config.n_layer})")


def read_any_fnet(path: str) -> hf_fnet.HFFNetContents:
    """An FNet directory in either format as (config, state by original name, skipped HF keys, architecture): ours
    (`fnet_config.json`, its attention layers checked against the config) or transformers' (`hf_fnet`)."""
    if not is_fnet_directory(path):
        return hf_fnet.read_hf_fnet(path)
    contents = read_fnet(path)
    check_mixers(contents.config, contents.state, path)
    check_backbone(contents.config, contents.state, path)
    return hf_fnet.HFFNetContents(config=contents.config, state=contents.state, skipped={},
                                  architecture=contents.architecture)
