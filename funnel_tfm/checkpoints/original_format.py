"""The original release's checkpoints: TF1 `model.ckpt*` with `net_config.json`, and the PyTorch `model.pt`.

TF1 checkpoints are read with `tf.train.load_checkpoint` (a name -> tensor reader, no graph) and written with
the `SaveV2` op, which produces the same `.index` / `.data-*` files a TF1 `Saver` writes, under the original
names, so tools written for the original release can read them:

    contents = read_tf_checkpoint("released/B4-4-4H768-ELEC-FULL-TF")   # state, optimizer state, skipped
    write_tf_checkpoint("out/original", state, optimizer_state)          # model.ckpt.* + checkpoint
"""

from __future__ import annotations

import dataclasses
import os
import re

import numpy as np

from funnel_tfm import file_io
from funnel_tfm.errors import CheckpointError
from funnel_tfm.checkpoints.torch_state import read_torch_state

CONFIG_NAMES = ("net_config.json", "net_config.pytorch.json")
CHECKPOINT_NAME = "model.ckpt"
PYTORCH_WEIGHTS = "model.pt"

# `modify_ckpt.py` renames of pre-release checkpoints (semantics C6): first matching rule wins.
_LEGACY_RENAMES = (("transformer_xl", "encoder"), ("model/layer", "model/decoder/layer"),
                   ("generator/layer", "generator/decoder/layer"))


def is_optimizer_state(name: str) -> bool:
    """`global_step`, Adam slots `<var>/adam_m|adam_v`, and `AdamWeightDecayOptimizer*` names (semantics C5)."""
    last = name.rsplit("/", 1)[-1]
    return (name == "global_step" or last in ("adam_m", "adam_v") or "AdamWeightDecayOptimizer" in name)


def legacy_rename(name: str) -> str:
    for old, new in _LEGACY_RENAMES:
        if old in name:
            return name.replace(old, new)
    return name


def find_config(directory: str) -> str | None:
    for name in CONFIG_NAMES:
        path = os.path.join(directory, name)
        if file_io.exists(path):
            return path
    return None


def find_tf_checkpoint(path: str) -> str | None:
    """The checkpoint prefix for a directory (its `checkpoint` file, else its only `*.index`) or a prefix."""
    import tensorflow as tf  # only the TF1 checkpoint reader needs TensorFlow, not HF / our formats
    if tf.io.gfile.exists(path + ".index"):
        return path
    if not tf.io.gfile.isdir(path):
        return None
    latest = tf.train.latest_checkpoint(path)
    if latest:
        return latest
    indexes = sorted(tf.io.gfile.glob(os.path.join(path, "*.index")))
    if len(indexes) > 1:
        raise CheckpointError(f"{path}: {len(indexes)} checkpoints ({', '.join(os.path.basename(i) for i in indexes)}) "
                              f"and no `checkpoint` file saying which one; pass the prefix of one of them")
    return indexes[0][:-len(".index")] if indexes else None


@dataclasses.dataclass
class OriginalContents:
    state: dict[str, np.ndarray]             # full original name -> float32 array
    optimizer_state: dict[str, np.ndarray]   # global_step and Adam slots, as stored
    source: str


def read_tf_checkpoint(prefix: str) -> OriginalContents:
    """All tensors of a TF1 checkpoint; model weights as float32 (bfloat16 ones too), legacy names renamed."""
    import tensorflow as tf  # only the TF1 checkpoint reader needs TensorFlow, not HF / our formats
    try:
        reader = tf.train.load_checkpoint(prefix)
        shapes = reader.get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError) as error:
        raise CheckpointError(f"{prefix}: not a readable TF checkpoint ({_first_line(error)})") from None
    state, optimizer_state = {}, {}
    for name in sorted(shapes):
        try:
            value = np.asarray(reader.get_tensor(name))
        except (tf.errors.OpError, ValueError, IndexError) as error:  # IndexError: a truncated data file
            raise CheckpointError(f"{prefix}: cannot read tensor {name} ({_first_line(error)})") from None
        if is_optimizer_state(name):
            optimizer_state[name] = value
        else:
            state[legacy_rename(name)] = value.astype(np.float32)
    return OriginalContents(state=state, optimizer_state=optimizer_state, source=prefix)


