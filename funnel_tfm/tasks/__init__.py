"""Training objectives, one module each: `masked_lm` (MLM), `electra`, `fnet_pretraining` (FNet's MLM, MLM + NSP),
`classification` (with `glue_metrics`),
`multiple_choice` (RACE), `squad` (with `squad_metrics`, `squad_postprocess`) and `tagging` (token
classification, with `tagging_metrics`); each a Keras task model + a `Task`.

    task = build_pretraining_task(config, "electra", width_shrink=0.25, disc_coeff=50.0, dtype="mixed_bfloat16")
    task = build_pretraining_task(named_fnet_config("FNet-Base"), "mlm_nsp")      # FNet's own objective

The task models build their backbone through `backbones.build_backbone`: a Funnel (hybrids included) or FNet.

The names load on first use: the metric modules (`squad_metrics`, `glue_metrics`, `tagging_metrics`) need no
TensorFlow, so `python -m funnel_tfm.squad_eval` starts without it.
"""

from __future__ import annotations

import importlib
from typing import Any

LOSS_TYPES = ("mlm", "electra", "mlm_nsp")
FNET_LOSS_TYPES = ("mlm", "mlm_nsp")     # FNet has no ELECTRA generator (its embedder cannot be shared by width)
FUNNEL_LOSS_TYPES = ("mlm", "electra")   # the Funnel has no next-sentence head

_EXPORTS = {
    "Task": ("funnel_tfm.tasks.base", "Task"),
    "ElectraModel": ("funnel_tfm.tasks.electra", "ElectraModel"),
    "ElectraTask": ("funnel_tfm.tasks.electra", "ElectraTask"),
    "FNetPretrainingTask": ("funnel_tfm.tasks.fnet_pretraining", "FNetPretrainingTask"),
    "MaskedLMModel": ("funnel_tfm.tasks.masked_lm", "MaskedLMModel"),
    "MaskedLMTask": ("funnel_tfm.tasks.masked_lm", "MaskedLMTask"),
}

__all__ = sorted(["FNET_LOSS_TYPES", "FUNNEL_LOSS_TYPES", "LOSS_TYPES", "build_pretraining_task", *_EXPORTS])


def build_pretraining_task(config: Any, loss_type: str, width_shrink: float = 0.25,
                           disc_coeff: float = 50.0, dtype: Any = None) -> Any:
    """The MLM or ELECTRA task of a Funnel config, the MLM or MLM + NSP task of an FNet config (`loss_type` in any
    case); a ValueError names the loss types the config's architecture accepts. Create under `strategy.scope()`
    to distribute it."""
    loss_type = loss_type.lower()
    from funnel_tfm.config_fnet import FNetConfig
    if isinstance(config, FNetConfig):
        if loss_type not in FNET_LOSS_TYPES:
            raise ValueError(f"loss_type {loss_type!r} for an FNet config; expected one of {', '.join(FNET_LOSS_TYPES)}"
                             f" (ELECTRA's generator shares the discriminator's embedding, which FNet's projection "
                             f"ties to one width)")
        from funnel_tfm.tasks.fnet_pretraining import FNetPretrainingTask
        return FNetPretrainingTask.build(config, next_sentence=loss_type == "mlm_nsp", dtype=dtype)
    if loss_type == "mlm_nsp":
        raise ValueError("loss_type 'mlm_nsp' is FNet's objective (an FNet --model_config, e.g. FNet-Base); a Funnel "
                         f"config takes one of {', '.join(FUNNEL_LOSS_TYPES)}")
    if loss_type == "mlm":
        from funnel_tfm.tasks.masked_lm import MaskedLMTask
        return MaskedLMTask.build(config, dtype=dtype)
    if loss_type == "electra":
        from funnel_tfm.tasks.electra import ElectraTask
        return ElectraTask.build(config, width_shrink, disc_coeff, dtype=dtype)
    raise ValueError(f"loss_type {loss_type!r}; expected one of {', '.join(LOSS_TYPES)}")


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module, attribute = _EXPORTS[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'funnel_tfm.tasks' has no attribute {name!r}")
