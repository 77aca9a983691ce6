r"""Dropout under XLA on this CPU: Keras' Philox mask against our hashed mask (layers/dropout.py), side by side.

    python bench/dropout_speed.py                                   # attention-probability shapes, rate 0.1
    python bench/dropout_speed.py --shapes=8x12x128x128,8x128x768 --repeats=20

Each row is one `tf.function(jit_compile=True)` that applies the layer in training mode and sums the result
(so nothing is pruned), called repeatedly: the seed state advances on every call, as in training. Keras'
`Dropout` draws with `stateless_dropout` from that run-time seed; XLA's CPU compiler fuses the Philox key
derivation into the per-element loop, which is what made the attention dropout of a tiny model cost 110 ms
of a 340 ms training step before this project switched masks.
"""

from __future__ import annotations

import os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from funnel_tfm.analysis.timing import machine_description, median_seconds  # noqa: E402
from funnel_tfm.layers.dropout import Dropout  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("shapes", ["16x4x64x64", "8x12x128x128", "8x128x768"], "Tensor shapes, dims joined by x.")
flags.DEFINE_float("rate", 0.1, "Dropout rate.")
flags.DEFINE_integer("repeats", 10, "Timed calls (median reported) after two warm-up calls.")


def time_layer(layer: keras.layers.Layer, x: tf.Tensor, repeats: int) -> tuple[float, float]:
    """(median ms per call, fraction of zeros) of `layer(x, training=True)` compiled with XLA."""
    step = tf.function(lambda: tf.reduce_sum(layer(x, training=True)), jit_compile=True)
    zeros = float(tf.reduce_mean(tf.cast(tf.equal(tf.function(lambda: layer(x, training=True),
                                                              jit_compile=True)(), 0.0), tf.float32)))
    return 1000.0 * median_seconds(lambda: step().numpy(), repeats, warmup=2), zeros


def main(argv: list[str]) -> None:
    del argv
    print(f"machine: {machine_description()}; TensorFlow {tf.__version__}, Keras {keras.__version__}; "
          f"rate {FLAGS.rate}, XLA, median of {FLAGS.repeats}")
    print("shape | elements | keras.layers.Dropout ms | ours ms | keras / ours | zeros keras / ours")
    for text in FLAGS.shapes:
        shape = [int(d) for d in text.split("x")]
        x = tf.ones(shape)
        keras.utils.set_random_seed(0)
        theirs_ms, theirs_zeros = time_layer(keras.layers.Dropout(FLAGS.rate), x, FLAGS.repeats)
        ours_ms, ours_zeros = time_layer(Dropout(FLAGS.rate), x, FLAGS.repeats)
        print(f"{text} | {int(np.prod(shape)):,} | {theirs_ms:.2f} | {ours_ms:.2f} | {theirs_ms / ours_ms:.1f} | "
              f"{theirs_zeros:.4f} / {ours_zeros:.4f}", flush=True)


if __name__ == "__main__":
    app.run(main)
