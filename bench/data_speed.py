r"""Data-path speed, measured side by side in one run on the same real text (State of the Union, BERT vocab).

    python bench/data_speed.py                 # all parts; --files=2 --seq_len=128 --batch_size=8

(i) tokens/s: transformers' BertTokenizerFast on the corpus lines, our in-graph WordPiece on the same lines,
    and create_pretrain_data end to end (read, tokenize, pack, write) with one task and with one task per core.
(ii) examples/s out of the input pipeline (word_span masking) next to the training step of B4-4-4H768 (forward
    + backward, XLA) at the same batch and length: the pipeline must be faster than the step.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("files", 4, "Corpus files (of 8, ~1.3 MB each) to use.")
flags.DEFINE_integer("seq_len", 128, "Example length.")
flags.DEFINE_integer("batch_size", 8, "Batch of the pipeline and the training step.")
flags.DEFINE_integer("num_predict", 20, "Targets per example.")
flags.DEFINE_integer("steps", 5, "Timed training steps.")


def main(argv):
    del argv
    import numpy as np
    import tensorflow as tf
    import transformers

    from funnel_tfm.data import data_fetch
    from funnel_tfm.config import named_config
    from funnel_tfm.data.input_func_builder import MaskingIds, pretrain_input_fn
    from funnel_tfm.modeling import FunnelTFM
    from funnel_tfm.analysis.timing import machine_description
    from funnel_tfm.data.tokenization import Tokenizer

    vocab = data_fetch.bert_uncased_vocab()
    files = data_fetch.sotu_corpus()[:FLAGS.files]
    lines = [l.strip() for f in files for l in open(f, encoding="utf-8") if l.strip()]
    print(f"machine: {machine_description()}; {len(lines)} lines, {sum(map(len, lines)) / 1e6:.1f} M chars")

    hf = transformers.BertTokenizerFast(vocab=vocab)
    start = time.perf_counter()
    tokens = sum(len(x) for x in hf(lines, add_special_tokens=False)["input_ids"])
    hf_rate = tokens / (time.perf_counter() - start)
    ours = Tokenizer.from_file(vocab)
    ours.encode_batch(lines[:100])  # build the graph once
    start = time.perf_counter()
    ours.encode_batch(lines)
    our_rate = tokens / (time.perf_counter() - start)
    print(f"(i) tokenize only: BertTokenizerFast {hf_rate:,.0f} tokens/s | ours (tensorflow-text) {our_rate:,.0f} "
          f"tokens/s | ratio {our_rate / hf_rate:.2f}")
    glob = ",".join(files)
    for label, extra in (("1 task", ["--num_proc=1"]), (f"{os.cpu_count()} tasks", ["--parallel",
                                                                                     f"--num_proc={os.cpu_count()}"])):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "funnel_tfm.create_pretrain_data", f"--input_glob={glob}",
                                   f"--save_dir={out}", f"--tokenizer_path={vocab}", f"--seq_len={FLAGS.seq_len}",
                                   *extra], check=True, capture_output=True, text=True)
            seconds = time.perf_counter() - start
        inside = float(re.search(r"([\d,]+) tokens/s", done.stdout).group(1).replace(",", ""))
        print(f"    create_pretrain_data, {label}: {inside:,.0f} tokens/s (its own summary: read, tokenize, pack, "
              f"write) = {inside / hf_rate:.2f}x BertTokenizerFast alone; {tokens / seconds:,.0f} tokens/s with "
              f"process start-up ({seconds:.1f} s)")

    with tempfile.TemporaryDirectory() as out:
        subprocess.run([sys.executable, "-m", "funnel_tfm.create_pretrain_data", f"--input_glob={glob}",
                        f"--save_dir={out}", f"--tokenizer_path={vocab}", f"--seq_len={FLAGS.seq_len}"],
                       check=True, capture_output=True)
        dataset = pretrain_input_fn([out], FLAGS.seq_len, FLAGS.batch_size, FLAGS.num_predict,
                                    MaskingIds.from_tokenizer(ours), "word_span", seed=0)(None)
        iterator = iter(dataset)
        for _ in range(5):
            next(iterator)
        count = 200
        start = time.perf_counter()
        for _ in range(count):
            next(iterator)
        pipe_rate = count * FLAGS.batch_size / (time.perf_counter() - start)
    config = named_config("B4-4-4H768")
    model = FunnelTFM(config)
    rng = np.random.default_rng(0)
    inputs = {"token_ids": rng.integers(1000, 30000, (FLAGS.batch_size, FLAGS.seq_len)).astype(np.int32),
              "segment_ids": np.zeros((FLAGS.batch_size, FLAGS.seq_len), np.int32),
              "padding_mask": np.ones((FLAGS.batch_size, FLAGS.seq_len), np.int32)}

    @tf.function(jit_compile=True)
    def step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x, training=True)["decoder_output"]))
        grads = tape.gradient(loss, model.trainable_variables)
        return loss, grads

    step(inputs)
    start = time.perf_counter()
    for _ in range(FLAGS.steps):
        step(inputs)[0].numpy()  # waits for the whole compiled step
    step_rate = FLAGS.steps * FLAGS.batch_size / (time.perf_counter() - start)
    print(f"(ii) input pipeline (word_span masking): {pipe_rate:,.0f} examples/s | B4-4-4H768 training step "
          f"(fwd+bwd, XLA): {step_rate:,.1f} examples/s | pipeline / step = {pipe_rate / step_rate:,.0f}x "
          f"(batch {FLAGS.batch_size} x {FLAGS.seq_len})")


if __name__ == "__main__":
    app.run(main)
