"""absl flags for every ModelConfig key, shared by the entry points (importing this module defines them).

    from funnel_tfm import config_flags
    config = config_flags.config_from_flags(FLAGS.model_config)   # --d_model=256 etc. override the base
    config_flags.config_from_flags("FNet-Base")                    # an FNetConfig (--d_model etc. apply too)

A --model_config that names an FNet config (FNet-Base, an FNet json, a directory with fnet_config.json or a
transformers FNet config.json) gives an FNetConfig; the flags of keys that FNetConfig shares with ModelConfig
(d_model, d_embed, d_inner, vocab_size, dropout, n_head, ...) and its own (n_layer, type_vocab_size,
num_attention_layers, attention_layout, attention_dropout) override it, any other key is an error.
"""

from __future__ import annotations

import dataclasses

from absl import flags

from funnel_tfm import flag_checks
from funnel_tfm.config import ConfigError, ModelConfig
from funnel_tfm.config_fnet import FNetConfig, load_any_config

_FIELD_FLAGS = {}
for _field in dataclasses.fields(ModelConfig):
    _help = f"Override config key {_field.name}."
    if _field.type in ("int", int):  # sizes, counts and the pooling factor: at least 1
        _FIELD_FLAGS[_field.name] = flags.DEFINE_integer(_field.name, None, _help, lower_bound=1)
    elif _field.type in ("float", float):
        _FIELD_FLAGS[_field.name] = flags.DEFINE_float(_field.name, None, _help)
    elif _field.type in ("bool", bool):
        _FIELD_FLAGS[_field.name] = flags.DEFINE_boolean(_field.name, None, _help)
    else:
        _FIELD_FLAGS[_field.name] = flags.DEFINE_string(_field.name, None, _help)

# FNet-only keys (fnet semantics N1, N9), so that `--model_config=FNet-Base --n_layer=4` works as the README shows;
# a Funnel config refuses them (unknown key). Not max_seq_length: the finetuning jobs' --max_seq_length is the
# padded length (an FNet json sets the rows of the position table).
for _name, _define, _help, _bounds in (
        ("n_layer", flags.DEFINE_integer, "FNet: number of encoder layers.", {"lower_bound": 1}),
        ("type_vocab_size", flags.DEFINE_integer, "FNet: rows of the type-id table.", {"lower_bound": 1}),
        ("num_attention_layers", flags.DEFINE_integer, "FNet: layers that attend instead of mixing (N9).",
         {"lower_bound": 0}),
        ("attention_layout", flags.DEFINE_string, "FNet: where they are: bottom, middle, mixed or top.", {}),
        ("attention_dropout", flags.DEFINE_float, "FNet: dropout on the attention probabilities.", {})):
    _FIELD_FLAGS[_name] = _define(_name, None, f"Override config key {_name}. {_help}", **_bounds)
for _name in ("dropout", "dropatt", "dropact", "attention_dropout"):  # probabilities of dropping
    flag_checks.within(_name, 0.0, 1.0, high_open=True)
for _name in ("init_std", "init_range", "layer_norm_eps"):
    flag_checks.above(_name, 0.0)


def overrides() -> dict:
    """The config keys given on the command line."""
    return {name: flag.value for name, flag in _FIELD_FLAGS.items() if flag.value is not None}


def custom_config(config_path: str | None, changes: dict) -> ModelConfig | FNetConfig | None:
    """`config_path` (a named config, json or directory; Funnel or FNet) with `changes`, or the Funnel defaults
    with `changes`; None when neither is given."""
    changes = {k: v for k, v in changes.items() if v is not None}
    if not config_path and not changes:
        return None
    base = load_any_config(config_path) if config_path else ModelConfig()
    if isinstance(base, FNetConfig):
        foreign = sorted(set(changes) - {field.name for field in dataclasses.fields(FNetConfig)})
        if foreign:
            raise ConfigError(f"--model_config={config_path} is an FNet config, which has no key(s) "
                              f"{', '.join(foreign)}; drop --{' --'.join(foreign)} or change the config json")
        return FNetConfig.from_dict({**base.to_dict(), **changes}, "flags")
    return ModelConfig.from_dict({**base.to_dict(), **changes}, "flags")


def config_from_flags(config_path: str | None) -> ModelConfig | FNetConfig | None:
    return custom_config(config_path, overrides())
