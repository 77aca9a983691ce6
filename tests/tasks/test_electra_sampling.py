"""ELECTRA's Gumbel-max replacement sampler: draws follow the generator's softmax, and an example's draw depends
only on its own (seed, step, example) seed pair, not on the batch it sits in (replica-count independence)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from funnel_tfm.tasks.electra import gumbel_max_sample


def _seeds(count: int, step: int = 7) -> tf.Tensor:
    return tf.stack([tf.fill([count], tf.constant(step, tf.int64)), tf.range(count, dtype=tf.int64)], axis=1)


def test_draws_follow_the_softmax():
    logits = np.log(np.array([0.1, 0.2, 0.3, 0.4], np.float32))
    batch = np.broadcast_to(logits, (4000, 3, 4)).copy()  # 12,000 draws from one distribution
    samples = gumbel_max_sample(tf.constant(batch), _seeds(4000)).numpy().ravel()
    frequencies = np.bincount(samples, minlength=4) / samples.size
    np.testing.assert_allclose(frequencies, [0.1, 0.2, 0.3, 0.4], atol=0.015)


def test_an_examples_draw_does_not_depend_on_its_batch():
    rng = np.random.default_rng(0)
    logits = tf.constant(rng.normal(size=(6, 5, 50)).astype(np.float32))
    seeds = _seeds(6)
    whole = gumbel_max_sample(logits, seeds).numpy()
    halves = np.concatenate([gumbel_max_sample(logits[:3], seeds[:3]).numpy(),
                             gumbel_max_sample(logits[3:], seeds[3:]).numpy()])
    np.testing.assert_array_equal(whole, halves)
    other_step = gumbel_max_sample(logits, _seeds(6, step=8)).numpy()
    assert (other_step != whole).mean() > 0.5  # a new step draws anew
