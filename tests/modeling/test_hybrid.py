"""The hybrids (docs/fnet_semantics.md N8, N9): a Funnel whose blocks choose their token mixer, and an FNet with
the original f_net's attention layers, through the config, the model, `describe` and our checkpoint format.

The pooling layer of a Fourier block and the hybrid attention mask are checked against numpy references written
from the semantics document; the layouts against the original's rule evaluated by hand. Tests marked
`backend_slice` are rerun on JAX by `test_hybrid_slice_passes_on[jax]` (forward passes only, no JAX compile of a
training step; marked slow: the fresh process alone takes ~40 s here).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from funnel_tfm.analysis import flops
from funnel_tfm.checkpoints.loading import build_checkpoint, export, from_model, save_pretrained
from funnel_tfm.config import ConfigError, ModelConfig, load_config, named_config
from funnel_tfm.config_fnet import FNetConfig
from funnel_tfm.errors import CheckpointError
from funnel_tfm.layers import pooling
from funnel_tfm.modeling import FunnelTFM
from funnel_tfm.modeling_fnet import FNet, FNetPreTrainingModel
from helpers import copy_weights, make_inputs, randomize_weights, tiny_config
from model_test_case import run_model_test, to_numpy

SLICE = pytest.mark.backend_slice
TESTS = os.path.dirname(os.path.abspath(__file__))
HYBRID = "fourier_attention_attention"


def tiny_fnet(**changes) -> FNetConfig:
    values = dict(vocab_size=50, d_embed=16, d_model=16, d_inner=32, n_layer=4, max_seq_length=16, dropout=0.0,
                  attention_dropout=0.0, n_head=4, num_attention_layers=2, attention_layout="top")
    values.update(changes)
    return FNetConfig(**values)


def fnet_inputs(rng, seq_len: int, real_lengths: list[int]) -> dict:
    """FNet conventions (N7): type 0 for [CLS] and segment A, 1 for B; pads id 0, mask 0."""
    inputs = make_inputs(rng, seq_len, real_lengths)
    inputs["segment_ids"] = np.where(inputs["segment_ids"] == 2, 0, inputs["segment_ids"]).astype(np.int32)
    return inputs


def outputs_of(model, inputs) -> dict:
    out = model(inputs)
    return {key: to_numpy(value) for key, value in out.items() if key != "encoder_hiddens"}


def max_diff(a: dict, b: dict) -> float:
    return max(float(np.abs(a[key] - b[key]).max()) for key in a)


# ------------------------------------------------------------------------------------------- config
def test_config_mixers_names_json_and_formats(tmp_path):
    config = tiny_config(block_mixers=HYBRID, use_fft=False)
    assert config.block_mixer_list == ("fourier", "attention", "attention")
    assert config.param_layer_mixers() == ("fourier", "fourier", "attention", "attention", "attention")
    config.to_json(str(tmp_path / "c.json"))
    assert ModelConfig.from_json(str(tmp_path / "c.json")) == config
    old = {k: v for k, v in tiny_config().to_dict().items() if k not in ("block_mixers", "use_fft")}
    assert ModelConfig.from_dict(old) == tiny_config()  # configs written before the hybrid still load

    b4f = named_config("B4F-4-4H768")
    assert b4f == named_config("B4-4-4H768").replace(block_mixers=HYBRID) == load_config("B4F-4-4H768")
    assert named_config("B6-3x2F-3x2FH768").block_mixer_list == ("attention", "fourier", "fourier")
    assert named_config("B4F-4F-4FH768").block_mixers == "fourier"

    with pytest.raises(ConfigError, match="names 2 mixers but block_size '2_1x2_2' has 3 blocks"):
        tiny_config(block_mixers="fourier_attention")
    with pytest.raises(ConfigError, match="unknown mixer 'fnet'"):
        tiny_config(block_mixers="fnet")
    with pytest.raises(ConfigError, match="transformers' Funnel attends in every layer"):
        config.to_hf_dict()
    with pytest.raises(ConfigError, match="original net_config.json has no token-mixer key"):
        config.to_json(str(tmp_path / "net_config.json"), original=True)


def test_fnet_layouts_follow_the_original_rule():
    """N9: the original's `_is_attention_layer`, evaluated by hand for 12 layers."""
    expected = {("bottom", 2): (0, 1), ("middle", 2): (5, 6), ("mixed", 2): (0, 6), ("top", 2): (10, 11),
                ("middle", 3): (5, 6, 7), ("mixed", 5): (0, 2, 4, 6, 8, 10), ("top", 0): ()}
    for (layout, count), layers in expected.items():
        assert FNetConfig(num_attention_layers=count, attention_layout=layout).attention_layers() == layers
    with pytest.raises(ConfigError, match="n_head must divide it"):
        tiny_fnet(n_head=3)
    with pytest.raises(ConfigError, match="layers \\[2, 3\\] attend"):
        tiny_fnet().to_hf_dict()
    assert tiny_fnet(n_head=3, num_attention_layers=0).attention_layers() == ()  # heads unused without attention


