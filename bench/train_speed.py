r"""Pretraining step speed: steps/s, tokens/s and achieved FLOP/s against this machine's matmul peak.

    python bench/train_speed.py                                  # B4-4-4H768, MLM and ELECTRA, 8 x 128, float32
    python bench/train_speed.py --model=B6-6-6H768 --batch_size=16 --precision=mixed_bfloat16 --steps=20
    python bench/train_speed.py --model=tiny --batch_size=16 --seq_len=64 --steps=50   # the per-step overhead

The step is the real one (`training.Trainer`: forward, backward, all-reduce, clipping, AdamW) on one device,
with XLA, several steps per host call; the batch is a fixed synthetic one of the real shapes (the input
pipeline is measured separately in bench/data_speed.py, ~1,600x faster than this step). Achieved FLOP/s uses
the analytic count of `flops.pretraining_step_flops` (3 x forward matmul FLOPs); the peak is the best of a
few large float32 matrix multiplies in TensorFlow on the same machine, measured in the same run. Beside each
step the script times the model's own forward+backward (the task loss and its gradients, XLA, nothing else) on
the same batch, so "step / fwd+bwd" says how much of the step's FLOP/s the optimizer and the host loop cost, and
the time to the first step (tracing and compiling) is printed too. `--model=tiny` (d_model 32, 4 heads of 8, 1+1 blocks)
measures the fixed per-step overhead rather than the FLOPs.
"""

from __future__ import annotations

import dataclasses
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from funnel_tfm.config import ModelConfig, load_config  # noqa: E402
from funnel_tfm.analysis.flops import pretraining_step_flops  # noqa: E402
from funnel_tfm.training.optimization import AdamW, DynamicLossScale, WarmupDecay  # noqa: E402
from funnel_tfm.tasks import build_pretraining_task  # noqa: E402
from funnel_tfm.analysis.timing import machine_description, median_seconds  # noqa: E402
from funnel_tfm.training.trainer import Trainer  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "B4-4-4H768", "Named config, json, or `tiny` (d_model 32, blocks 1_1, decoder 1).")
flags.DEFINE_list("loss_types", ["mlm", "electra"], "Objectives to time.")
flags.DEFINE_integer("batch_size", 8, "Global batch size.")
flags.DEFINE_integer("seq_len", 128, "Sequence length.")
flags.DEFINE_integer("num_predict", 20, "Target slots per example.")
flags.DEFINE_integer("vocab_size", 0, "Override the config's vocabulary (0: keep it); a small one shows what the "
                     "LM head over 30,522 words costs in a small model.")
flags.DEFINE_integer("steps", 10, "Timed steps (one host call), after one warm-up call.")
flags.DEFINE_enum("precision", "float32", ["float32", "mixed_bfloat16", "mixed_float16"], "Compute precision.")
flags.DEFINE_integer("matmul_size", 4096, "Size of the square matmul that measures the peak.")
flags.DEFINE_list("updates", ["fused", "separate"],
                  "Step forms to time: `fused` (gradients and AdamW update in one XLA program, the one-device "
                  "default) and/or `separate` (gradients, then one compiled update per variable: the multi-replica "
                  "path).")


