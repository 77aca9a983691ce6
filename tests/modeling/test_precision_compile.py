"""Mixed precision (bfloat16, float16) and XLA compilation of the forward and backward pass."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from funnel_tfm.modeling import FunnelTFM
from helpers import copy_weights, make_inputs, tiny_config

# Measured (D=32, L=16, both positional forms): max abs deviation from float32 of the post-LayerNorm outputs
# (O(1) values) 0.027-0.041 for bfloat16 (8-bit mantissa) and 0.0035-0.0054 for float16 (11-bit); relative L2
# error of the whole gradient 0.007-0.010 (bfloat16) and 0.0013 (float16). Bounds leave a margin of 2.5-4x.
OUTPUT_TOLERANCE = {"mixed_bfloat16": 0.1, "mixed_float16": 0.02}
GRADIENT_TOLERANCE = {"mixed_bfloat16": 0.04, "mixed_float16": 0.005}


def loss_and_gradients(model, inputs):
    with tf.GradientTape() as tape:
        outputs = model(inputs, training=False)
        loss = (tf.reduce_mean(tf.square(tf.cast(outputs["decoder_output"], tf.float32)))
                + tf.reduce_mean(tf.cast(outputs["pooled_output"], tf.float32)))
    gradients = tape.gradient(loss, model.trainable_variables)
    return outputs, loss, gradients


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
@pytest.mark.parametrize("attention", ["rel_shift", "factorized"])
def test_mixed_precision_close_to_float32(rng, policy, attention):
    config = tiny_config(rel_attn_type=attention, d_model=32, d_embed=32, d_inner=64, n_head=4, d_head=8)
    reference = FunnelTFM(config)
    mixed = FunnelTFM(config, dtype=policy)
    copy_weights(reference, mixed)
    inputs = make_inputs(rng, 16, [16, 11])
    ref_out, ref_loss, ref_grads = loss_and_gradients(reference, inputs)
    out, loss, grads = loss_and_gradients(mixed, inputs)

    compute_dtype = tf.bfloat16 if policy == "mixed_bfloat16" else tf.float16
    assert out["decoder_output"].dtype == compute_dtype
    assert all(v.dtype == tf.float32 for v in mixed.trainable_variables)  # weights stay float32
    for key in ("sequence_output", "decoder_output", "pooled_output"):
        values = np.asarray(tf.cast(out[key], tf.float32))
        assert np.all(np.isfinite(values)), key
        np.testing.assert_allclose(values, np.asarray(ref_out[key]), rtol=0, atol=OUTPUT_TOLERANCE[policy],
                                   err_msg=key)
    flat = np.concatenate([np.ravel(tf.convert_to_tensor(g).numpy()) for g in grads])
    ref_flat = np.concatenate([np.ravel(tf.convert_to_tensor(g).numpy()) for g in ref_grads])
    assert np.all(np.isfinite(flat))
    assert np.linalg.norm(flat - ref_flat) / np.linalg.norm(ref_flat) < GRADIENT_TOLERANCE[policy]


def test_float16_masking_does_not_overflow(rng):
    """The 1e6 mask penalty is applied in float32: a fully padded tail row stays finite under float16."""
    config = tiny_config()
    model = FunnelTFM(config, dtype="mixed_float16")
    inputs = make_inputs(rng, 16, [16, 3])
    outputs = model(inputs)
    for hidden in outputs["encoder_hiddens"] + [outputs["decoder_output"]]:
        assert np.all(np.isfinite(np.asarray(tf.cast(hidden, tf.float32))))


@pytest.mark.parametrize("attention", ["rel_shift", "factorized"])
def test_xla_forward_and_backward_compile_once(rng, attention):
    config = tiny_config(rel_attn_type=attention, dropout=0.1, dropatt=0.1)
    model = FunnelTFM(config)

    @tf.function(jit_compile=True)
    def forward(inputs):
        return model(inputs, training=False)

    @tf.function(jit_compile=True)
    def train_gradients(inputs):
        with tf.GradientTape() as tape:
            outputs = model(inputs, training=True)
            loss = tf.reduce_mean(tf.square(outputs["decoder_output"])) + tf.reduce_mean(outputs["pooled_output"])
        return loss, tape.gradient(loss, model.trainable_variables)

    first = {k: tf.constant(v) for k, v in make_inputs(rng, 16, [16, 12, 9, 16]).items()}
    second = {k: tf.constant(v) for k, v in make_inputs(rng, 16, [10, 16, 16, 5]).items()}
    for batch in (first, second):
        compiled = forward(batch)
        eager = model(batch, training=False)
        np.testing.assert_allclose(np.asarray(compiled["decoder_output"]), np.asarray(eager["decoder_output"]),
                                   rtol=0, atol=1e-5)
        loss, gradients = train_gradients(batch)
        assert np.isfinite(loss.numpy()) and all(np.all(np.isfinite(tf.convert_to_tensor(g).numpy())) for g in gradients)
    assert forward.experimental_get_tracing_count() == 1
    assert train_gradients.experimental_get_tracing_count() == 1


def test_dynamic_batch_dimension_traces_once(rng):
    """A batch dimension of None (e.g. a serving signature) works; only the length must be static."""
    model = FunnelTFM(tiny_config())
    spec = {"token_ids": tf.TensorSpec([None, 16], tf.int32), "segment_ids": tf.TensorSpec([None, 16], tf.int32),
            "padding_mask": tf.TensorSpec([None, 16], tf.int32)}
    forward = tf.function(lambda x: model(x)["decoder_output"], input_signature=[spec])
    for rows in ([16, 12], [16, 12, 9]):
        out = forward(make_inputs(rng, 16, rows))
        assert out.shape == (len(rows), 16, 16)
    assert forward.experimental_get_tracing_count() == 1


def test_dropout_is_active_only_in_training(rng):
    model = FunnelTFM(tiny_config(dropout=0.3, dropatt=0.3))
    inputs = make_inputs(rng, 16, [16])
    a, b = model(inputs, training=False), model(inputs, training=False)
    np.testing.assert_array_equal(np.asarray(a["decoder_output"]), np.asarray(b["decoder_output"]))
    c = model(inputs, training=True)
    assert np.abs(np.asarray(c["decoder_output"]) - np.asarray(a["decoder_output"])).max() > 1e-3
