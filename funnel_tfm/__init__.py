"""funnel_tfm: Funnel-Transformer pretraining, finetuning and conversion on Keras 3.

    import funnel_tfm as ft

    model = ft.FunnelTFM(ft.ModelConfig(block_size="2_2", d_model=64, d_embed=64, n_head=4, d_head=16,
                                        d_inner=128, vocab_size=1000))
    model.summary()
    model = ft.FunnelTFM.from_pretrained("path/to/checkpoint")     # original, Hugging Face or ours
    ckpt = ft.load_checkpoint("path/to/checkpoint")                  # + heads, generator, optimizer state
    ft.save_pretrained(model, "out/model")
    task = ft.tasks.build_pretraining_task(config, "electra")        # needs TensorFlow

The names are loaded on first use, so `import funnel_tfm` stays light and the model runs where TensorFlow is
not installed (the JAX and PyTorch backends); `tasks`, `Preprocessor` and the training code need TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

from funnel_tfm import llvm_isolation

# Before anything loads TensorFlow or Triton: the two carry clashing copies of LLVM (llvm_isolation says why).
llvm_isolation.preload_triton()

_EXPORTS = {
    "ModelConfig": ("funnel_tfm.config", "ModelConfig"),
    "ConfigError": ("funnel_tfm.config", "ConfigError"),
    "named_config": ("funnel_tfm.config", "named_config"),
    "load_config": ("funnel_tfm.config", "load_config"),
    "FunnelTFM": ("funnel_tfm.modeling", "FunnelTFM"),
    "FNetConfig": ("funnel_tfm.config_fnet", "FNetConfig"),
    "FNet": ("funnel_tfm.modeling_fnet", "FNet"),
    "FNetPreTrainingModel": ("funnel_tfm.modeling_fnet", "FNetPreTrainingModel"),
    "CheckpointError": ("funnel_tfm.errors", "CheckpointError"),
    "FunnelCheckpoint": ("funnel_tfm.checkpoints.loading", "FunnelCheckpoint"),
    "export": ("funnel_tfm.checkpoints.loading", "export"),
    "save_pretrained": ("funnel_tfm.checkpoints.loading", "save_pretrained"),
    "Preprocessor": ("funnel_tfm.data.preprocessing", "Preprocessor"),
    "Tokenizer": ("funnel_tfm.data.tokenization", "Tokenizer"),
    "MaskedLMModel": ("funnel_tfm.tasks.masked_lm", "MaskedLMModel"),
    "ElectraModel": ("funnel_tfm.tasks.electra", "ElectraModel"),
}
_SUBPACKAGES = ("analysis", "checkpoints", "data", "layers", "tasks", "training")

__all__ = sorted([*_EXPORTS, "from_pretrained", "load_checkpoint", *_SUBPACKAGES])


def from_pretrained(path: str, use_decoder: bool | None = None, dtype: Any = None) -> Any:
    """The backbone of any supported checkpoint directory, Funnel or FNet: `FunnelTFM.from_pretrained(path)`, or
    `FNet.from_pretrained(path)` for an FNet directory (ours with fnet_config.json, or transformers' config.json
    of model_type "fnet"; FNet has no decoder, so `use_decoder` must stay None or False there)."""
    from funnel_tfm.tasks.backbones import is_fnet_checkpoint
    if is_fnet_checkpoint(path):
        if use_decoder:
            from funnel_tfm.errors import CheckpointError
            raise CheckpointError(f"{path}: an FNet checkpoint, which has no decoder (use_decoder=True)")
        from funnel_tfm.modeling_fnet import FNet
        return FNet.from_pretrained(path, dtype=dtype)
    from funnel_tfm.modeling import FunnelTFM
    return FunnelTFM.from_pretrained(path, use_decoder=use_decoder, dtype=dtype)


def load_checkpoint(path: str, use_decoder: bool | None = None, dtype: Any = None) -> Any:
    """Backbone, heads, generator and optimizer state of a checkpoint: `FunnelTFM.load_checkpoint(path)`."""
    from funnel_tfm.modeling import FunnelTFM
    return FunnelTFM.load_checkpoint(path, use_decoder=use_decoder, dtype=dtype)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module, attribute = _EXPORTS[name]
        return getattr(importlib.import_module(module), attribute)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"funnel_tfm.{name}")
    raise AttributeError(f"module 'funnel_tfm' has no attribute {name!r}")
