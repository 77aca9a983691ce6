"""Timing helpers shared by `describe` and `bench/`: random inputs and a warm median wall time.

    inputs = random_inputs(config, batch_size=8, seq_len=128, seed=0)
    seconds = median_seconds(lambda: forward(inputs), repeats=5)
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

import numpy as np

from funnel_tfm.config import ModelConfig


def random_inputs(config: ModelConfig, batch_size: int, seq_len: int, seed: int = 0,
                  pad_rows: bool = True) -> dict[str, np.ndarray]:
    """Token ids, two segments with [CLS] segment 2, and a padding mask (every other row padded if `pad_rows`)."""
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(5, config.vocab_size, size=(batch_size, seq_len)).astype(np.int32)
    segment_ids = np.zeros((batch_size, seq_len), np.int32)
    segment_ids[:, seq_len // 2:] = 1
    segment_ids[:, 0] = 2
    padding_mask = np.ones((batch_size, seq_len), np.int32)
    if pad_rows:
        padding_mask[1::2, seq_len - seq_len // 8:] = 0
    return {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask}


def median_seconds(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of `fn()` after `warmup` untimed calls (which include tracing / compilation)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine_description() -> str:
    import os
    import platform
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"
