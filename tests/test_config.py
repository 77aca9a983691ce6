"""ModelConfig: original keys and semantics, json formats, round trips and actionable errors."""

from __future__ import annotations

import json

import pytest

from funnel_tfm.config import NAMED_CONFIGS, ORIGINAL_KEYS, ConfigError, ModelConfig, load_config
from funnel_tfm.analysis.flops import count_parameters
from funnel_tfm.modeling import FunnelTFM
from helpers import tiny_config

pytestmark = pytest.mark.smoke  # also run on TensorFlow 2.20 in CI (.ci/run)


def test_block_strings_follow_the_original():
    config = ModelConfig(block_size="6_3x2_3x2", decoder_size="2")
    assert config.block_param_sizes == (6, 3, 3)
    assert config.block_repeats == (1, 2, 2)
    assert config.block_depths == (6, 6, 6)
    assert config.n_encoder_param_layers == 12 and config.decoder_depth == 2
    assert ModelConfig(decoder_size="2x3").decoder_depth == 6


def test_execution_order_repeats_each_layer_consecutively():
    model = FunnelTFM(tiny_config(block_size="1_3x2", decoder_size="0"))
    assert [param for _, param, _, _ in model.encoder_schedule()] == [0, 1, 1, 2, 2, 3, 3]
    names = sorted(model.weight_names())
    assert "encoder/layer_3/rel_attn/q/kernel" in names and "encoder/layer_4/rel_attn/q/kernel" not in names


def test_decoder_layers_continue_the_encoder_numbering():
    model = FunnelTFM(tiny_config(block_size="6_3x2_3x2", decoder_size="2"))
    names = model.weight_names()
    assert "decoder/layer_12/ff/layer_1/kernel" in names and "decoder/layer_13/rel_attn/o/bias" in names


def test_original_net_config_round_trip(tmp_path):
    config = ModelConfig(block_size="6_3x2_3x2", d_embed=128, rel_attn_type="factorized")
    path = tmp_path / "net_config.json"
    config.to_json(str(path), original=True)
    written = json.loads(path.read_text())
    assert sorted(written) == sorted(ORIGINAL_KEYS)
    assert written["block_size"] == "6_3x2_3x2"
    loaded = ModelConfig.from_json(str(path))
    assert loaded == config.replace(truncate_seq=True, layer_norm_eps=1e-8)


def test_our_json_round_trip_keeps_every_key(tmp_path):
    config = ModelConfig(truncate_seq=False, layer_norm_eps=1e-9, pooling_type="max")
    config.to_json(str(tmp_path / "c.json"))
    assert ModelConfig.from_json(str(tmp_path / "c.json")) == config
    assert ModelConfig.from_dict(config.get_config()) == config


def test_hf_config_round_trip():
    config = ModelConfig(block_size="6_3x2_3x2", d_embed=768, d_model=768, n_head=12, d_head=64, d_inner=3072,
                         layer_norm_eps=1e-9)
    assert ModelConfig.from_hf_dict(config.to_hf_dict()) == config


def test_reads_transformers_config_json(tmp_path):
    transformers = pytest.importorskip("transformers")
    hf = transformers.FunnelConfig(block_sizes=[6, 3, 3], block_repeats=[1, 2, 2], attention_type="factorized")
    hf.save_pretrained(tmp_path)
    config = load_config(str(tmp_path))
    assert config.block_size == "6_3x2_3x2" and config.rel_attn_type == "factorized"
    assert config.ff_activation == "gelu" and config.layer_norm_eps == 1e-9


def test_pytorch_json_variant(tmp_path):
    values = {k: v for k, v in ModelConfig().to_original_dict().items()
              if k not in ("ff_activation", "init", "init_std", "init_range", "rel_attn_type", "decoder_size")}
    (tmp_path / "net_config.pytorch.json").write_text(json.dumps(values))
    config = ModelConfig.from_json(str(tmp_path / "net_config.pytorch.json"))
    assert config.rel_attn_type == "rel_shift" and config.decoder_size == "0"


@pytest.mark.parametrize("changes,message", [
    (dict(block_size="6_3y2"), "bad depth token '3y2'"),
    (dict(block_size="6_0_6"), "every block needs >= 1 layer"),
    (dict(decoder_size="2x0"), "repeat count"),
    (dict(rel_attn_type="relative"), "rel_attn_type: expected one of factorized, rel_shift, null"),
    (dict(pooling_type="avg"), "pooling_type: expected one of mean, max"),
    (dict(d_model=15, d_embed=15), "must be even"),
    (dict(n_head=0), "n_head: expected a positive integer"),
    (dict(dropout=1.5), "dropout: expected a rate in [0, 1)"),
    (dict(pooling_size=1), "pooling_size: expected an integer >= 2"),
    (dict(separate_cls="yes"), "separate_cls: expected true or false"),
])
def test_invalid_values_say_what_is_accepted(changes, message):
    with pytest.raises(ConfigError, match=None) as error:
        ModelConfig(**changes)
    assert message in str(error.value)


def test_unknown_key_lists_accepted_keys(tmp_path):
    path = tmp_path / "net_config.json"
    path.write_text(json.dumps({**ModelConfig().to_original_dict(), "d_modle": 3}))
    with pytest.raises(ConfigError) as error:
        ModelConfig.from_json(str(path))
    assert "unknown key(s) d_modle" in str(error.value) and str(path) in str(error.value)
    assert "accepted keys are" in str(error.value)


def test_unreadable_json_names_file_and_line(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"block_size": "4_4_4",\n "d_model": }')
    with pytest.raises(ConfigError, match=r"config.json: not valid json \(line 2"):
        ModelConfig.from_json(str(path))


def test_block_lengths_and_too_short_sequences():
    config = ModelConfig(block_size="4_4_4")
    assert config.block_lengths(16) == (16, 8, 4)
    assert config.replace(truncate_seq=False).block_lengths(16) == (16, 9, 5)
    assert config.block_lengths(13) == (13, 7, 4)
    assert config.min_seq_len() == 5
    with pytest.raises(ConfigError, match="sequence length 4 is too short.*shortest accepted length is 5"):
        config.block_lengths(4)
    with pytest.raises(ConfigError, match="lengths up to 512"):
        config.replace(rel_attn_type="null").block_lengths(513)


def test_model_rejects_lengths_it_cannot_pool():
    model = FunnelTFM(tiny_config())
    import numpy as np
    with pytest.raises(ConfigError, match="too short"):
        model({"token_ids": np.ones((1, 3), np.int32)})


@pytest.mark.parametrize("name", ["B4-4-4H768", "B6-3x2-3x2H768", "L12H768"])
def test_analytic_parameter_count_matches_model(name):
    config = NAMED_CONFIGS[name].replace(vocab_size=1000)
    model = FunnelTFM(config)
    assert model.count_params() == count_parameters(config, use_decoder=True, include_summary=True)


def test_analytic_count_matches_spec_totals():
    """Semantics C3: core totals (embedding + encoder + decoder) for V=30522, decoder '2'."""
    expected = {"B4-4-4H768": 131.0, "B6-6-6H768": 177.1, "B8-8-8H1024": 386.1, "B10-10-10H1024": 468.0}
    for name, millions in expected.items():
        assert round(count_parameters(NAMED_CONFIGS[name]) / 1e6, 1) == millions
