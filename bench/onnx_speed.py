r"""ONNX export speed: onnxruntime (CPU) against the same Keras classifier on TensorFlow, same weights, same inputs.

Latency: median time of one call at batch 1. Throughput: sequences per second at --batch_size. The Keras model
runs as a `tf.function` (graph mode, and with --jit_compile also XLA), the way `--do_predict` and the SavedModel
run it; onnxruntime runs the file `--format=onnx` writes (graph optimisations on, --threads intra-op threads).
Before timing, both give the same logits (the export refuses a difference over 1e-4).

    python bench/onnx_speed.py                                  # B4-4-4H768, length 128, batch 16
    python bench/onnx_speed.py --model=B2-2-2H256 --seq_len=128 --batch_size=8 --repeats=5

Needs the [onnx] extra (torch, onnx, onnxscript, onnxruntime).
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from funnel_tfm.analysis.timing import machine_description, median_seconds, random_inputs  # noqa: E402
from funnel_tfm.config import named_config  # noqa: E402
from funnel_tfm.serving.onnx_export import OnnxJob, export_onnx  # noqa: E402
from funnel_tfm.tasks.classification import ClassificationTask  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "B4-4-4H768", "Named config of the classifier's backbone.")
flags.DEFINE_integer("seq_len", 128, "Fixed sequence length of the export.")
flags.DEFINE_integer("batch_size", 16, "Batch of the throughput measurement.")
flags.DEFINE_integer("threads", 2, "Intra-op threads for both runtimes.")
flags.DEFINE_integer("repeats", 5, "Timed repetitions; the median is reported.")
flags.DEFINE_boolean("jit_compile", False, "Also time the Keras model compiled with XLA.")


def onnx_session(path: str, threads: int):
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def main(argv: list[str]) -> None:
    del argv
    import onnxruntime
    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    config = named_config(FLAGS.model).replace(vocab_size=30522)
    keras.utils.set_random_seed(0)
    model = ClassificationTask.build(config, 2, dtype="float32").model
    batch = random_inputs(config, FLAGS.batch_size, FLAGS.seq_len)
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "model.onnx")
        result = export_onnx([OnnxJob(model, batch, path)])[0]
        session = onnx_session(path, FLAGS.threads)
        size_mb = os.path.getsize(path) / 2**20
        runners = {"keras graph": tf.function(lambda x: model(x, training=False))}
        if FLAGS.jit_compile:
            runners["keras XLA"] = tf.function(lambda x: model(x, training=False), jit_compile=True)
        rows = []
        for batch_size in (1, FLAGS.batch_size):
            inputs = {key: value[:batch_size] for key, value in batch.items()}
            tensors = {key: tf.constant(value) for key, value in inputs.items()}
            times = {name: median_seconds(lambda run=run: run(tensors).numpy(), FLAGS.repeats)
                     for name, run in runners.items()}
            times["onnxruntime"] = median_seconds(lambda: session.run(None, inputs), FLAGS.repeats)
            rows.append((batch_size, times))
    print(f"machine: {machine_description()}; TensorFlow {tf.__version__}, Keras {keras.__version__}, onnxruntime "
          f"{onnxruntime.__version__}, exporter torch {result['torch']} (opset {result['opset']}); {FLAGS.threads} "
          f"intra-op threads each; {FLAGS.model} classifier, length {FLAGS.seq_len}, float32, model.onnx "
          f"{size_mb:,.0f} MB; max |onnxruntime - keras| logits {result['max_abs_diff']['logits']:.1e}; median of "
          f"{FLAGS.repeats} after one warm-up")
    names = list(rows[0][1])
    print("| batch | " + " | ".join(f"{name} ms" for name in names) + " | " +
          " | ".join(f"{name} seq/s" for name in names) + " | keras graph ms / onnxruntime ms |")
    print("|---" * (2 * len(names) + 2) + "|")
    for batch_size, times in rows:
        speed = {name: batch_size / seconds for name, seconds in times.items()}
        print(f"| {batch_size} | " + " | ".join(f"{times[n] * 1e3:,.1f}" for n in names) + " | " +
              " | ".join(f"{speed[n]:,.1f}" for n in names) +
              f" | {times['keras graph'] / times['onnxruntime']:.2f} |")


if __name__ == "__main__":
    app.run(main)
