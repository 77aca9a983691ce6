"""TensorFlow, funnel_tfm and torch/transformers (with Triton) in one process, in every import order.

Each case is a fresh interpreter: the crash being guarded against is a segmentation fault at import time
(funnel_tfm/llvm_isolation.py says why), which would take the test process down with it. The Triton cases run
where Triton is installed, which is what the Linux torch wheels of the public index bring (CI's public-index
pass); with the CPU build of torch there is no Triton and nothing to guard.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from funnel_tfm import llvm_isolation

HAS_TRITON = importlib.util.find_spec("triton") is not None
needs_triton = pytest.mark.skipif(not HAS_TRITON, reason="Triton is not installed (CPU build of torch)")

TINY_HF_FUNNEL = ("from transformers import FunnelConfig, FunnelModel; "
                  "FunnelModel(FunnelConfig(d_model=32, n_head=2, d_head=16, d_inner=64, block_sizes=[1, 1]))")


def run_python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)


def test_preload_reports_what_it_did():
    status = llvm_isolation.preload_triton()  # funnel_tfm's import already ran it once in this process
    if not HAS_TRITON:
        assert status in ("not installed", "unsupported platform")
    else:
        assert status in ("already loaded", "preloaded"), status


@needs_triton
def test_without_the_guard_triton_after_tensorflow_crashes():
    """The control: the clash is real here, so the cases below prove the guard, not luck."""
    result = run_python("import tensorflow; import triton")
    assert result.returncode == -11, (result.returncode, result.stderr[-2000:])


@needs_triton
@pytest.mark.parametrize("code", [
    "import tensorflow; import funnel_tfm; import triton",
    "import funnel_tfm; import tensorflow_text; import triton",
    "import funnel_tfm; import triton; import tensorflow",
    f"import tensorflow; import transformers; import funnel_tfm; {TINY_HF_FUNNEL}",
    f"import funnel_tfm.data.tokenization; {TINY_HF_FUNNEL}",
    "import tensorflow; import funnel_tfm; import torch; assert float(torch.compile(lambda x: x * 2)(torch.ones(3)).sum()) == 6",
], ids=["tf-ours-triton", "ours-tftext-triton", "ours-triton-tf", "tf-transformers-ours-model",
        "our-tokenizer-then-hf-model", "tf-ours-torch.compile"])
def test_tensorflow_and_triton_share_a_process(code):
    result = run_python(code + "; print('ok')")
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), (result.returncode, result.stderr[-3000:])


@needs_triton
def test_the_guard_keeps_tensorflow_working():
    """Both libraries work after the preload: a TF op and Triton's own LLVM-backed IR context."""
    code = ("import funnel_tfm, tensorflow as tf, triton; from triton._C.libtriton import ir; "
            "ctx = ir.context(); ir.load_dialects(ctx); assert float(tf.reduce_sum(tf.ones(4))) == 4.0")
    result = run_python(code + "; print('ok')")
    assert result.returncode == 0 and "ok" in result.stdout, (result.returncode, result.stderr[-3000:])