# ------------------------------------------------------------------------------------------- Funnel hybrid
def test_funnel_hybrid_harness(tmp_path, rng):
    """Build, call, summary, get_config, .keras round trip and one fit step, Fourier block 0 on the DFT path."""
    inputs = make_inputs(rng, 16, [16, 11])
    run_model_test(FunnelTFM, {"config": tiny_config(block_mixers=HYBRID, use_fft=False)}, inputs, tmp_path,
                   expected_shapes={"sequence_output": (2, 4, 16), "decoder_output": (2, 16, 16)},
                   train_output=lambda out: out["decoder_output"])


@SLICE
@pytest.mark.parametrize("mixers,pool_q_only", [(HYBRID, True), ("attention_fourier_attention", True),
                                                ("attention_fourier_attention", False), ("fourier", True)])
def test_funnel_fft_and_dft_agree(rng, mixers, pool_q_only):
    inputs = make_inputs(rng, 16, [16, 11])
    fft = FunnelTFM(tiny_config(block_mixers=mixers, pool_q_only=pool_q_only))
    randomize_weights(fft, rng, scale=0.1)
    dft = FunnelTFM(tiny_config(block_mixers=mixers, pool_q_only=pool_q_only, use_fft=False))
    copy_weights(fft, dft)
    a, b = outputs_of(fft, inputs), outputs_of(dft, inputs)
    assert a["sequence_output"].shape == (2, 4, 16) and a["decoder_output"].shape == (2, 16, 16)
    assert np.isfinite(a["decoder_output"]).all() and max_diff(a, b) <= 1e-5


def test_all_attention_mixers_equal_the_plain_funnel(rng):
    """block_mixers spelled out as attention everywhere builds and computes exactly the default Funnel."""
    inputs = make_inputs(rng, 16, [16, 9])
    plain = FunnelTFM(tiny_config())
    randomize_weights(plain, rng)
    spelled = FunnelTFM(tiny_config(block_mixers="attention_attention_attention", use_fft=False))
    assert sorted(spelled.weight_names()) == sorted(plain.weight_names())
    copy_weights(plain, spelled)
    a, b = outputs_of(plain, inputs), outputs_of(spelled, inputs)
    assert all(np.array_equal(a[key], b[key]) for key in a)


def _reference_fourier_layer(layer, residual, mixed):
    """N8 in numpy: LN(residual + mixed), then LN(h + W2·gelu(W1·h)) with the layer's weights (eps 1e-8)."""
    def norm(x, gamma, beta):
        centered = x - x.mean(-1, keepdims=True)
        return centered / np.sqrt((centered ** 2).mean(-1, keepdims=True) + 1e-8) * gamma + beta

    w = {k: to_numpy(v) for k, v in layer.weight_names().items()}
    h = norm(residual + mixed, w["fourier/layer_norm/gamma"], w["fourier/layer_norm/beta"])
    inner = h @ w["ff/layer_1/kernel"] + w["ff/layer_1/bias"]
    inner = 0.5 * inner * (1 + np.tanh(np.sqrt(2 / np.pi) * (inner + 0.044715 * inner ** 3)))
    return norm(h + inner @ w["ff/layer_2/kernel"] + w["ff/layer_2/bias"], w["ff/layer_norm/gamma"],
                w["ff/layer_norm/beta"])


