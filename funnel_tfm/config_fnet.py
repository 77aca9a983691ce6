"""`FNetConfig`: every setting of an FNet encoder, in the original f_net's terms (fnet semantics N1).

    config = FNetConfig(d_model=256, d_embed=256, d_inner=1024, n_layer=4, vocab_size=8000, use_fft=False)
    config.to_hf_dict()                            # a transformers FNetConfig dict
    FNetConfig.from_json("google-fnet-base/config.json")
    named_fnet_config("FNet-Base")
    FNetConfig(n_layer=12, num_attention_layers=2, attention_layout="top").attention_layers()   # (10, 11)

Names follow the original (`d_emb` -> `d_embed` and `d_ff` -> `d_inner` as in ModelConfig, `num_layers` ->
`n_layer`); `use_fft` picks the Fourier path (FFT or DFT matrices), which computes the same function.
Hybrids (fnet semantics N9) keep the original's `num_attention_layers` and `attention_layout` (bottom, middle,
mixed, top: which layers attend instead of mixing) and its attention settings (`num_heads` -> `n_head`,
`mixing_dropout_rate` -> `attention_dropout`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from funnel_tfm import file_io
# One table of activation names for both architectures: HF's "gelu_new" is the tanh form ("gelu" here and in
# both originals), HF's "gelu" the erf form.
from funnel_tfm.config import (_HF_ACTIVATION_TO_OURS, _OURS_ACTIVATION_TO_HF, ACTIVATIONS, ConfigError,
                               ModelConfig, load_config, read_json_object)

# The original's HybridAttentionLayout (configs/base.py): where attention sublayers replace Fourier ones.
ATTENTION_LAYOUTS = ("bottom", "middle", "mixed", "top")


def is_attention_layer(layer: int, n_layer: int, num_attention_layers: int, layout: str) -> bool:
    """The original's `EncoderModel._is_attention_layer` rule (fnet semantics N9); 0 attention layers: none.

        [is_attention_layer(i, 12, 2, "middle") for i in (4, 5, 6, 7)]   # [False, True, True, False]

    "mixed" attends in every (n_layer // num_attention_layers)-th layer from layer 0, which is more layers than
    asked when num_attention_layers does not divide n_layer (12 layers, 5 asked: 6 attend), as in the original.
    """
    if num_attention_layers == 0:
        return False
    if layout == "bottom":
        return layer < num_attention_layers
    if layout == "middle":
        return n_layer - num_attention_layers <= 2 * layer < n_layer + num_attention_layers
    if layout == "mixed":
        return layer % (n_layer // num_attention_layers) == 0
    return layer >= n_layer - num_attention_layers


@dataclasses.dataclass(frozen=True)
class FNetConfig:
    """Defaults are FNet-Base as in the original `configs/base.py` (vocab of its 32k SentencePiece model)."""

    vocab_size: int = 32000
    d_embed: int = 768
    d_model: int = 768
    d_inner: int = 3072
    n_layer: int = 12
    max_seq_length: int = 512
    type_vocab_size: int = 4
    ff_activation: str = "gelu"
    dropout: float = 0.1
    init_std: float = 0.02
    layer_norm_eps: float = 1e-12
    use_fft: bool = True
    # Hybrid attention layers (fnet semantics N9); the original's defaults (top, 0 layers, 12 heads, 0.1).
    num_attention_layers: int = 0
    attention_layout: str = "top"
    n_head: int = 12
    attention_dropout: float = 0.1

    def __post_init__(self) -> None:
        for key in ("vocab_size", "d_embed", "d_model", "d_inner", "n_layer", "max_seq_length", "type_vocab_size"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{key}: expected a positive integer, found {value!r}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout: expected a rate in [0, 1), found {self.dropout!r}")
        for key in ("init_std", "layer_norm_eps"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"{key}: expected a positive number, found {value!r}")
        if self.ff_activation not in ACTIVATIONS:
            raise ConfigError(f"ff_activation: expected one of {', '.join(ACTIVATIONS)}; found {self.ff_activation!r}")
        if not isinstance(self.use_fft, bool):
            raise ConfigError(f"use_fft: expected true or false, found {self.use_fft!r}")
        self._validate_hybrid()

    def _validate_hybrid(self) -> None:
        count = self.num_attention_layers
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= self.n_layer:
            raise ConfigError(f"num_attention_layers: expected an integer in [0, n_layer={self.n_layer}], "
                              f"found {count!r}")
        if self.attention_layout not in ATTENTION_LAYOUTS:
            raise ConfigError(f"attention_layout: expected one of {', '.join(ATTENTION_LAYOUTS)}; found "
                              f"{self.attention_layout!r}")
        if isinstance(self.n_head, bool) or not isinstance(self.n_head, int) or self.n_head < 1:
            raise ConfigError(f"n_head: expected a positive integer, found {self.n_head!r}")
        rate = self.attention_dropout
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise ConfigError(f"attention_dropout: expected a rate in [0, 1), found {rate!r}")
        if count and self.d_model % self.n_head:
            raise ConfigError(f"n_head: the attention layers split d_model ({self.d_model}) into n_head heads, so "
                              f"n_head must divide it; found {self.n_head}")

    def attention_layers(self) -> tuple[int, ...]:
        """Indices of the encoder layers that attend instead of mixing by Fourier transform (N9)."""
        return tuple(i for i in range(self.n_layer)
                     if is_attention_layer(i, self.n_layer, self.num_attention_layers, self.attention_layout))

    # The task heads (layers/head_factories.py) read a config's initializer as (init, init_std, init_range); FNet
    # draws every kernel from N(0, init_std) (fnet semantics N1), so an FNet backbone's heads do too.
    @property
    def init(self) -> str:
        return "normal"

    @property
    def init_range(self) -> float:
        return 0.0  # unused by the "normal" initializer

    @property
    def is_hybrid(self) -> bool:
        return bool(self.attention_layers())

    def check_length(self, seq_len: int) -> None:
        """Raises ConfigError unless 1 <= seq_len <= max_seq_length (the rows of the position table)."""
        if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
            raise ConfigError(f"sequence length: expected a static positive integer, found {seq_len!r}; pad "
                              f"batches to a fixed length")
        if seq_len > self.max_seq_length:
            raise ConfigError(f"sequence length {seq_len} > max_seq_length {self.max_seq_length}: the position "
                              f"table has {self.max_seq_length} rows")

    # ------------------------------------------------------------------------------ (de)serialise
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> "FNetConfig":
        """Our keys only; an unknown key is an error that lists the accepted ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}; accepted keys are "
                              f"{', '.join(sorted(known))}")
        try:
            return cls(**values)
        except ConfigError as error:
            raise ConfigError(f"{source}: {error}") from None

    def replace(self, **changes: Any) -> "FNetConfig":
        return dataclasses.replace(self, **changes)

    def to_hf_dict(self) -> dict[str, Any]:
        """A transformers `FNetConfig` dict; raises for what transformers cannot express (fnet semantics N6).

        `tpu_short_seq_length` is set to max_seq_length: transformers' DFT path accepts only inputs of exactly
        that length, and the original always padded to max_seq_length.
        """
        if self.is_hybrid:
            raise ConfigError(f"cannot express this config as a Hugging Face FNetConfig: layers "
                              f"{list(self.attention_layers())} attend (num_attention_layers "
                              f"{self.num_attention_layers}), and transformers' FNet has only Fourier layers; save it "
                              f"in this project's format: save_pretrained(path, format='keras')")
        if self.d_embed != self.d_model:
            raise ConfigError(f"cannot express this config as a Hugging Face FNetConfig: d_embed ({self.d_embed}) != "
                              f"d_model ({self.d_model}); transformers' FNet has one hidden_size for the embeddings, "
                              f"the projection and the MLM transform; save_pretrained(path, format='keras') keeps it")
        return {
            "model_type": "fnet",
            "vocab_size": self.vocab_size,
            "hidden_size": self.d_model,
            "num_hidden_layers": self.n_layer,
            "intermediate_size": self.d_inner,
            "hidden_act": _OURS_ACTIVATION_TO_HF[self.ff_activation],
            "hidden_dropout_prob": self.dropout,
            "max_position_embeddings": self.max_seq_length,
            "type_vocab_size": self.type_vocab_size,
            "initializer_range": self.init_std,
            "layer_norm_eps": self.layer_norm_eps,
            "use_tpu_fourier_optimizations": not self.use_fft,
            "tpu_short_seq_length": self.max_seq_length,
            "tie_word_embeddings": True,
        }

    @classmethod
    def from_hf_dict(cls, hf: dict[str, Any], source: str = "config.json") -> "FNetConfig":
        """Reads a transformers FNet `config.json` dict (missing keys take transformers' defaults)."""
        if hf.get("model_type", "fnet") != "fnet":
            raise ConfigError(f"{source}: model_type is {hf.get('model_type')!r}, expected 'fnet'")
        if hf.get("tie_word_embeddings", True) is not True:
            raise ConfigError(f"{source}: tie_word_embeddings is false; FNet's MLM output is the word table (the "
                              f"original ties them), so untied checkpoints are not supported")
        act = hf.get("hidden_act", "gelu_new")
        if act not in _HF_ACTIVATION_TO_OURS:
            raise ConfigError(f"{source}: hidden_act {act!r} is not supported; accepted: "
                              f"{', '.join(_HF_ACTIVATION_TO_OURS)}")
        tpu = hf.get("use_tpu_fourier_optimizations", False)
        if not isinstance(tpu, bool):  # `not "false"` would be False: a string must not pick the path
            raise ConfigError(f"{source}: use_tpu_fourier_optimizations: expected true or false, found {tpu!r}")
        hidden = hf.get("hidden_size", 768)
        return cls.from_dict(dict(
            vocab_size=hf.get("vocab_size", 32000), d_embed=hidden, d_model=hidden,
            d_inner=hf.get("intermediate_size", 3072), n_layer=hf.get("num_hidden_layers", 12),
            max_seq_length=hf.get("max_position_embeddings", 512), type_vocab_size=hf.get("type_vocab_size", 4),
            ff_activation=_HF_ACTIVATION_TO_OURS[act], dropout=hf.get("hidden_dropout_prob", 0.1),
            init_std=hf.get("initializer_range", 0.02), layer_norm_eps=hf.get("layer_norm_eps", 1e-12),
            use_fft=not tpu,
        ), source)

    @classmethod
    def from_json(cls, path: str) -> "FNetConfig":
        """Our json (all keys of this class) or a transformers FNet `config.json`."""
        values = read_json_object(path)
        if "model_type" in values or "hidden_size" in values:
            return cls.from_hf_dict(values, path)
        return cls.from_dict(values, path)

    def to_json(self, path: str) -> None:
        file_io.atomic_write_text(path, json.dumps(self.to_dict(), indent=4, sort_keys=True) + "\n")


