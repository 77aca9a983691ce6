r"""Model report: parameters, analytic FLOPs per token and measured forward time of Funnel and FNet configs.

    python -m funnel_tfm.describe                                  # released sizes + L12H768 / L24H1024
    python -m funnel_tfm.describe --models=B4-4-4H768,L12H768 --seq_lens=128
    python -m funnel_tfm.describe --config=path/net_config.json    # any json the loader reads
    python -m funnel_tfm.describe --models= --block_size=4x2_4 --d_model=512 --n_head=8 --d_inner=2048
    python -m funnel_tfm.describe --models=B4F-4-4H768,FNet-Base,out/hybrid/fnet_config.json --measure=false

Hybrids (docs/fnet_semantics.md N8, N9): a paper-style name marks Fourier blocks with "F" (B4F-4-4H768); FNet
configs are named (FNet-Base, FNet-Large) or read from an fnet_config.json / transformers FNet config.json, and
their attention layers (num_attention_layers, attention_layout) are counted. Fourier FLOPs follow the configured
path: 5·N·log2(N) for the FFT of N = L·D points, or the DFT matmuls 4·L·D² + 4·L²·D (analysis/flops.py).

FLOPs and times are for the encoder only (the "-base" model used for sequence-level finetuning), which is
how the paper compares Funnel with the standard Transformer; parameters are given with and without decoder.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported: keep the report readable

from absl import flags

from funnel_tfm import config_flags, flag_checks
from funnel_tfm.config import NAMED_CONFIGS, ConfigError, ModelConfig, load_config, read_json_object
from funnel_tfm.config_fnet import NAMED_FNET_CONFIGS, FNetConfig
from funnel_tfm.analysis.flops import count_parameters, flops_per_token, fnet_flops_per_token, fnet_parameters

FLAGS = flags.FLAGS
flags.DEFINE_list("models", list(NAMED_CONFIGS), f"Configs to describe: names ({', '.join(NAMED_CONFIGS)}, "
                  f"{', '.join(NAMED_FNET_CONFIGS)}, or B<blocks>H<d> with F after each Fourier block), or json files.")
flags.DEFINE_string("config", None, "A config json (ours, net_config.json, net_config.pytorch.json, HF config.json) "
                                    "or a directory holding one; described as 'custom'.")
flags.DEFINE_list("seq_lens", ["128", "512"], "Sequence lengths for FLOPs and timing.")
flags.DEFINE_string("baseline", "L12H768", "Named config that the relative FLOPs and times refer to.")
flags.DEFINE_boolean("measure", True, "Measure the forward time on this machine.")
flags.DEFINE_integer("batch_size", 1, "Batch size of the timed forward pass.", lower_bound=1)
flags.DEFINE_integer("repeats", 3, "Timed repetitions (median is reported).", lower_bound=1)
flags.DEFINE_boolean("jit_compile", False, "Compile the timed forward pass with XLA.")
flags.DEFINE_string("json_output", None, "Also write the rows as json to this file.")

AnyConfig = ModelConfig | FNetConfig


def load_any_config(name: str) -> AnyConfig:
    """A Funnel config (named, paper-style name, json or directory) or an FNet one (named or json).

        load_any_config("B4F-4-4H768"), load_any_config("FNet-Base"), load_any_config("out/fnet_config.json")
    """
    if name in NAMED_FNET_CONFIGS:
        return NAMED_FNET_CONFIGS[name]
    if os.path.isfile(name):
        values = read_json_object(name)
        if values.get("model_type") == "fnet" or "n_layer" in values:
            return FNetConfig.from_json(name)
    return load_config(name)


def parameters(config: AnyConfig, use_decoder: bool) -> int:
    """Backbone parameters; an FNet has no decoder and its pooler, like Funnel's summary, is left out."""
    if isinstance(config, FNetConfig):
        return fnet_parameters(config, include_pooler=False)
    return count_parameters(config, use_decoder=use_decoder)


def gflops_per_token(config: AnyConfig, seq_len: int) -> float:
    if isinstance(config, FNetConfig):
        return fnet_flops_per_token(config, seq_len) / 1e9
    return flops_per_token(config, seq_len) / 1e9


def layout(config: AnyConfig) -> str:
    """The blocks column: block_size with Fourier blocks marked F, or FNet's layers with the attending ones."""
    if isinstance(config, FNetConfig):
        attending = config.attention_layers()
        return f"FNet L{config.n_layer}" + (f" attn@{','.join(map(str, attending))}" if attending else "")
    return "_".join(size + ("F" if mixer == "fourier" else "")
                    for size, mixer in zip(config.block_size.split("_"), config.block_mixer_list))