@pytest.mark.parametrize("pool_q_only", [True, False])
def test_fourier_pooling_layer_semantics(rng, pool_q_only):
    """N8: the first layer of a pooled Fourier block adds to the pooled residual the pooled mixing of the
    unpooled sequence (pool_q_only) or the mixing of the pooled sequence; pads are mixed (no mask)."""
    config = tiny_config(block_size="2_1", decoder_size="0", block_mixers="attention_fourier", pool_q_only=pool_q_only)
    model = FunnelTFM(config, use_decoder=False)
    randomize_weights(model, rng, scale=0.1)
    inputs = make_inputs(rng, 16, [16, 10])
    out = model(inputs)
    before = to_numpy(out["encoder_hiddens"][1])

    def pool(x):
        return to_numpy(pooling.pool_sequence(x, "mean", True, True, 2))

    mixed = (pool(np.fft.fft2(before).real) if pool_q_only else np.fft.fft2(pool(before)).real)
    expected = _reference_fourier_layer(model.encoder_layers[2], pool(before), mixed)
    np.testing.assert_allclose(to_numpy(out["sequence_output"]), expected, rtol=0, atol=2e-5)


def test_fourier_blocks_mix_pad_tokens(rng):
    """The padding rule (N7, N8): real tokens' outputs depend on what the pads hold once a block is Fourier."""
    inputs = make_inputs(rng, 16, [9, 9])  # pooled tokens 0-2 of the last block come from real tokens only
    other = dict(inputs, token_ids=np.where(inputs["padding_mask"] == 1, inputs["token_ids"], 7).astype(np.int32))
    for mixers, depends in (("attention", False), (HYBRID, True)):
        model = FunnelTFM(tiny_config(block_mixers=mixers), use_decoder=False)
        a, b = (to_numpy(model(x)["sequence_output"])[:, :3] for x in (inputs, other))
        assert (not np.allclose(a, b, atol=1e-6)) == depends, mixers


def test_funnel_hybrid_save_load_round_trip(tmp_path, rng):
    model = FunnelTFM(tiny_config(block_mixers=HYBRID))
    randomize_weights(model, rng, scale=0.1)
    inputs = make_inputs(rng, 16, [16, 12])
    save_pretrained(model, str(tmp_path / "ours"))
    written = json.loads((tmp_path / "ours" / "funnel_config.json").read_text())
    assert written["block_mixers"] == HYBRID
    assert not any("layer_0/rel_attn" in name for name in model.weight_names())
    loaded = FunnelTFM.from_pretrained(str(tmp_path / "ours"))
    assert loaded.config == model.config and not loaded.load_report.missing
    a, b = outputs_of(model, inputs), outputs_of(loaded, inputs)
    assert all(np.array_equal(a[key], b[key]) for key in a)
    for to in ("hf", "original"):
        with pytest.raises(CheckpointError, match=f"which the '{to}' format cannot express"):
            export(from_model(model), str(tmp_path / to), to=to)
        assert not (tmp_path / to).exists()


def test_mixer_mismatch_is_a_clear_error(tmp_path):
    attention = FunnelTFM(tiny_config(), use_decoder=False)
    state = {f"model/{k}": to_numpy(v) for k, v in attention.weight_names().items()}
    with pytest.raises(CheckpointError, match=r"layer_0 is attention in the checkpoint \(rel_attn/\* weights\) but "
                                              r"fourier in the config; layer_1 is attention"):
        build_checkpoint(tiny_config(block_mixers=HYBRID), state, "ckpt", FunnelTFM)
    hybrid = FunnelTFM(tiny_config(block_mixers=HYBRID), use_decoder=False)
    state = {f"model/{k}": to_numpy(v) for k, v in hybrid.weight_names().items()}
    with pytest.raises(CheckpointError, match=r"layer_0 is fourier in the checkpoint \(fourier/\* weights\) but "
                                              r"attention in the config"):
        build_checkpoint(tiny_config(), state, "ckpt", FunnelTFM)
    # The same through a saved directory whose config was edited.
    save_pretrained(hybrid, str(tmp_path / "ours"))
    path = tmp_path / "ours" / "funnel_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "block_mixers": "attention"}))
    with pytest.raises(CheckpointError, match="do not match the config's block_mixers 'attention'"):
        FunnelTFM.from_pretrained(str(tmp_path / "ours"))


