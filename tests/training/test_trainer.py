"""The training step: gradient accumulation gives the update of the whole batch."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from funnel_tfm.config import ModelConfig
from funnel_tfm.tasks.squad import SquadTask
from funnel_tfm.training.optimization import AdamW, WarmupDecay
from funnel_tfm.training.trainer import Trainer

CONFIG = ModelConfig(block_size="1_1", d_model=32, d_embed=32, n_head=2, d_head=16, d_inner=64, vocab_size=500,
                     dropout=0.0, dropatt=0.0, dropact=0.0)


def squad_batches(rng: np.random.Generator, count: int, batch: int, length: int = 16) -> list[dict[str, np.ndarray]]:
    out = []
    for _ in range(count):
        p_mask = np.zeros((batch, length), np.float32)
        p_mask[:, 1:4] = 1.0
        starts = rng.integers(4, length - 2, batch)
        out.append({"token_ids": rng.integers(5, 500, (batch, length)).astype(np.int32),
                    "segment_ids": np.zeros((batch, length), np.int32),
                    "padding_mask": np.ones((batch, length), np.int32), "p_mask": p_mask,
                    "cls_index": np.zeros(batch, np.int32), "start_positions": starts.astype(np.int32),
                    "end_positions": (starts + rng.integers(0, 2, batch)).astype(np.int32),
                    "is_impossible": rng.integers(0, 2, batch).astype(np.float32),
                    "is_real_example": np.ones(batch, np.int32)})
    return out


def train_weights(accumulation_steps: int, batches: list[dict[str, np.ndarray]]
                  ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(initial, trained) weights."""
    keras.utils.set_random_seed(0)
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        task = SquadTask.build(CONFIG)
        # A large epsilon makes the update about linear in the gradient: Adam's g / sqrt(v) would blow rounding
        # noise up to a full step where a gradient is zero in exact arithmetic (the start logits' bias).
        optimizer = AdamW(task.trainable_variables(), WarmupDecay(1e-1, 0, 10), epsilon=1.0, clip_norm=1.0)
        trainer = Trainer(strategy, task, optimizer, global_batch_size=len(batches[0]["token_ids"]),
                          jit_compile=False, accumulation_steps=accumulation_steps)
    initial = [v.numpy() for v in optimizer.variables_]
    dataset = tf.data.Dataset.from_tensor_slices({k: np.stack([b[k] for b in batches]) for k in batches[0]})
    means = trainer.run_steps(trainer.distribute(lambda context: dataset), len(batches))
    assert np.isfinite(means["loss"])
    return initial, [v.numpy() for v in optimizer.variables_]


def test_accumulated_micro_batches_give_the_whole_batch_update():
    batches = squad_batches(np.random.default_rng(1), count=2, batch=8)
    (initial, whole), (_, accumulated) = train_weights(1, batches), train_weights(4, batches)
    assert any(np.abs(w - w0).max() > 1e-3 for w, w0 in zip(whole, initial))  # they move
    for w, a in zip(whole, accumulated):
        np.testing.assert_allclose(a, w, atol=1e-6, rtol=1e-5)


def test_micro_batches_must_divide_the_batch():
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        task = SquadTask.build(CONFIG)
        optimizer = AdamW(task.trainable_variables(), WarmupDecay(1e-3, 0, 10))
        with pytest.raises(ValueError, match="per-replica batch 8 is not divisible into 3 accumulation steps"):
            Trainer(strategy, task, optimizer, global_batch_size=8, accumulation_steps=3)
