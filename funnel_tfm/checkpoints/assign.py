"""The one place where checkpoint values are assigned to variables by name, with a shape check.

    result = assign_by_name(model.weight_names(), {"encoder/layer_0/ff/layer_1/kernel": array}, source="ckpt")
    result.assigned, result.missing, result.unused      # names, in the order of `targets` / sorted

A value whose shape differs from its variable's is a CheckpointError that names the variable, both shapes and
the source, raised before anything is assigned, so a failed load never leaves a model half overwritten.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np

from funnel_tfm.errors import CheckpointError


@dataclasses.dataclass
class AssignResult:
    assigned: list[str]   # target names that received a value
    missing: list[str]    # target names with no value
    unused: list[str]     # value names with no target (sorted)


def assign_by_name(targets: Mapping[str, Any], values: Mapping[str, Any], source: str,
                   where: str = "the model") -> AssignResult:
    """Assigns `values[name]` to `targets[name]` (Keras or tf variables) for every name both hold."""
    pairs = [(name, variable, values[name]) for name, variable in targets.items() if name in values]
    for name, variable, value in pairs:
        if tuple(np.shape(value)) != tuple(variable.shape):
            raise CheckpointError(f"{source}: {name} has shape {tuple(np.shape(value))} in the checkpoint but "
                                  f"{tuple(variable.shape)} in {where}")
    for _, variable, value in pairs:
        variable.assign(np.asarray(value, np.float32) if np.asarray(value).dtype.kind == "f" else value)
    return AssignResult(assigned=[name for name, _, _ in pairs],
                        missing=[name for name in targets if name not in values],
                        unused=sorted(set(values) - set(targets)))