# ------------------------------------------------------------------------------------------- FNet hybrid
def _reference_self_attention(attention, x, mask):
    """N9 in numpy, as Flax computes it: mask = query real AND key real, masked scores = float32 min."""
    w = {k: to_numpy(v) for k, v in attention.weight_names().items()}
    q, k, v = (np.einsum("bld,dnh->blnh", x, w[f"{p}/kernel"]) + w[f"{p}/bias"] for p in ("query", "key", "value"))
    scores = np.einsum("binh,bjnh->bnij", q / np.sqrt(q.shape[-1]), k)
    allowed = (mask[:, None, :, None] * mask[:, None, None, :]) > 0
    scores = np.where(allowed, scores, np.finfo(np.float32).min).astype(np.float64)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    return np.einsum("bnij,bjnh->binh", probs, v).reshape(x.shape[0], x.shape[1], -1) @ \
        w["out/kernel"].reshape(-1, x.shape[-1]) + w["out/bias"]


@SLICE
def test_fnet_hybrid_attention_follows_the_original(rng):
    model = FNet(tiny_fnet(attention_layout="bottom", num_attention_layers=1))
    randomize_weights(model, rng, scale=0.2)
    inputs = fnet_inputs(rng, 12, [12, 7])
    out = model(inputs)
    block = model.encoder_blocks[0]
    x = to_numpy(out["embedding_output"])
    mask = inputs["padding_mask"].astype(np.float32)
    got = to_numpy(block.mixing(x, mask))
    np.testing.assert_allclose(got, _reference_self_attention(block.mixing, x, mask), rtol=0, atol=1e-5)
    # A pad query has no allowed key and attends uniformly to every position (its row matters: Fourier layers
    # mix it into real tokens).
    uniform = to_numpy(block.mixing.value(x)).mean(axis=1)[1]  # [N, H] of row 1, which has pads
    np.testing.assert_allclose(to_numpy(block.mixing.out(uniform[None, None]))[0, 0], got[1, 10], atol=1e-5)


@SLICE
@pytest.mark.parametrize("layout", ["top", "mixed"])
def test_fnet_hybrid_fft_and_dft_agree(rng, layout):
    inputs = fnet_inputs(rng, 12, [12, 8])
    fft = FNetPreTrainingModel(tiny_fnet(attention_layout=layout))
    randomize_weights(fft, rng, scale=0.1)
    dft = FNetPreTrainingModel(tiny_fnet(attention_layout=layout, use_fft=False))
    copy_weights(fft, dft)
    a, b = outputs_of(fft, inputs), outputs_of(dft, inputs)
    assert a["mlm_logits"].shape == (2, 12, 50) and np.isfinite(a["mlm_logits"]).all()
    assert max_diff(a, b) <= 1e-5


def test_fnet_hybrid_harness(tmp_path, rng):
    inputs = fnet_inputs(rng, 12, [12, 8])
    run_model_test(FNet, {"config": tiny_fnet(attention_layout="middle", attention_dropout=0.1)}, inputs, tmp_path,
                   expected_shapes={"sequence_output": (2, 12, 16), "pooled_output": (2, 16)},
                   train_output=lambda out: out["sequence_output"])


def test_fnet_hybrid_save_load_and_mismatch(tmp_path, rng):
    model = FNetPreTrainingModel(tiny_fnet())
    randomize_weights(model, rng, scale=0.1)
    inputs = fnet_inputs(rng, 12, [12, 5])
    with pytest.raises(CheckpointError, match="format='keras'"):
        model.save_pretrained(str(tmp_path / "hf"))
    model.save_pretrained(str(tmp_path / "ours"), format="keras")
    loaded = FNetPreTrainingModel.from_pretrained(str(tmp_path / "ours"))
    assert loaded.config == model.config and not loaded.load_report.missing and not loaded.load_report.skipped
    a, b = outputs_of(model, inputs), outputs_of(loaded, inputs)
    assert all(np.array_equal(a[key], b[key]) for key in a)
    path = tmp_path / "ours" / "fnet_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "attention_layout": "bottom"}))
    with pytest.raises(CheckpointError, match=r"attention weights \(encoder/self_attention_\*\) in layers \[2, 3\], "
                                              r"but .* makes layers \[0, 1\] attend"):
        FNetPreTrainingModel.from_pretrained(str(tmp_path / "ours"))


