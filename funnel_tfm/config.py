"""`ModelConfig`: every setting of a Funnel-Transformer, in the original's terms.

The keys are the 20 keys of the original `net_config.json` plus `truncate_seq` (a runtime flag in the
original that changes the network), `layer_norm_eps` (1e-8 in the original, 1e-9 in Hugging Face) and the
token mixer of each block (`block_mixers`, `use_fft`: the Funnel-Fourier hybrid, docs/fnet_semantics.md N8).

    config = ModelConfig(block_size="6_3x2_3x2", d_model=768, n_head=12, d_head=64, d_inner=3072)
    config.block_depths          # (6, 6, 6)
    config.block_lengths(512)    # (512, 256, 128)
    config.to_json("out/net_config.json")
    ModelConfig.from_json("out/net_config.json") == config   # True
    named_config("B4F-4-4H768").block_mixer_list   # ("fourier", "attention", "attention")
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from typing import Any

from funnel_tfm import file_io

ORIGINAL_KEYS = (
    "block_size", "vocab_size", "d_embed", "d_model", "n_head", "d_head", "d_inner", "ff_activation",
    "dropout", "dropatt", "dropact", "init", "init_std", "init_range", "rel_attn_type", "separate_cls",
    "pooling_type", "pooling_size", "pool_q_only", "decoder_size",
)
# Keys of the original PyTorch port's `net_config.pytorch.json` (semantics C2).
PYTORCH_JSON_KEYS = (
    "vocab_size", "d_embed", "d_model", "n_head", "d_head", "d_inner", "dropout", "dropatt", "dropact",
    "block_size", "pooling_type", "pooling_size", "separate_cls", "pool_q_only",
)
ACTIVATIONS = ("gelu", "gelu_exact", "relu", "tanh")
INITIALIZERS = ("truncated_normal", "normal", "uniform")
ATTENTION_TYPES = ("factorized", "rel_shift", "null")
POOLING_TYPES = ("mean", "max")
MIXERS = ("attention", "fourier")
# The absolute position table of `rel_attn_type="null"` has a fixed number of rows in the original.
MAX_POSITIONS_NULL = 512

# Hugging Face `hidden_act` names and ours; "gelu" in the original is the tanh approximation.
_HF_ACTIVATION_TO_OURS = {"gelu_new": "gelu", "gelu_pytorch_tanh": "gelu", "gelu_fast": "gelu",
                          "gelu": "gelu_exact", "relu": "relu", "tanh": "tanh"}
_OURS_ACTIVATION_TO_HF = {"gelu": "gelu_new", "gelu_exact": "gelu", "relu": "relu", "tanh": "tanh"}
_HF_ATTENTION_TO_OURS = {"relative_shift": "rel_shift", "factorized": "factorized"}

_DEPTH_TOKEN = re.compile(r"^(\d+)(?:x(\d+))?$")


class ConfigError(ValueError):
    """A configuration value, file or sequence length that the model cannot use."""


def parse_depth(token: str, what: str) -> tuple[int, int]:
    """Parses one depth token `P` or `PxR` into (param layers P, repeats R).

        parse_depth("3x2", "block_size")  # (3, 2)
    """
    match = _DEPTH_TOKEN.match(token.strip())
    if not match:
        raise ConfigError(f"{what}: bad depth token {token!r}; expected P or PxR with integers, e.g. '6' or '3x2'")
    params, repeats = int(match.group(1)), int(match.group(2) or 1)
    if repeats < 1:
        raise ConfigError(f"{what}: repeat count in {token!r} must be >= 1")
    return params, repeats


def read_json_object(path: str) -> dict[str, Any]:
    """The json object in `path`; a ConfigError naming the file (and line) for anything else."""
    try:
        with file_io.open_file(path, "r") as handle:
            values = json.load(handle)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}: not valid json (line {error.lineno}: {error.msg})") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read ({error})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a json object, found {type(values).__name__}")
    return values


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """All architecture settings; defaults are the original's flag defaults (semantics C1)."""

    block_size: str = "3_3_3"
    vocab_size: int = 30522
    d_embed: int = 512
    d_model: int = 512
    n_head: int = 8
    d_head: int = 64
    d_inner: int = 2048
    ff_activation: str = "gelu"
    dropout: float = 0.1
    dropatt: float = 0.1
    dropact: float = 0.0
    init: str = "truncated_normal"
    init_std: float = 0.02
    init_range: float = 0.1
    rel_attn_type: str = "rel_shift"
    separate_cls: bool = True
    pooling_type: str = "mean"
    pooling_size: int = 2
    pool_q_only: bool = True
    decoder_size: str = "2"
    truncate_seq: bool = True
    layer_norm_eps: float = 1e-8
    # The hybrid (fnet semantics N8): one mixer for every block ("fourier") or one per block, joined by "_" like
    # block_size ("fourier_attention_attention"); the decoder always attends. `use_fft` picks the Fourier path.
    block_mixers: str = "attention"
    use_fft: bool = True

    def __post_init__(self) -> None:
        self._validate()

    # ----------------------------------------------------------------------------------------- checks
    def _validate(self) -> None:
        for key in ("vocab_size", "d_embed", "d_model", "n_head", "d_head", "d_inner"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{key}: expected a positive integer, found {value!r}")
        if isinstance(self.pooling_size, bool) or not isinstance(self.pooling_size, int) or self.pooling_size < 2:
            raise ConfigError(f"pooling_size: expected an integer >= 2, found {self.pooling_size!r}")
        for key in ("dropout", "dropatt", "dropact"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ConfigError(f"{key}: expected a rate in [0, 1), found {value!r}")
        for key in ("init_std", "init_range", "layer_norm_eps"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"{key}: expected a positive number, found {value!r}")
        for key, allowed in (("ff_activation", ACTIVATIONS), ("init", INITIALIZERS),
                             ("rel_attn_type", ATTENTION_TYPES), ("pooling_type", POOLING_TYPES)):
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{key}: expected one of {', '.join(allowed)}; found {getattr(self, key)!r}")
        for key in ("separate_cls", "pool_q_only", "truncate_seq", "use_fft"):
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(f"{key}: expected true or false, found {getattr(self, key)!r}")
        if not isinstance(self.block_size, str) or not self.block_size:
            raise ConfigError(f"block_size: expected a string such as '6_3x2_3x2', found {self.block_size!r}")
        for token in self.block_size.split("_"):
            params, _ = parse_depth(token, "block_size")
            if params < 1:
                raise ConfigError(f"block_size: every block needs >= 1 layer, found {token!r} in {self.block_size!r}")
        if not isinstance(self.decoder_size, str):
            raise ConfigError(f"decoder_size: expected a string such as '2' or '0', found {self.decoder_size!r}")
        parse_depth(self.decoder_size, "decoder_size")
        self._validate_mixers()
        if self.rel_attn_type != "null" and self.d_model % 2:
            raise ConfigError(f"d_model: relative attention splits d_model into sin and cos halves, so it must be "
                              f"even; found {self.d_model}")

    def _validate_mixers(self) -> None:
        if not isinstance(self.block_mixers, str) or not self.block_mixers:
            raise ConfigError(f"block_mixers: expected a string such as 'attention' or 'fourier_attention_attention', "
                              f"found {self.block_mixers!r}")
        tokens = self.block_mixers.split("_")
        for token in tokens:
            if token not in MIXERS:
                raise ConfigError(f"block_mixers: unknown mixer {token!r} in {self.block_mixers!r}; expected "
                                  f"{' or '.join(MIXERS)}, one for all blocks or one per block joined by '_'")
        n_block = len(self.block_size.split("_"))
        if len(tokens) not in (1, n_block):
            raise ConfigError(f"block_mixers: {self.block_mixers!r} names {len(tokens)} mixers but block_size "
                              f"{self.block_size!r} has {n_block} blocks; give one mixer, or one per block")

    # ----------------------------------------------------------------------------------------- mixers
    @property
    def block_mixer_list(self) -> tuple[str, ...]:
        """The token mixer of each encoder block, e.g. ("fourier", "attention", "attention")."""
        tokens = tuple(self.block_mixers.split("_"))
        return tokens * self.n_block if len(tokens) == 1 else tokens

    @property
    def has_fourier(self) -> bool:
        """True when some encoder block mixes tokens by Fourier transform (the hybrid)."""
        return "fourier" in self.block_mixer_list

    def param_layer_mixers(self) -> tuple[str, ...]:
        """The mixer of each encoder parameter layer (`layer_k`), in order."""
        return tuple(m for m, p in zip(self.block_mixer_list, self.block_param_sizes) for _ in range(p))

    # ----------------------------------------------------------------------------------------- depths
    @property
    def total_stride(self) -> int:
        """How many input tokens one token of the last block stands for: pooling_size ** (n_block - 1)."""
        return self.pooling_size ** (self.n_block - 1)

    @property
    def block_param_sizes(self) -> tuple[int, ...]:
        """Distinct parameter layers per block (P of `PxR`)."""
        return tuple(parse_depth(t, "block_size")[0] for t in self.block_size.split("_"))

    @property
    def block_repeats(self) -> tuple[int, ...]:
        """How often each parameter layer of a block is applied in a row (R of `PxR`)."""
        return tuple(parse_depth(t, "block_size")[1] for t in self.block_size.split("_"))

    @property
    def block_depths(self) -> tuple[int, ...]:
        return tuple(p * r for p, r in zip(self.block_param_sizes, self.block_repeats))

    @property
    def n_block(self) -> int:
        return len(self.block_param_sizes)

    @property
    def decoder_param_size(self) -> int:
        return parse_depth(self.decoder_size, "decoder_size")[0]

    @property
    def decoder_repeat(self) -> int:
        return parse_depth(self.decoder_size, "decoder_size")[1]

    @property
    def decoder_depth(self) -> int:
        return self.decoder_param_size * self.decoder_repeat

    @property
    def n_encoder_param_layers(self) -> int:
        return sum(self.block_param_sizes)

    # ------------------------------------------------------------------------------------ lengths
    def pooled_length(self, length: int) -> int:
        """Length after one pooling step of a sequence of `length` (semantics M8, SAME padding)."""
        if self.separate_cls:
            body = length - 1 - (1 if self.truncate_seq else 0)
            return 1 + math.ceil(body / self.pooling_size)
        return math.ceil(length / self.pooling_size)

    def _lengths(self, seq_len: int) -> tuple[tuple[int, ...], int | None]:
        """(lengths per block, index of the first block left without a token to attend to, or None)."""
        lengths = [seq_len]
        for _ in range(1, self.n_block):
            lengths.append(self.pooled_length(lengths[-1]))
        # Pooling needs at least one body token (after truncation), so a pooled block keeps one besides [CLS].
        needed = (3 if self.truncate_seq else 2) if self.separate_cls else 1
        for block, length in enumerate(lengths[:-1]):
            if length < needed:
                return tuple(lengths), block + 1
        return tuple(lengths), None

    def block_lengths(self, seq_len: int) -> tuple[int, ...]:
        """Sequence length inside each encoder block for input length `seq_len`.

        Raises ConfigError when some block would be left without a token to attend to (besides [CLS]
        with `separate_cls`), a case in which the original silently produced degenerate shapes.
        """
        if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
            raise ConfigError(f"sequence length: expected a positive integer, found {seq_len!r}")
        if self.rel_attn_type == "null" and seq_len > MAX_POSITIONS_NULL:
            raise ConfigError(f"sequence length {seq_len}: rel_attn_type='null' has a position table of "
                              f"{MAX_POSITIONS_NULL} rows, so lengths up to {MAX_POSITIONS_NULL} are accepted")
        lengths, bad_block = self._lengths(seq_len)
        if bad_block is not None:
            raise ConfigError(
                f"sequence length {seq_len} is too short for block_size {self.block_size!r}: pooling into block "
                f"{bad_block} leaves no token{' besides [CLS]' if self.separate_cls else ''} (lengths "
                f"{lengths}). The shortest accepted length is {self.min_seq_len()}.")
        return lengths

    def min_seq_len(self) -> int:
        """Smallest input length for which every block keeps a token to attend to."""
        length = 1
        while self._lengths(length)[1] is not None:
            length += 1
        return length

    # ------------------------------------------------------------------------------ (de)serialise
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    get_config = to_dict

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> "ModelConfig":
        """Builds a config from a dict of our keys; unknown keys are an error that lists the accepted ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}; accepted keys are "
                              f"{', '.join(sorted(known))}")
        values = dict(values)
        for key in ("block_size", "decoder_size"):
            if isinstance(values.get(key), int) and not isinstance(values.get(key), bool):
                values[key] = str(values[key])  # a json writer may have stored "4" as 4
        try:
            return cls(**values)
        except ConfigError as error:
            raise ConfigError(f"{source}: {error}") from None

    from_config = from_dict

    def replace(self, **changes: Any) -> "ModelConfig":
        return dataclasses.replace(self, **changes)

    def generator_config(self, width_shrink: float = 0.25) -> "ModelConfig":
        """The ELECTRA generator: d_model, d_inner and n_head times `width_shrink`, truncated (semantics P4).

            ModelConfig().generator_config().d_model   # 768 -> 192; d_head and d_embed unchanged
        """
        return self.replace(d_model=int(self.d_model * width_shrink), d_inner=int(self.d_inner * width_shrink),
                            n_head=int(self.n_head * width_shrink))

    def to_original_dict(self) -> dict[str, Any]:
        """The 20 keys of the original `net_config.json`; a ConfigError for Fourier blocks, which it cannot say."""
        if self.has_fourier:
            raise ConfigError(f"block_mixers {self.block_mixers!r}: the original net_config.json has no token-mixer "
                              f"key (every original layer attends), so a Fourier block cannot be written in the "
                              f"original format; use this project's format (funnel_config.json)")
        return {key: getattr(self, key) for key in ORIGINAL_KEYS}

    def to_hf_dict(self) -> dict[str, Any]:
        """A Hugging Face `FunnelConfig` dict; raises for settings that transformers cannot express."""
        problems = []
        if self.d_embed != self.d_model:
            problems.append(f"d_embed ({self.d_embed}) != d_model ({self.d_model}) needs an input projection")
        if self.pooling_size != 2:
            problems.append(f"pooling_size {self.pooling_size} (transformers pools by 2)")
        if self.rel_attn_type == "null":
            problems.append("rel_attn_type 'null'")
        if self.decoder_repeat != 1:
            problems.append(f"decoder_size {self.decoder_size!r} with repeats")
        if self.has_fourier:
            problems.append(f"block_mixers {self.block_mixers!r} (transformers' Funnel attends in every layer)")
        if problems:
            raise ConfigError("cannot express this config as a Hugging Face FunnelConfig: " + "; ".join(problems))
        return {
            "model_type": "funnel",
            "vocab_size": self.vocab_size,
            "block_sizes": list(self.block_param_sizes),
            "block_repeats": list(self.block_repeats),
            "num_decoder_layers": self.decoder_param_size,
            "d_model": self.d_model,
            "n_head": self.n_head,
            "d_head": self.d_head,
            "d_inner": self.d_inner,
            "hidden_act": _OURS_ACTIVATION_TO_HF[self.ff_activation],
            "hidden_dropout": self.dropout,
            "attention_dropout": self.dropatt,
            "activation_dropout": self.dropact,
            "initializer_range": self.init_range,
            "initializer_std": self.init_std,
            "layer_norm_eps": self.layer_norm_eps,
            "pooling_type": self.pooling_type,
            "attention_type": "relative_shift" if self.rel_attn_type == "rel_shift" else "factorized",
            "separate_cls": self.separate_cls,
            "truncate_seq": self.truncate_seq,
            "pool_q_only": self.pool_q_only,
        }

    @classmethod
    def from_hf_dict(cls, hf: dict[str, Any], source: str = "config.json") -> "ModelConfig":
        """Reads a Hugging Face Funnel `config.json` dict."""
        if hf.get("model_type", "funnel") != "funnel":
            raise ConfigError(f"{source}: model_type is {hf.get('model_type')!r}, expected 'funnel'")
        try:
            sizes = list(hf.get("block_sizes", [4, 4, 4]))
            repeats = list(hf.get("block_repeats") or [1] * len(sizes))
            if len(repeats) != len(sizes):
                raise ConfigError(f"{source}: block_repeats {repeats} must have one entry per block_sizes {sizes}")
            act = hf.get("hidden_act", "gelu_new")
            if act not in _HF_ACTIVATION_TO_OURS:
                raise ConfigError(f"{source}: hidden_act {act!r} is not supported; accepted: "
                                  f"{', '.join(_HF_ACTIVATION_TO_OURS)}")
            attention = hf.get("attention_type", "relative_shift")
            if attention not in _HF_ATTENTION_TO_OURS:
                raise ConfigError(f"{source}: attention_type {attention!r}; expected relative_shift or factorized")
            d_model = hf.get("d_model", 768)
            return cls.from_dict(dict(
                block_size="_".join(f"{p}x{r}" if r != 1 else f"{p}" for p, r in zip(sizes, repeats)),
                vocab_size=hf.get("vocab_size", 30522),
                d_embed=d_model, d_model=d_model,
                n_head=hf.get("n_head", 12), d_head=hf.get("d_head", 64), d_inner=hf.get("d_inner", 3072),
                ff_activation=_HF_ACTIVATION_TO_OURS[act],
                dropout=hf.get("hidden_dropout", 0.1), dropatt=hf.get("attention_dropout", 0.1),
                dropact=hf.get("activation_dropout", 0.0),
                init_std=hf.get("initializer_std") or 0.02, init_range=hf.get("initializer_range", 0.1),
                rel_attn_type=_HF_ATTENTION_TO_OURS[attention],
                separate_cls=hf.get("separate_cls", True), pooling_type=hf.get("pooling_type", "mean"),
                pool_q_only=hf.get("pool_q_only", True), truncate_seq=hf.get("truncate_seq", True),
                decoder_size=str(hf.get("num_decoder_layers", 2)),
                layer_norm_eps=hf.get("layer_norm_eps", 1e-9),
            ), source)
        except (TypeError, ValueError) as error:
            if isinstance(error, ConfigError):
                raise
            raise ConfigError(f"{source}: {error}") from None

    @classmethod
    def from_json(cls, path: str) -> "ModelConfig":
        """Reads our json, the original `net_config.json`, its PyTorch variant, or an HF `config.json`."""
        values = read_json_object(path)
        if "block_sizes" in values or values.get("model_type") == "funnel":
            return cls.from_hf_dict(values, path)
        if "block_size" not in values:
            raise ConfigError(f"{path}: neither a Funnel net_config.json (no 'block_size') nor a Hugging Face "
                              f"config.json (no 'block_sizes')")
        if set(values) <= set(PYTORCH_JSON_KEYS):
            # The PyTorch port drops ff_activation/init/rel_attn_type/decoder_size; it always used gelu, rel_shift,
            # and had no decoder.
            values = dict(values, ff_activation="gelu", rel_attn_type="rel_shift", decoder_size="0")
        return cls.from_dict(values, path)

    def to_json(self, path: str, original: bool = False) -> None:
        """Writes our json (all keys), or with `original=True` exactly the original 20 keys (indent 4, sorted)."""
        values = self.to_original_dict() if original else self.to_dict()
        file_io.atomic_write_text(path, json.dumps(values, indent=4, sort_keys=True) + "\n")


# Configs of the released models (semantics C2) and of the standard Transformers they are compared with; the
# standard ones are one-block Funnels (no pooling) with the same relative attention, as in the paper.
def _sized(block_size: str, d_model: int, decoder_size: str = "2") -> ModelConfig:
    return ModelConfig(block_size=block_size, d_embed=d_model, d_model=d_model, n_head=d_model // 64, d_head=64,
                       d_inner=4 * d_model, decoder_size=decoder_size)


NAMED_CONFIGS: dict[str, ModelConfig] = {
    "B4-4-4H768": _sized("4_4_4", 768),
    "B6-3x2-3x2H768": _sized("6_3x2_3x2", 768),
    "B6-6-6H768": _sized("6_6_6", 768),
    "B8-8-8H1024": _sized("8_8_8", 1024),
    "B10-10-10H1024": _sized("10_10_10", 1024),
    "L12H768": _sized("12", 768, decoder_size="0"),
    "L24H1024": _sized("24", 1024, decoder_size="0"),
}


# "B4F-4-4H768": the paper's naming, one depth token per block, with "F" marking a Fourier block (the hybrid).
_MODEL_NAME = re.compile(r"^B(\d+(?:x\d+)?F?(?:-\d+(?:x\d+)?F?)*)H(\d+)$")


def parse_model_name(name: str) -> ModelConfig | None:
    """The config a paper-style name describes, or None when `name` is not one; "F" marks a Fourier block.

        parse_model_name("B4F-4-4H768")   # B4-4-4H768 with block_mixers "fourier_attention_attention"
    """
    match = _MODEL_NAME.match(name)
    if not match:
        return None
    d_model = int(match.group(2))
    if d_model % 64:
        raise ConfigError(f"model name {name!r}: H{d_model} must be a multiple of 64 (heads of width 64)")
    tokens = match.group(1).split("-")
    mixers = ["fourier" if token.endswith("F") else "attention" for token in tokens]
    config = _sized("_".join(token.rstrip("F") for token in tokens), d_model)
    return config.replace(block_mixers=mixers[0] if len(set(mixers)) == 1 else "_".join(mixers))


def named_config(name: str) -> ModelConfig:
    """One of NAMED_CONFIGS, e.g. named_config("B6-6-6H768"), or a paper-style name with Fourier blocks marked
    "F" (fnet semantics N8), e.g. named_config("B4F-4-4H768")."""
    if name in NAMED_CONFIGS:
        return NAMED_CONFIGS[name]
    config = parse_model_name(name)
    if config is None:
        raise ConfigError(f"unknown model name {name!r}; known: {', '.join(NAMED_CONFIGS)}, or B<blocks>H<d_model> "
                          f"with an F after each Fourier block, e.g. B4F-4-4H768")
    return config


def load_config(path_or_name: str) -> ModelConfig:
    """A named config, a json file, or a directory holding config.json / net_config.json."""
    if path_or_name in NAMED_CONFIGS or (not os.path.exists(path_or_name) and parse_model_name(path_or_name)):
        return named_config(path_or_name)
    if os.path.isdir(path_or_name):
        for candidate in ("funnel_config.json", "net_config.json", "config.json", "net_config.pytorch.json"):
            full = os.path.join(path_or_name, candidate)
            if os.path.exists(full):
                return ModelConfig.from_json(full)
        raise ConfigError(f"{path_or_name}: no funnel_config.json, net_config.json, config.json or "
                          f"net_config.pytorch.json in this directory")
    return ModelConfig.from_json(path_or_name)
