"""Training objectives, one module each: `masked_lm` (MLM), `electra`, `classification` (with `glue_metrics`),
`multiple_choice` (RACE), `squad` (with `squad_metrics`, `squad_postprocess`) and `tagging` (token
classification, with `tagging_metrics`); each a Keras task model + a `Task`.

    task = build_pretraining_task(config, "electra", width_shrink=0.25, disc_coeff=50.0, dtype="mixed_bfloat16")

The names load on first use: the metric modules (`squad_metrics`, `glue_metrics`, `tagging_metrics`) need no
TensorFlow, so `python -m funnel_tfm.squad_eval` starts without it.
"""

from __future__ import annotations

import importlib
from typing import Any

LOSS_TYPES = ("mlm", "electra")

_EXPORTS = {
    "Task": ("funnel_tfm.tasks.base", "Task"),
    "ElectraModel": ("funnel_tfm.tasks.electra", "ElectraModel"),
    "ElectraTask": ("funnel_tfm.tasks.electra", "ElectraTask"),
    "MaskedLMModel": ("funnel_tfm.tasks.masked_lm", "MaskedLMModel"),
    "MaskedLMTask": ("funnel_tfm.tasks.masked_lm", "MaskedLMTask"),
}

__all__ = sorted(["LOSS_TYPES", "build_pretraining_task", *_EXPORTS])


def build_pretraining_task(config: Any, loss_type: str, width_shrink: float = 0.25,
                           disc_coeff: float = 50.0, dtype: Any = None) -> Any:
    """The MLM or ELECTRA task (`loss_type` in any case); create under `strategy.scope()` to distribute it."""
    loss_type = loss_type.lower()
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
