"""optimization.py against numpy transcriptions of the original's formulas (semantics P6–P9), with the step pinned."""

import math

import numpy as np
import pytest
import tensorflow as tf

from funnel_tfm.training.optimization import (AdamW, DynamicLossScale, WarmupDecay, layer_lr_multipliers,
                                     weight_decay_applies)


def _reference_lr(step, peak, warmup, total, decay, m):
    if step < warmup:
        progress = step / warmup
        return peak * (progress + (1 - progress) * m)
    fraction = min(step - warmup, total - warmup) / (total - warmup)
    if decay == "cos":
        return peak * ((1 - m) * 0.5 * (1 + math.cos(math.pi * fraction)) + m)
    return (peak - peak * m) * (1 - fraction) + peak * m


@pytest.mark.parametrize("decay", ["poly", "linear", "cos"])
@pytest.mark.parametrize("min_lr_ratio", [0.0, 0.1])
def test_schedule_matches_the_original_formula(decay, min_lr_ratio):
    schedule = WarmupDecay(2e-4, warmup_steps=10, train_steps=110, decay=decay, min_lr_ratio=min_lr_ratio)
    for step in [0, 1, 5, 9, 10, 11, 50, 109, 110, 500]:
        expected = _reference_lr(step, 2e-4, 10, 110, decay, min_lr_ratio)
        assert float(schedule(step)) == pytest.approx(expected, rel=1e-6, abs=2e-4 * 1e-6), step  # float32
    assert float(schedule(0)) == pytest.approx(2e-4 * min_lr_ratio)  # the first step of warmup, m = 0 -> lr 0


def test_poly_power_and_invalid_settings():
    schedule = WarmupDecay(1.0, 0, 100, decay="poly", power=2.0)
    assert float(schedule(50)) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="decay method"):
        WarmupDecay(1.0, 0, 10, decay="exp")
    with pytest.raises(ValueError, match="larger than warmup_steps"):
        WarmupDecay(1.0, 10, 10)


def test_layer_multipliers_follow_the_original_ids():
    names = ["model/input/word_embedding/lookup_table", "model/encoder/input_projection/kernel"]
    names += [f"model/encoder/layer_{i}/ff/layer_1/kernel" for i in range(5)] + ["model/decoder/layer_5/ff/kernel",
                                                                                  "model/lm_loss/bias",
                                                                                  "generator/encoder/layer_0/x"]
    factors = layer_lr_multipliers(names, 0.5)
    assert factors["model/input/word_embedding/lookup_table"] == 0.5 ** 6  # semantics P8: input 1/64
    assert factors["model/encoder/layer_0/ff/layer_1/kernel"] == 0.5 ** 5
    assert factors["model/decoder/layer_5/ff/kernel"] == 1.0
    for undecayed in ("model/encoder/input_projection/kernel", "model/lm_loss/bias", "generator/encoder/layer_0/x"):
        assert factors[undecayed] == 1.0
    assert set(layer_lr_multipliers(names, 1.0).values()) == {1.0}


def test_layer_multipliers_of_fnet_names():
    names = ["model/encoder/embedder/word/embedding", "model/encoder/encoder_0/mixing_layer_norm/scale",
             "model/encoder/feed_forward_0/output/kernel", "model/encoder/self_attention_1/query/kernel",
             "model/encoder/feed_forward_1/output/kernel", "model/encoder/pooler/kernel"]
    factors = layer_lr_multipliers(names, 0.5)
    assert factors["model/encoder/embedder/word/embedding"] == 0.25  # 3 ids (0, 1, 2): input 0.5^2
    assert factors["model/encoder/encoder_0/mixing_layer_norm/scale"] == 0.5
    assert factors["model/encoder/feed_forward_0/output/kernel"] == 0.5
    assert factors["model/encoder/self_attention_1/query/kernel"] == factors["model/encoder/feed_forward_1/output/kernel"] == 1.0
    assert factors["model/encoder/pooler/kernel"] == 1.0


def test_weight_decay_selection():
    assert weight_decay_applies("model/encoder/layer_0/rel_attn/r_w_bias", use_exclusion=True)
    assert not weight_decay_applies("model/encoder/layer_0/ff/layer_norm/gamma", use_exclusion=True)
    assert not weight_decay_applies("model/encoder/layer_0/ff/layer_1/bias", use_exclusion=True)
    assert weight_decay_applies("model/encoder/layer_0/ff/layer_1/kernel", use_exclusion=True)
    assert weight_decay_applies("model/encoder/layer_0/ff/layer_1/bias", use_exclusion=False)


def _apply(optimizer, grads):
    return tf.distribute.get_strategy().run(optimizer.apply_gradients, args=(grads,))