def check_length(config: AnyConfig, seq_len: int) -> None:
    if isinstance(config, FNetConfig):
        config.check_length(seq_len)
    else:
        config.block_lengths(seq_len)


def measure_forward_ms(config: AnyConfig, seq_len: int, batch_size: int, repeats: int, jit_compile: bool) -> float:
    import keras
    import tensorflow as tf

    from funnel_tfm.modeling import FunnelTFM
    from funnel_tfm.modeling_fnet import FNet
    from funnel_tfm.analysis.timing import median_seconds, random_inputs

    keras.utils.clear_session()
    model = FNet(config) if isinstance(config, FNetConfig) else FunnelTFM(config, use_decoder=False)
    inputs = {k: tf.constant(v) for k, v in random_inputs(config, batch_size, seq_len).items()}
    forward = tf.function(lambda x: model(x, training=False)["sequence_output"], jit_compile=jit_compile)
    seconds = median_seconds(lambda: forward(inputs).numpy(), repeats=repeats)
    del model
    return 1000.0 * seconds


def describe(configs: dict[str, AnyConfig], seq_lens: list[int], baseline: ModelConfig, measure: bool,
             batch_size: int, repeats: int, jit_compile: bool) -> list[dict]:
    rows = []
    baseline_ms = {}
    if measure:
        for seq_len in seq_lens:
            baseline_ms[seq_len] = measure_forward_ms(baseline, seq_len, batch_size, repeats, jit_compile)
    for name, config in configs.items():
        row = {"name": name, "block_size": layout(config), "d_model": config.d_model,
               "params_full_M": parameters(config, use_decoder=True) / 1e6,
               "params_base_M": parameters(config, use_decoder=False) / 1e6}
        for seq_len in seq_lens:
            gflops = gflops_per_token(config, seq_len)
            row[f"gflops_per_token@{seq_len}"] = gflops
            row[f"flops_ratio@{seq_len}"] = gflops / gflops_per_token(baseline, seq_len)
            if measure:
                ms = (baseline_ms[seq_len] if config == baseline
                      else measure_forward_ms(config, seq_len, batch_size, repeats, jit_compile))
                row[f"forward_ms@{seq_len}"] = ms
                row[f"time_ratio@{seq_len}"] = ms / baseline_ms[seq_len]
        rows.append(row)
        print(format_row(row, seq_lens, measure), flush=True)
    return rows


def format_header(seq_lens: list[int], measure: bool) -> str:
    cells = ["model", "blocks", "params full/base (M)"]
    for seq_len in seq_lens:
        cells += [f"GFLOP/tok@{seq_len}", f"FLOPs x@{seq_len}"]
        if measure:
            cells += [f"fwd ms@{seq_len}", f"time x@{seq_len}"]
    return " | ".join(cells)


def format_row(row: dict, seq_lens: list[int], measure: bool) -> str:
    cells = [row["name"], row["block_size"], f"{row['params_full_M']:.1f} / {row['params_base_M']:.1f}"]
    for seq_len in seq_lens:
        cells += [f"{row[f'gflops_per_token@{seq_len}']:.3f}", f"{row[f'flops_ratio@{seq_len}']:.2f}"]
        if measure:
            cells += [f"{row[f'forward_ms@{seq_len}']:.1f}", f"{row[f'time_ratio@{seq_len}']:.2f}"]
    return " | ".join(cells)


def main(argv: list[str]) -> None:
    del argv
    try:
        seq_lens = [int(s) for s in FLAGS.seq_lens]
        configs = {name: NAMED_CONFIGS[name] if name in NAMED_CONFIGS else load_any_config(name)
                   for name in FLAGS.models}
        custom = config_flags.config_from_flags(FLAGS.config)
        if custom is not None:
            configs["custom"] = custom
        baseline = load_config(FLAGS.baseline)
        for config in list(configs.values()) + [baseline]:
            for seq_len in seq_lens:
                check_length(config, seq_len)
    except (ConfigError, ValueError) as error:
        sys.exit(f"describe: {error}")
    if FLAGS.measure:
        from funnel_tfm.analysis.timing import machine_description
        print(f"machine: {machine_description()}; forward of the encoder, batch {FLAGS.batch_size}, float32, "
              f"median of {FLAGS.repeats}{', XLA' if FLAGS.jit_compile else ''}; ratios relative to {FLAGS.baseline}")
    print(format_header(seq_lens, FLAGS.measure), flush=True)
    rows = describe(configs, seq_lens, baseline, FLAGS.measure, FLAGS.batch_size, FLAGS.repeats, FLAGS.jit_compile)
    if FLAGS.json_output:
        from funnel_tfm.file_io import atomic_write_text
        atomic_write_text(FLAGS.json_output, json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    flag_checks.run(main)