def matmul_peak_flops(size: int, repeats: int = 5) -> float:
    a = tf.random.normal([size, size])
    b = tf.random.normal([size, size])
    matmul = tf.function(lambda x, y: tf.matmul(x, y))
    matmul(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2.0 * size ** 3 / best


def synthetic_batch(vocab_size: int, batch_size: int, seq_len: int, num_predict: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    origin = rng.integers(1000, vocab_size, size=(batch_size, seq_len)).astype(np.int32)
    positions = np.sort(np.stack([rng.choice(np.arange(1, seq_len - 1), num_predict, replace=False)
                                  for _ in range(batch_size)]), axis=1).astype(np.int32)
    is_target = np.zeros((batch_size, seq_len), bool)
    np.put_along_axis(is_target, positions, True, axis=1)
    masked = np.where(is_target, 103, origin).astype(np.int32)
    segments = np.zeros_like(origin)
    segments[:, 0] = 2
    ones = np.ones_like(origin)
    mapping = np.zeros((batch_size, num_predict, seq_len), np.float32)
    for b in range(batch_size):
        mapping[b, np.arange(num_predict), positions[b]] = 1.0
    return {"token_ids": masked, "origin_ids": origin, "segment_ids": segments, "padding_mask": ones,
            "mlm_padding_mask": np.where(is_target, 0, 1).astype(np.int32), "is_target": is_target,
            "target_positions": positions, "target": np.take_along_axis(origin, positions, 1),
            "target_weights": np.ones((batch_size, num_predict), np.float32), "target_mapping": mapping}


TINY = ModelConfig(block_size="1_1", decoder_size="1", d_model=32, d_embed=32, n_head=4, d_head=8, d_inner=64)


def forward_backward_seconds(trainer: Trainer, batch: dict, repeats: int = 5) -> float:
    """One XLA call of the task loss and its gradients on `batch` (no update, no host loop), median seconds."""
    variables = trainer.variables
    global_batch = trainer.global_batch_size

    @tf.function(jit_compile=True)
    def gradients(inputs, extras):
        with tf.GradientTape() as tape:
            loss, _ = trainer.task.loss(inputs, extras, global_batch, training=True)
        grads = tape.gradient(loss, variables)
        # One scalar that depends on every gradient, so that none is pruned away.
        return tf.add_n([tf.reduce_sum(tf.convert_to_tensor(g)) for g in grads if g is not None])

    inputs = {key: tf.constant(value) for key, value in batch.items()}
    extras = trainer.task.step_inputs(inputs, tf.constant(0, tf.int64), 0, 0, 1, global_batch)
    return median_seconds(lambda: gradients(inputs, extras).numpy(), repeats)


def time_objective(config, loss_type: str, update: str) -> dict:
    keras.utils.clear_session()
    keras.utils.set_random_seed(0)
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        task = build_pretraining_task(config, loss_type, dtype=FLAGS.precision)
        loss_scale = DynamicLossScale() if FLAGS.precision == "mixed_float16" else None
        optimizer = AdamW(task.trainable_variables(), WarmupDecay(1e-4, 0, 1000), loss_scale=loss_scale)
        trainer = Trainer(strategy, task, optimizer, FLAGS.batch_size, jit_compile=True,
                          fused_update=update == "fused")
    batch = synthetic_batch(config.vocab_size, FLAGS.batch_size, FLAGS.seq_len, FLAGS.num_predict)
    iterator = trainer.distribute(lambda _: tf.data.Dataset.from_tensors(batch).repeat())
    start = time.perf_counter()
    trainer.run_steps(iterator, 1)  # trace and compile
    first_step = time.perf_counter() - start
    trainer.run_steps(iterator, 2)
    seconds = median_seconds(lambda: trainer.run_steps(iterator, FLAGS.steps), 3, warmup=0) / FLAGS.steps
    model_seconds = forward_backward_seconds(trainer, batch)
    flops = pretraining_step_flops(config, FLAGS.seq_len, FLAGS.batch_size, FLAGS.num_predict, loss_type)
    return {"loss_type": f"{loss_type}, {update}", "step_s": seconds, "steps_per_s": 1 / seconds,
            "tokens_per_s": FLAGS.batch_size * FLAGS.seq_len / seconds, "gflop_per_step": flops / 1e9,
            "achieved_gflops": flops / seconds / 1e9, "first_step_s": first_step,
            "model_gflops": flops / model_seconds / 1e9,
            "params_M": sum(int(v.shape.num_elements()) for v in optimizer.variables_) / 1e6}


def main(argv: list[str]) -> None:
    del argv
    config = TINY if FLAGS.model == "tiny" else load_config(FLAGS.model)
    if FLAGS.vocab_size:
        config = dataclasses.replace(config, vocab_size=FLAGS.vocab_size)
    peak = matmul_peak_flops(FLAGS.matmul_size)
    print(f"machine: {machine_description()}; TensorFlow {tf.__version__}")
    print(f"{FLAGS.model} (vocabulary {config.vocab_size:,}), one device, global batch {FLAGS.batch_size} x {FLAGS.seq_len}, num_predict "
          f"{FLAGS.num_predict}, {FLAGS.precision}, XLA, {FLAGS.steps} steps per host call, median of 3 host calls")
    print(f"peak: float32 {FLAGS.matmul_size}^2 matmul in TensorFlow = {peak / 1e9:.1f} GFLOP/s")
    print("objective, update | params (M) | s/step | steps/s | tokens/s | GFLOP/step | achieved GFLOP/s | of peak | "
          "fwd+bwd alone GFLOP/s | step / fwd+bwd | first step s")
    for loss_type, update in [(loss, update) for loss in FLAGS.loss_types for update in FLAGS.updates]:
        row = time_objective(config, loss_type, update)
        print(f"{row['loss_type']} | {row['params_M']:.1f} | {row['step_s']:.3f} | {row['steps_per_s']:.2f} | "
              f"{row['tokens_per_s']:,.0f} | {row['gflop_per_step']:.1f} | {row['achieved_gflops']:.1f} | "
              f"{row['achieved_gflops'] * 1e9 / peak:.2f} | {row['model_gflops']:.1f} | "
              f"{row['achieved_gflops'] / row['model_gflops']:.2f} | {row['first_step_s']:.1f}", flush=True)


if __name__ == "__main__":
    app.run(main)