# The released sizes (google/fnet-base, google/fnet-large); d_embed = d_model in both.
NAMED_FNET_CONFIGS: dict[str, FNetConfig] = {
    "FNet-Base": FNetConfig(),
    "FNet-Large": FNetConfig(d_embed=1024, d_model=1024, d_inner=4096, n_layer=24),
}


def named_fnet_config(name: str) -> FNetConfig:
    """One of NAMED_FNET_CONFIGS, e.g. named_fnet_config("FNet-Base")."""
    if name not in NAMED_FNET_CONFIGS:
        raise ConfigError(f"unknown FNet model name {name!r}; known: {', '.join(NAMED_FNET_CONFIGS)}")
    return NAMED_FNET_CONFIGS[name]


FNET_CONFIG_FILE = "fnet_config.json"  # this project's FNet directory (checkpoints/fnet_format.py)


def is_fnet_config_values(values: dict[str, Any]) -> bool:
    """An FNet config json: transformers' (`model_type` "fnet") or ours (FNetConfig keys: `n_layer`, which a
    Funnel config, with its `block_size`, never has)."""
    return values.get("model_type") == "fnet" or ("n_layer" in values and "block_size" not in values)


def load_any_config(path_or_name: str) -> ModelConfig | FNetConfig:
    """A Funnel config (`load_config`: named, paper-style name, json, directory) or an FNet one: a name of
    NAMED_FNET_CONFIGS, an FNet json (`is_fnet_config_values`), or a directory holding fnet_config.json or a
    transformers FNet config.json.

        load_any_config("FNet-Base"), load_any_config("B4F-4-4H768"), load_any_config("runs/fnet/export")
    """
    if path_or_name in NAMED_FNET_CONFIGS:
        return NAMED_FNET_CONFIGS[path_or_name]
    path = path_or_name
    if os.path.isdir(path):
        for candidate in (FNET_CONFIG_FILE, "config.json", "net_config.json"):
            if os.path.isfile(os.path.join(path, candidate)):
                path = os.path.join(path, candidate)
                break
    if os.path.isfile(path) and is_fnet_config_values(read_json_object(path)):
        return FNetConfig.from_json(path)
    return load_config(path_or_name)
