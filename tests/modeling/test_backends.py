"""The backend-neutral model on the JAX and PyTorch backends: the transformers parity slice and the model
harness run in a fresh process per backend (Keras picks its backend once per process)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_backend_neutral_tests_pass_on(backend):
    pytest.importorskip(backend)
    env = {**os.environ, "KERAS_BACKEND": backend}
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:warnings", "-m", "backend_slice",
               os.path.join(TESTS, "test_parity_hf.py"), os.path.join(TESTS, "test_modeling_harness.py"),
               os.path.join(TESTS, "test_dropout.py")]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1200, cwd=TESTS)
    counts = dict((word, int(number)) for number, word in re.findall(r"(\d+) (passed|failed|skipped|error)",
                                                                     result.stdout))
    assert result.returncode == 0, f"{backend}: {counts}\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    assert counts.get("passed", 0) >= 12 and not counts.get("skipped"), counts
