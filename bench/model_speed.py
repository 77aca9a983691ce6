r"""Model speed, measured side by side in one run on this machine.

(i)  FunnelTFM against transformers' PyTorch FunnelModel with the same weights and inputs: forward and
     forward+backward, tokens per second and the ratio (ours / theirs, > 1 means we are faster).
(ii) Step time (forward+backward of the encoder, the finetuning setting) of B4-4-4H768 and B6-6-6H768 relative
     to L12H768 (our own one-block config with the same relative attention), next to the analytic FLOPs ratio;
     `--models` may add FNet (`FNet-Base`: FFT mixing; `FNet-Base:dft`: the DFT-matrix path) and hybrids
     (`B4F-4-4H768`: Fourier mixing in the full-length first block).

    python bench/model_speed.py                         # defaults below
    python bench/model_speed.py --part=ii --seq_lens=128 --repeats=5
    python bench/model_speed.py --part=ii --models=L12H768,FNet-Base,FNet-Base:dft,B4-4-4H768,B4F-4-4H768

Needs the test extras (torch, transformers) for part (i).
"""

from __future__ import annotations

import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from funnel_tfm.config import named_config  # noqa: E402
from funnel_tfm.config_fnet import FNetConfig, load_any_config  # noqa: E402
from funnel_tfm.analysis.flops import flops_per_token, fnet_flops_per_token  # noqa: E402
from funnel_tfm.modeling import FunnelTFM  # noqa: E402
from funnel_tfm.modeling_fnet import FNet  # noqa: E402
from funnel_tfm.analysis.timing import machine_description, median_seconds, random_inputs  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_enum("part", "all", ["all", "i", "ii"], "Which comparison to run.")
flags.DEFINE_string("model", "B4-4-4H768", "Config for part (i) (full model with decoder, as FunnelModel).")
flags.DEFINE_integer("seq_len", 128, "Sequence length for part (i).")
flags.DEFINE_integer("batch_size", 8, "Batch size for part (i).")
flags.DEFINE_list("seq_lens", ["128", "512"], "Sequence lengths for part (ii).")
flags.DEFINE_integer("tokens_per_step", 2048, "Tokens per step in part (ii) (batch = tokens / length).")
flags.DEFINE_list("models", ["L12H768", "B4-4-4H768", "B6-6-6H768"],
                  "Part (ii) models, the first is the reference; FNet names (FNet-Base), `NAME:dft` for FNet's "
                  "DFT-matrix path, hybrid names (B4F-4-4H768).")
flags.DEFINE_integer("repeats", 3, "Timed repetitions; the median is reported.")
flags.DEFINE_boolean("jit_compile", True, "Compile our forward/backward with XLA (part i also reports graph mode).")


def tf_functions(model: FunnelTFM, output_key: str, jit_compile: bool):
    """Compiled forward and forward+backward of `model` (dropout off, as in the torch eval-mode comparison)."""
    forward = tf.function(lambda x: model(x, training=False)[output_key], jit_compile=jit_compile)

    def train(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x, training=False)[output_key]))
        return loss, tape.gradient(loss, model.trainable_variables)

    return forward, tf.function(train, jit_compile=jit_compile)


