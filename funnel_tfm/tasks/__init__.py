"""Training objectives, one module each: `masked_lm` (MLM), `electra`, `classification` (with `glue_metrics`),
`multiple_choice` (RACE), and `tagging_metrics`;
each a Keras task model + a `Task`.

    task = build_pretraining_task(config, "electra", width_shrink=0.25, disc_coeff=50.0, dtype="mixed_bfloat16")
"""

from __future__ import annotations

from typing import Any

from funnel_tfm.config import ModelConfig
from funnel_tfm.tasks.base import Task
from funnel_tfm.tasks.electra import ElectraModel, ElectraTask
from funnel_tfm.tasks.masked_lm import MaskedLMModel, MaskedLMTask

LOSS_TYPES = ("mlm", "electra")

__all__ = ["LOSS_TYPES", "ElectraModel", "ElectraTask", "MaskedLMModel", "MaskedLMTask", "Task",
           "build_pretraining_task"]


def build_pretraining_task(config: ModelConfig, loss_type: str, width_shrink: float = 0.25,
                           disc_coeff: float = 50.0, dtype: Any = None) -> Task:
    """The MLM or ELECTRA task (`loss_type` in any case); create under `strategy.scope()` to distribute it."""
    loss_type = loss_type.lower()
    if loss_type == "mlm":
        return MaskedLMTask.build(config, dtype=dtype)
    if loss_type == "electra":
        return ElectraTask.build(config, width_shrink, disc_coeff, dtype=dtype)
    raise ValueError(f"loss_type {loss_type!r}; expected one of {', '.join(LOSS_TYPES)}")