# ------------------------------------------------------------------------------------------- describe
def test_describe_counts_match_a_hand_count():
    """Parameters and FLOPs of tiny hybrids, counted by hand (D=16, F=32, V=50, 4 heads of 4)."""
    from funnel_tfm import describe

    ffn = 2 * 16 * 32 + 32 + 16 + 2 * 16                    # 1104: W1, b1, W2, b2, LayerNorm
    attention = 3 * 16 * 16 + 2 * 16 + 16 * 16 + 16 + 16 + 2 * 16 + 16 + 16 * 16 + 16 + 2 * 16  # 1440 (rel_shift)
    embedding = 50 * 16 + 2 * 16
    funnel = tiny_config(block_size="2_2", decoder_size="1", block_mixers="fourier_attention")
    assert flops.count_parameters(funnel) == embedding + 2 * (2 * 16 + ffn) + 3 * (attention + ffn) == 10736
    assert FunnelTFM(funnel).count_params() == 10736 + 16 * 16 + 16  # + the pooled summary

    # FLOPs at L=8: two Fourier layers (FFT of 8·16 points: 5·128·7) + FFN 4·8·16·32; then two attention layers
    # at the pooled length 4 (the first reads the 8 unpooled keys: rel_shift rows 2·4+8 = 16, then 4+4 = 8).
    fourier = 5 * 128 * 7 + 4 * 8 * 16 * 32
    pooled = 2 * 4 * 256 + 4 * 8 * 256 + 4 * 4 * 8 * 16 + 2 * 16 * 256 + 2 * 4 * 16 * 16 + 4 * 4 * 16 \
        + 2 * 4 * 256 + 4 * 4 * 16 * 32
    second = 2 * 4 * 256 + 4 * 4 * 256 + 4 * 4 * 4 * 16 + 2 * 8 * 256 + 2 * 4 * 8 * 16 + 4 * 4 * 16 \
        + 2 * 4 * 256 + 4 * 4 * 16 * 32
    assert flops.forward_flops(funnel, 8) == 2 * fourier + pooled + second
    dft = funnel.replace(use_fft=False)
    assert flops.forward_flops(dft, 8) - flops.forward_flops(funnel, 8) == 2 * (4 * 8 * 256 + 4 * 64 * 16 - 5 * 128 * 7)

    fnet = tiny_fnet()  # 4 layers, the last 2 attend
    hand = (50 + 16 + 4) * 16 + 2 * 16 + 16 * 16 + 16 + 4 * (2 * 16 + ffn) + 2 * 4 * (16 * 16 + 16)
    assert flops.fnet_parameters(fnet, include_pooler=False) == hand == 8144
    assert FNet(fnet).count_params() == hand + 16 * 16 + 16
    assert FNetPreTrainingModel(fnet).count_params() == flops.fnet_parameters(fnet, pretraining_heads=True)
    hand_flops = 2 * 12 * 256 + 2 * (5 * 192 * np.log2(192)) + 2 * (8 * 12 * 256 + 4 * 144 * 16) + 4 * (4 * 12 * 512)
    assert flops.fnet_forward_flops(fnet, 12) == pytest.approx(hand_flops, rel=1e-12)

    rows = describe.describe({"funnel": funnel, "fnet": fnet}, [8], tiny_config(block_size="2_2"), measure=False,
                             batch_size=1, repeats=1, jit_compile=False)
    assert [row["block_size"] for row in rows] == ["2F_2", "FNet L4 attn@2,3"]
    assert rows[0]["params_base_M"] * 1e6 == pytest.approx(10736 - attention - ffn)
    assert rows[1]["gflops_per_token@8"] * 1e9 * 8 == pytest.approx(flops.fnet_forward_flops(fnet, 8))


# ------------------------------------------------------------------------------------------- JAX
@pytest.mark.slow  # a fresh process importing JAX and TensorFlow: ~40 s on 2 shared cores
@pytest.mark.parametrize("backend", ["jax"])
def test_hybrid_slice_passes_on(backend):
    """The backend_slice tests of this file (forward passes of both hybrids) in a fresh JAX process."""
    pytest.importorskip(backend)
    env = {**os.environ, "KERAS_BACKEND": backend}
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:warnings", "-m", "backend_slice",
               os.path.join(TESTS, "test_hybrid.py")]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, cwd=TESTS)
    passed = re.search(r"\b7 passed", result.stdout)
    assert result.returncode == 0 and passed, result.stdout[-4000:] + result.stderr[-2000:]