def part_i(config_name: str, seq_len: int, batch_size: int, repeats: int) -> None:
    import torch
    from transformers import FunnelConfig, FunnelModel

    torch.set_num_threads(os.cpu_count())
    config = named_config(config_name).replace(dropout=0.0, dropatt=0.0, dropact=0.0)
    torch.manual_seed(0)
    hf_model = FunnelModel(FunnelConfig(**config.to_hf_dict())).eval()
    with tempfile.TemporaryDirectory() as directory:
        hf_model.save_pretrained(directory)
        ours = FunnelTFM.from_pretrained(directory)
    # Unpadded rows: with padding, transformers' mask pooling departs from the original (see the parity tests),
    # and the diff column would measure that instead of numerical agreement.
    inputs = random_inputs(config, batch_size, seq_len, pad_rows=False)
    tf_inputs = {k: tf.constant(v) for k, v in inputs.items()}
    torch_args = dict(input_ids=torch.tensor(inputs["token_ids"], dtype=torch.long),
                      token_type_ids=torch.tensor(inputs["segment_ids"], dtype=torch.long),
                      attention_mask=torch.tensor(inputs["padding_mask"], dtype=torch.float32))

    def torch_forward():
        with torch.no_grad():
            return hf_model(**torch_args).last_hidden_state

    def torch_train():
        hf_model.zero_grad(set_to_none=True)
        loss = hf_model(**torch_args).last_hidden_state.square().mean()
        loss.backward()
        return loss

    tokens = batch_size * seq_len
    torch_fwd = median_seconds(torch_forward, repeats)
    torch_step = median_seconds(torch_train, repeats)
    reference = torch_forward().numpy()
    print(f"\n(i) {config_name} full model (encoder + decoder), batch {batch_size} x length {seq_len}, float32, "
          f"same weights and inputs; tokens/s (higher is better)")
    print("implementation | forward tok/s | fwd+bwd tok/s | forward x | fwd+bwd x | max |diff| vs torch")
    print(f"transformers (PyTorch {torch.__version__}) | {tokens / torch_fwd:,.0f} | {tokens / torch_step:,.0f} | "
          f"1.00 | 1.00 | 0")
    for label, jit in (("funnel_tfm tf.function", False), ("funnel_tfm XLA", True)):
        forward, train = tf_functions(ours, "decoder_output", jit)
        fwd = median_seconds(lambda: forward(tf_inputs).numpy(), repeats)
        step = median_seconds(lambda: train(tf_inputs)[0].numpy(), repeats)
        diff = float(np.abs(forward(tf_inputs).numpy() - reference).max())
        print(f"{label} (TF {tf.__version__}) | {tokens / fwd:,.0f} | {tokens / step:,.0f} | "
              f"{torch_fwd / fwd:.2f} | {torch_step / step:.2f} | {diff:.1e}", flush=True)


def encoder_for(spec: str):
    """(model, config, forward FLOPs per token function) for a part (ii) name, dropout off."""
    name, _, path = spec.partition(":")
    config = load_any_config(name)
    if isinstance(config, FNetConfig):
        config = config.replace(dropout=0.0, attention_dropout=0.0, use_fft=path != "dft")
        return FNet(config), config, lambda length: fnet_flops_per_token(config, length)
    config = config.replace(dropout=0.0, dropatt=0.0, dropact=0.0)
    return FunnelTFM(config, use_decoder=False), config, lambda length: flops_per_token(config, length)


def part_ii(models: list[str], seq_lens: list[int], tokens_per_step: int, repeats: int, jit_compile: bool) -> None:
    print(f"\n(ii) encoder forward+backward step time relative to {models[0]}, {tokens_per_step} tokens per step, "
          f"float32{', XLA' if jit_compile else ''}")
    print("model | length | batch | step ms | time ratio | FLOPs ratio | time / FLOPs | speed-up")
    for seq_len in seq_lens:
        batch = max(1, tokens_per_step // seq_len)
        times, flops = {}, {}
        for name in models:
            keras.utils.clear_session()
            model, config, flops_of = encoder_for(name)
            inputs = {k: tf.constant(v) for k, v in random_inputs(config, batch, seq_len).items()}
            _, train = tf_functions(model, "sequence_output", jit_compile)
            times[name] = median_seconds(lambda: train(inputs)[0].numpy(), repeats)
            flops[name] = flops_of(seq_len)
            time_ratio = times[name] / times[models[0]]
            flops_ratio = flops[name] / flops[models[0]]
            print(f"{name} | {seq_len} | {batch} | {1000 * times[name]:.0f} | {time_ratio:.2f} | {flops_ratio:.2f} | "
                  f"{time_ratio / flops_ratio:.2f} | {1 / time_ratio:.2f}x", flush=True)
            del model


def main(argv: list[str]) -> None:
    del argv
    print(f"machine: {machine_description()}; TensorFlow {tf.__version__}; median of {FLAGS.repeats} after 1 warm-up")
    if FLAGS.part in ("all", "i"):
        part_i(FLAGS.model, FLAGS.seq_len, FLAGS.batch_size, FLAGS.repeats)
    if FLAGS.part in ("all", "ii"):
        part_ii(FLAGS.models, [int(s) for s in FLAGS.seq_lens], FLAGS.tokens_per_step, FLAGS.repeats,
                FLAGS.jit_compile)


if __name__ == "__main__":
    sys.exit(app.run(main))