def write_tf_checkpoint(directory: str, state: dict[str, np.ndarray],
                        optimizer_state: dict[str, np.ndarray] | None = None) -> str:
    """Writes `model.ckpt.{index,data-00000-of-00001}` and the `checkpoint` file into `directory`; returns the prefix."""
    import tensorflow as tf  # only the TF1 checkpoint reader needs TensorFlow, not HF / our formats
    prefix = os.path.join(directory, CHECKPOINT_NAME)
    tensors = dict(state)
    tensors.update(optimizer_state or {})
    names = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.convert_to_tensor(tensors[name]) for name in names])
    with tf.io.gfile.GFile(os.path.join(directory, "checkpoint"), "w") as handle:
        handle.write(f'model_checkpoint_path: "{CHECKPOINT_NAME}"\n'
                     f'all_model_checkpoint_paths: "{CHECKPOINT_NAME}"\n')
    return prefix


# ------------------------------------------------------------------------ the original PyTorch release
# `pytorch/ckpt_to_pt.py` (semantics C7): encoder layers and the embedding only, tensors not transposed.
_PT_EMBEDDING = {"input_layer.0.lookup_table": "model/input/word_embedding/lookup_table",
                 "input_layer.1.weight": "model/input/layer_norm/gamma",
                 "input_layer.1.bias": "model/input/layer_norm/beta"}
_PT_ATTENTION = {"q_head.weight": "q/kernel", "k_head.weight": "k/kernel", "k_head.bias": "k/bias",
                 "v_head.weight": "v/kernel", "v_head.bias": "v/bias", "post_proj.weight": "o/kernel",
                 "post_proj.bias": "o/bias", "r_w_bias": "r_w_bias", "r_r_bias": "r_r_bias",
                 "r_s_bias": "r_s_bias", "seg_embed": "seg_embed", "r_kernel": "r/kernel",
                 "layer_norm.weight": "layer_norm/gamma", "layer_norm.bias": "layer_norm/beta"}
_PT_FFN = {"pffn.0.weight": "layer_1/kernel", "pffn.0.bias": "layer_1/bias", "pffn.3.weight": "layer_2/kernel",
           "pffn.3.bias": "layer_2/bias", "layer_norm.weight": "layer_norm/gamma", "layer_norm.bias": "layer_norm/beta"}
_PT_LAYER = re.compile(r"^(attn_layers|pffn_layers)\.(\d+)\.(.+)$")


def pytorch_key_to_name(key: str) -> str | None:
    """Original PyTorch state-dict key -> original TF name, or None for keys with no TF counterpart."""
    if key in _PT_EMBEDDING:
        return _PT_EMBEDDING[key]
    match = _PT_LAYER.match(key)
    if not match:
        return None
    group, index, rest = match.groups()
    table, scope = (_PT_ATTENTION, "rel_attn") if group == "attn_layers" else (_PT_FFN, "ff")
    return f"model/encoder/layer_{index}/{scope}/{table[rest]}" if rest in table else None


def read_pytorch_checkpoint(path: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(state by original name, skipped keys with why) of the original release's `model.pt`."""
    raw = read_torch_state(path, "the original model.pt")
    state, skipped = {}, {}
    for key, tensor in raw.items():
        name = pytorch_key_to_name(key)
        if name is None:
            skipped[key] = ("randomly initialised classification head of the PyTorch example"
                            if key.startswith("cls_head") else "no counterpart in the original TF model")
        else:
            state[name] = tensor
    return state, skipped


def _first_line(error: Exception) -> str:
    text = getattr(error, "message", None) or str(error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__
