"""Reading a PyTorch state dict safely: tensors only, as float32 numpy arrays, or one CheckpointError.

    state = read_torch_state("out/pytorch_model.bin", "a transformers pytorch_model.bin")   # {name: np.ndarray}

`torch.load(..., weights_only=True)` refuses pickled code (a crafted file cannot run anything); what it lets
through that is not a {name: tensor} mapping is an error naming the file and the values at fault.
"""

from __future__ import annotations

import numpy as np

from funnel_tfm.errors import CheckpointError


def read_torch_state(path: str, what: str) -> dict[str, np.ndarray]:
    """{name: float32 array} of the state dict at `path`; `what` names the file kind in the errors."""
    try:
        import torch
    except ImportError:
        raise CheckpointError(f"{path}: reading {what} needs PyTorch (pip install torch==2.13.0)") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises its own types for truncated, foreign and unsafe files
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise CheckpointError(f"{path}: not a readable PyTorch state dict ({first})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state dict, found {type(state).__name__}")
    not_tensors = [f"{k} ({type(v).__name__})" for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise CheckpointError(f"{path}: a state dict maps names to tensors; {len(not_tensors)} values are not: "
                              f"{', '.join(not_tensors[:5])}")
    return {key: tensor.float().numpy() for key, tensor in state.items()}
