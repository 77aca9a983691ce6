"""Test settings: CPU only, quiet TensorFlow logs, full float32 matmuls on every backend, deterministic seeds.

The Keras backend is the environment's (`KERAS_BACKEND`, TensorFlow by default); `test_backends.py` reruns the
backend-neutral tests under JAX and PyTorch in subprocesses.
"""

import os
import sys

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # `helpers`, `model_test_case` from subfolders

import numpy as np  # noqa: E402
import pytest  # noqa: E402

# Tiny RACE / tagger / SQuAD runs and their SavedModels, shared by the export and batch-inference tests: fixtures
# that pytest finds here by name, so each run happens once per session.
from task_runs import (race_run, race_saved_model, squad_run, squad_saved_model, tagger_run,  # noqa: E402
                       tagger_saved_model)

__all__ = ["race_run", "race_saved_model", "squad_run", "squad_saved_model", "tagger_run", "tagger_saved_model"]


def pytest_configure(config):
    _pin_full_float32_matmuls(os.environ.get("KERAS_BACKEND", "tensorflow"))


def _pin_full_float32_matmuls(backend: str) -> None:
    """Parity tolerances (1e-5) assume float32 matmuls: no TF32 or bfloat16 passes on any backend."""
    if backend == "jax":
        import jax
        jax.config.update("jax_default_matmul_precision", "highest")
    elif backend == "torch":
        import torch
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.set_float32_matmul_precision("highest")
    else:
        import tensorflow as tf
        tf.config.experimental.enable_tensor_float_32_execution(False)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
