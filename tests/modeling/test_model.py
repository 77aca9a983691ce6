"""FunnelTFM behaviour beyond parity: outputs, input projection, `null` attention, LM head, saving."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from funnel_tfm.checkpoints import CheckpointError, save_pretrained
from funnel_tfm.layers.head_factories import lm_head
from funnel_tfm.modeling import FunnelTFM
from helpers import make_inputs, randomize_weights, tiny_config

pytestmark = pytest.mark.smoke  # also run on TensorFlow 2.20 in CI (.ci/run)


def test_outputs_and_hidden_count(rng):
    config = tiny_config(block_size="2_1x2_2", decoder_size="1")
    out = FunnelTFM(config)(make_inputs(rng, 16, [16, 10]))
    assert [h.shape[1] for h in out["encoder_hiddens"]] == [16, 16, 8, 8, 4, 4]
    assert out["sequence_output"].shape == (2, 4, 16)
    assert out["decoder_output"].shape == (2, 16, 16)
    assert out["pooled_output"].shape == (2, 16)
    np.testing.assert_array_equal(np.asarray(out["sequence_output"]), np.asarray(out["encoder_hiddens"][-1]))
    base = FunnelTFM(config, use_decoder=False)(make_inputs(rng, 16, [16]))
    assert "decoder_output" not in base


def test_pooled_output_is_tanh_summary_of_first_token(rng):
    model = FunnelTFM(tiny_config())
    randomize_weights(model, rng)
    out = model(make_inputs(rng, 16, [16]))
    first = np.asarray(out["sequence_output"])[:, 0]
    kernel, bias = model.sequence_summary.kernel.numpy(), model.sequence_summary.bias.numpy()
    np.testing.assert_allclose(np.asarray(out["pooled_output"]), np.tanh(first @ kernel + bias), atol=1e-5)


def test_input_projection_when_embedding_is_narrower(rng):
    config = tiny_config(d_embed=8)
    model = FunnelTFM(config)
    names = model.weight_names()
    assert names["input/word_embedding/lookup_table"].shape == (50, 8)
    assert names["encoder/input_projection/kernel"].shape == (8, 16)
    assert model(make_inputs(rng, 16, [16]))["decoder_output"].shape == (1, 16, 16)


def test_null_attention_uses_absolute_embeddings(rng):
    config = tiny_config(rel_attn_type="null")
    model = FunnelTFM(config)
    randomize_weights(model, rng)
    names = model.weight_names()
    assert "input/position_embedding/lookup_table" in names and "input/segment_embedding/lookup_table" in names
    assert not any("r_r_bias" in n or "seg_embed" in n or "r/kernel" in n for n in names)
    inputs = make_inputs(rng, 16, [16])
    base = np.asarray(model(inputs)["decoder_output"])
    # Segment ids enter through the embedding (row seg % 2, so [CLS]=2 reads row 0 like segment A).
    flipped = dict(inputs, segment_ids=np.where(inputs["segment_ids"] == 1, 0, inputs["segment_ids"]))
    assert np.abs(np.asarray(model(flipped)["decoder_output"]) - base).max() > 1e-3
    cls_as_a = dict(inputs, segment_ids=np.where(inputs["segment_ids"] == 2, 0, inputs["segment_ids"]))
    np.testing.assert_allclose(np.asarray(model(cls_as_a)["decoder_output"]), base, atol=1e-6)


def test_padding_does_not_leak_into_real_positions_within_a_block(rng):
    """Keys at padded positions get ~zero attention: changing pad token ids leaves block-0 real outputs alone."""
    model = FunnelTFM(tiny_config())
    randomize_weights(model, rng)
    inputs = make_inputs(rng, 16, [11])
    other = dict(inputs, token_ids=np.where(inputs["padding_mask"] == 1, inputs["token_ids"], 7))
    a, b = model(inputs)["encoder_hiddens"][1], model(other)["encoder_hiddens"][1]
    np.testing.assert_allclose(np.asarray(a)[:, :11], np.asarray(b)[:, :11], atol=1e-6)


def test_lm_head_is_tied_and_float32(rng):
    config = tiny_config(d_embed=8)
    model = FunnelTFM(config, dtype="mixed_bfloat16")
    head = lm_head(config, model.embedding, dtype="mixed_bfloat16")
    inputs = make_inputs(rng, 16, [16, 12])
    positions = np.array([[1, 5, 9], [2, 3, 15]], np.int32)
    with tf.GradientTape() as tape:
        hidden = model(inputs)["decoder_output"]
        logits = head(hidden, positions)
        loss = tf.reduce_mean(logits)
    assert logits.dtype == tf.float32 and logits.shape == (2, 3, 50)
    grad = tape.gradient(loss, model.embedding.word_embedding)
    assert grad is not None and np.abs(tf.convert_to_tensor(grad).numpy()).sum() > 0
    # Numbers: LN(act(h W + b)) · tableᵀ + bias at the gathered positions.
    head32 = lm_head(config, FunnelTFM(config).embedding)
    for name, variable in head32.weight_names().items():
        variable.assign(rng.normal(0, 0.3, variable.shape).astype(np.float32) + (1.0 if "gamma" in name else 0.0))
    h = rng.normal(size=(2, 16, 16)).astype(np.float32)
    got = head32(tf.constant(h), positions).numpy()
    picked = np.take_along_axis(h, positions[:, :, None], axis=1)
    pre = picked @ head32.dense.kernel.numpy() + head32.dense.bias.numpy()
    act = 0.5 * pre * (1 + np.tanh(np.sqrt(2 / np.pi) * (pre + 0.044715 * pre ** 3)))
    norm = (act - act.mean(-1, keepdims=True)) / np.sqrt(act.var(-1, keepdims=True) + 1e-8)
    norm = norm * head32.layer_norm.gamma.numpy() + head32.layer_norm.beta.numpy()
    expected = norm @ head32.embedding.word_embedding.numpy().T + head32.bias.numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert set(head32.weight_names()) == {"lm_proj/dense/kernel", "lm_proj/dense/bias", "lm_proj/layer_norm/gamma",
                                          "lm_proj/layer_norm/beta", "lm_loss/bias"}


def test_save_and_load_our_format_round_trip(tmp_path, rng):
    model = FunnelTFM(tiny_config(d_embed=8, rel_attn_type="factorized"), use_decoder=False)
    randomize_weights(model, rng)
    save_pretrained(model, str(tmp_path / "ours"))
    loaded = FunnelTFM.from_pretrained(str(tmp_path / "ours"))
    assert loaded.config == model.config and not loaded.use_decoder
    inputs = make_inputs(rng, 16, [16, 9])
    np.testing.assert_array_equal(np.asarray(loaded(inputs)["sequence_output"]),
                                  np.asarray(model(inputs)["sequence_output"]))
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging leftovers


def test_from_pretrained_errors_name_the_problem(tmp_path):
    with pytest.raises(CheckpointError, match="no such directory"):
        FunnelTFM.from_pretrained(str(tmp_path / "absent"))
    with pytest.raises(CheckpointError, match="not a checkpoint directory: found none of funnel_config.json"):
        FunnelTFM.from_pretrained(str(tmp_path))
    (tmp_path / "config.json").write_text('{"model_type": "funnel", "block_sizes": [1, 1], "d_model": 16}')
    with pytest.raises(CheckpointError, match="no model.safetensors or pytorch_model.bin"):
        FunnelTFM.from_pretrained(str(tmp_path))
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        FunnelTFM.from_pretrained(str(tmp_path))


def test_the_package_from_pretrained_opens_funnel_and_fnet_directories(tmp_path, rng):
    """`funnel_tfm.from_pretrained` on an FNet directory (transformers' config.json of model_type fnet, or ours)
    is `FNet.from_pretrained`; a config.json of another model type says what it found."""
    import json
    import funnel_tfm
    from funnel_tfm.config_fnet import FNetConfig
    from funnel_tfm.modeling_fnet import FNet
    fnet = FNet(FNetConfig(vocab_size=50, d_embed=16, d_model=16, d_inner=32, n_layer=2, max_seq_length=16))
    randomize_weights(fnet, rng)
    fnet.save_pretrained(str(tmp_path / "ours"), format="keras")
    fnet.save_pretrained(str(tmp_path / "hf"), format="hf")
    inputs = make_inputs(rng, 16, [16, 16])
    expected = np.asarray(fnet(inputs)["sequence_output"])
    for directory in ("ours", "hf"):
        loaded = funnel_tfm.from_pretrained(str(tmp_path / directory))
        assert isinstance(loaded, FNet), directory
        np.testing.assert_allclose(np.asarray(loaded(inputs)["sequence_output"]), expected, atol=1e-6)
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 16}))
    with pytest.raises(CheckpointError, match="neither a Funnel net_config.json"):
        funnel_tfm.from_pretrained(str(tmp_path / "bert"))


def test_keras_archive_round_trip(tmp_path, rng):
    model = FunnelTFM(tiny_config(block_size="2_2"))
    randomize_weights(model, rng)
    model.save(str(tmp_path / "m.keras"))
    loaded = keras.models.load_model(str(tmp_path / "m.keras"))
    assert isinstance(loaded, FunnelTFM) and loaded.config == model.config
    inputs = make_inputs(rng, 16, [16, 9])
    np.testing.assert_array_equal(np.asarray(loaded(inputs)["decoder_output"]),
                                  np.asarray(model(inputs)["decoder_output"]))


def test_get_config_round_trip():
    model = FunnelTFM(tiny_config(block_size="3x2_1"), use_decoder=False)
    clone = FunnelTFM.from_config(model.get_config())
    assert clone.config == model.config and clone.use_decoder is False
    assert sorted(clone.weight_names()) == sorted(model.weight_names())