def test_adamw_update_matches_numpy_at_a_pinned_step(rng):
    """Two variables, weight decay on one, layer-wise decay, clipping, after the step was set to 7."""
    values = {"model/encoder/layer_0/ff/layer_1/kernel": rng.normal(size=(3, 4)).astype(np.float32),
              "model/encoder/layer_0/ff/layer_norm/beta": rng.normal(size=(4,)).astype(np.float32),
              "model/encoder/layer_1/ff/layer_1/kernel": rng.normal(size=(4,)).astype(np.float32)}
    variables = {name: tf.Variable(value) for name, value in values.items()}
    schedule = WarmupDecay(1e-2, warmup_steps=4, train_steps=20)
    optimizer = AdamW(variables, schedule, weight_decay=0.01, clip_norm=0.5, lr_layer_decay_rate=0.7,
                      use_wd_exclusion=True)
    optimizer.iterations.assign(7)
    m = {n: rng.normal(size=v.shape).astype(np.float32) * 0.1 for n, v in values.items()}
    v = {n: np.abs(rng.normal(size=v.shape)).astype(np.float32) * 0.01 for n, v in values.items()}
    for i, name in enumerate(values):
        optimizer.m[i].assign(m[name])
        optimizer.v[i].assign(v[name])
    grads = [rng.normal(size=value.shape).astype(np.float32) for value in values.values()]

    stats = _apply(optimizer, [tf.constant(g) for g in grads])

    norm = math.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads))
    assert float(stats["grad_norm"]) == pytest.approx(norm, rel=1e-5)
    lr = _reference_lr(7, 1e-2, 4, 20, "poly", 0.0)
    correction = math.sqrt(1 - 0.99 ** 8) / (1 - 0.9 ** 8)  # step 7 uses exponent t + 1 = 8
    factors = {"model/encoder/layer_0/ff/layer_1/kernel": 0.7, "model/encoder/layer_0/ff/layer_norm/beta": 0.7,
               "model/encoder/layer_1/ff/layer_1/kernel": 1.0}
    for i, (name, value) in enumerate(values.items()):
        g = grads[i].astype(np.float64) * 0.5 / max(norm, 0.5)
        new_m = 0.9 * m[name] + 0.1 * g
        new_v = 0.99 * v[name] + 0.01 * g * g
        update = new_m / (np.sqrt(new_v) + 1e-6)
        if "layer_norm" not in name:
            update = update + 0.01 * value
        expected = value - lr * factors[name] * correction * update
        np.testing.assert_allclose(variables[name].numpy(), expected, rtol=0, atol=1e-6)
        np.testing.assert_allclose(optimizer.m[i].numpy(), new_m, rtol=0, atol=1e-7)
    assert int(optimizer.iterations.numpy()) == 8


def test_non_finite_gradient_is_skipped_and_counted(rng):
    variables = {"model/a": tf.Variable(rng.normal(size=(3,)).astype(np.float32)),
                 "model/b": tf.Variable(rng.normal(size=(2, 2)).astype(np.float32))}
    optimizer = AdamW(variables, 1e-2)
    _apply(optimizer, [tf.ones([3]), tf.ones([2, 2])])
    before = {name: v.numpy().copy() for name, v in variables.items()}
    slots = [s.numpy().copy() for s in optimizer.m + optimizer.v]
    for poison in (np.nan, np.inf):
        stats = _apply(optimizer, [tf.constant([1.0, poison, 1.0]), tf.ones([2, 2])])
        assert not bool(stats["finite"])
    for name, v in variables.items():
        np.testing.assert_array_equal(v.numpy(), before[name])
    for slot, old in zip(optimizer.m + optimizer.v, slots):
        np.testing.assert_array_equal(slot.numpy(), old)
    assert int(optimizer.iterations.numpy()) == 1 and int(optimizer.skipped.numpy()) == 2
    _apply(optimizer, [tf.ones([3]), tf.ones([2, 2])])  # training goes on where it was
    assert int(optimizer.iterations.numpy()) == 2
    assert not np.array_equal(variables["model/a"].numpy(), before["model/a"])


def test_loss_scale_halves_on_overflow_and_grows_after_good_steps():
    scale = DynamicLossScale(initial_scale=8.0, growth_interval=2)
    optimizer = AdamW({"model/a": tf.Variable([1.0, 2.0])}, 1e-3, loss_scale=scale)
    _apply(optimizer, [tf.constant([np.inf, 0.0])])
    assert float(scale.scale.numpy()) == 4.0 and int(optimizer.skipped.numpy()) == 1
    _apply(optimizer, [tf.constant([4.0, 4.0])])
    _apply(optimizer, [tf.constant([4.0, 4.0])])
    assert float(scale.scale.numpy()) == 8.0 and int(optimizer.iterations.numpy()) == 2


def test_gradients_are_unscaled_before_clipping():
    scale = DynamicLossScale(initial_scale=1024.0)
    optimizer = AdamW({"model/a": tf.Variable([0.0, 0.0])}, 1e-3, loss_scale=scale, clip_norm=0.0)
    stats = _apply(optimizer, [tf.constant([3.0 * 1024, 4.0 * 1024])])
    assert float(stats["grad_norm"]) == pytest.approx(5.0)


def test_original_slot_state_round_trip(rng):
    variables = {"model/encoder/layer_0/k": tf.Variable(rng.normal(size=(2, 3)).astype(np.float32))}
    optimizer = AdamW(variables, 1e-3)
    state = {"model/encoder/layer_0/k/adam_m": np.full((2, 3), 0.5, np.float32),
             "model/encoder/layer_0/k/adam_v": np.full((2, 3), 0.25, np.float32), "global_step": np.int64(42)}
    assert len(optimizer.load_slot_state(state, "ckpt")) == 3
    written = optimizer.slot_state()
    assert int(written["global_step"]) == 42
    np.testing.assert_array_equal(written["model/encoder/layer_0/k/adam_v"], state["model/encoder/layer_0/k/adam_v"])
    from funnel_tfm.errors import CheckpointError
    with pytest.raises(CheckpointError, match=r"adam_m has shape \(3, 2\) in the checkpoint but \(2, 3\)"):
        optimizer.load_slot_state({"model/encoder/layer_0/k/adam_m": np.zeros((3, 2), np.float32)}, "ckpt")
