r"""Attention, FNet and the Funnel-Fourier hybrid under one pretraining + finetuning budget, on real text (toy scale).

    python bench/mixer_accuracy.py                                   # 300 MLM steps, 400 finetuning steps each
    python bench/mixer_accuracy.py --train_steps=600 --finetune_steps=600 --work_dir=/tmp/mixers

The paper's trade-off (FNet: most of BERT's accuracy for much less time) at a scale that runs on 2 CPU cores, so
read it as a smoke test of the trade-off, not as a replication: the main job's earlier records (State of the
Union, bert-base-uncased vocabulary, 128 tokens; the main job now pretrains on in-domain text), the same MLM budget (steps, batch, learning rate, warmup) for
three models of the same width (d_model 128, FFN 512, 4 token-mixing layers), then the same SST-2-style
finetuning of each on the movie-review sentences (`python -m funnel_tfm.demo` documents the data):

* attention: the main job's Funnel, B2-2 (relative attention; pooling after block 1, decoder 1);
* hybrid: the same Funnel with Fourier mixing in the full-length first block (`block_mixers=fourier_attention`);
* FNet: 4 Fourier layers (FFT), absolute positions, no pooling.

Each row: pretraining wall time and its last masked-token accuracy, finetuning wall time, best dev accuracy from
the pretrained weights and (`--from_random`, on by default) from random initialisation with the same finetuning
recipe: at this scale a pretrained start can sit at chance (BENCHMARKS.md, the main job), so the random start is
what shows each token mixer's ability to learn the task at all. Every run is a real `pretrain` / `classifier`
process; a rerun with the same --work_dir resumes or reuses them.
"""

from __future__ import annotations

import json
import os
import sys
import time

from absl import app, flags

from funnel_tfm.demo import FINETUNE_LEN, MODEL, read_jsonl, run_step

SEQ_LEN = 128  # the State of the Union records this bench pretrains on (the main job now uses in-domain text at 64)

FLAGS = flags.FLAGS
# --work_dir (default here: <data cache>/mixers), --train_steps and --finetune_steps are the main job's flags
# (funnel_tfm/demo.py defines them), with the same meaning for each of the models; this bench keeps its own
# defaults (300 and 400, what BENCHMARKS.md's table was measured with).
FLAGS.set_default("train_steps", 300)
FLAGS.set_default("finetune_steps", 400)
flags.DEFINE_list("models", ["attention", "hybrid", "fnet"], "Which of the three to run.")
flags.DEFINE_boolean("from_random", True, "Also finetune each model from random initialisation.")

FNET = {"d_embed": 128, "d_model": 128, "d_inner": 512, "n_layer": 4, "vocab_size": 30522, "max_seq_length": 128}


def write_config(name: str, path: str) -> None:
    """The model's config json: the main job's Funnel, its hybrid, or the FNet of the same width."""
    from funnel_tfm.config import ModelConfig
    from funnel_tfm.config_fnet import FNetConfig
    if name == "fnet":
        FNetConfig(**FNET).to_json(path)
    else:
        mixers = {"block_mixers": "fourier_attention"} if name == "hybrid" else {}
        ModelConfig(**MODEL, **mixers, vocab_size=30522).to_json(path)


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    run_step(command)
    return time.perf_counter() - start


def pretrain_and_finetune(name: str, work_dir: str, records: str, vocab: str, glue_dir: str) -> dict:
    config = os.path.join(work_dir, f"{name}.json")
    write_config(name, config)
    model_dir = os.path.join(work_dir, f"{name}-mlm-{FLAGS.train_steps}")
    steps = FLAGS.train_steps
    pretrain_s = timed([sys.executable, "-m", "funnel_tfm.pretrain", f"--record_dir={records}",
                        f"--tokenizer_path={vocab}", f"--model_dir={model_dir}", f"--model_config={config}",
                        "--loss_type=mlm", f"--seq_len={SEQ_LEN}", "--num_predict=20", "--train_batch_size=16",
                        f"--train_steps={steps}", "--iterations=25", f"--save_steps={steps}",
                        "--learning_rate=1e-3", f"--warmup_steps={max(1, steps // 10)}",
                        "--sample_strategy=single_token"])
    pretrained = read_jsonl(os.path.join(model_dir, "metrics.jsonl"))[-1]
    finetune_s, best = finetune(work_dir, glue_dir, vocab, f"sst2-{name}", [f"--init_checkpoint={model_dir}"])
    row = {"model": name, "pretrain_s": pretrain_s, "mlm_accuracy": pretrained["mlm_accuracy"],
           "mlm_loss": pretrained["mlm_loss"], "finetune_s": finetune_s, "dev_accuracy": best["accuracy"],
           "best_step": best["step"]}
    if FLAGS.from_random:
        _, best = finetune(work_dir, glue_dir, vocab, f"sst2-{name}-random", [f"--model_config={config}"])
        row.update(random_dev_accuracy=best["accuracy"], random_best_step=best["step"])
    return row


def finetune(work_dir: str, glue_dir: str, vocab: str, name: str, init: list[str]) -> tuple[float, dict]:
    """One SST-2 finetuning run (the main job's recipe, XLA as every job by default): (seconds, best dev row)."""
    tune = FLAGS.finetune_steps
    finetuned = os.path.join(work_dir, f"{name}-{tune}")
    seconds = timed([sys.executable, "-m", "funnel_tfm.classifier", "--task_name=sst-2", f"--data_dir={glue_dir}",
                     f"--output_dir={os.path.join(work_dir, 'sst2-records')}", f"--model_dir={finetuned}",
                     f"--tokenizer_path={vocab}", f"--max_seq_length={FINETUNE_LEN}", "--do_train=True",
                     "--do_eval=True", "--train_batch_size=32", f"--train_steps={tune}",
                     f"--save_steps={max(1, tune // 4)}", f"--warmup_steps={tune // 10}", "--learning_rate=2e-4",
                     "--eval_batch_size=64", f"--iterations={max(1, tune // 8)}"] + init)
    evaluated = read_jsonl(os.path.join(finetuned, "eval", "dev", "results.jsonl"))
    return seconds, max(evaluated, key=lambda row: row["accuracy"])


def main(argv: list[str]) -> None:
    del argv
    from funnel_tfm.data import data_fetch
    work_dir = FLAGS.work_dir or os.path.join(data_fetch.default_cache_dir(), "mixers")
    os.makedirs(work_dir, exist_ok=True)
    vocab = data_fetch.bert_uncased_vocab()
    corpus = data_fetch.sotu_corpus()
    records = os.path.join(work_dir, "records")
    if not os.path.exists(os.path.join(records, "meta.train.pass-0.seq-128.uncased.json-00001-of-00002")):
        run_step([sys.executable, "-m", "funnel_tfm.create_pretrain_data",
                  f"--input_glob={os.path.dirname(corpus[0])}/*.txt", f"--save_dir={records}",
                  f"--tokenizer_path={vocab}", f"--seq_len={SEQ_LEN}", "--num_proc=2", "--parallel"])
    glue_dir = data_fetch.glue_style_movie_reviews(os.path.join(work_dir, "glue"))["SST-2"]
    rows = [pretrain_and_finetune(name, work_dir, records, vocab, glue_dir) for name in FLAGS.models]
    print(f"\n{FLAGS.train_steps} MLM steps (16 x {SEQ_LEN}), then {FLAGS.finetune_steps} SST-2 steps "
          f"(32 x {FINETUNE_LEN}), same settings for each model:")
    print("model | pretrain s | last MLM accuracy | last MLM loss | finetune s | best dev accuracy (step) | "
          "from random init (step)")
    for row in rows:
        random = (f"{row['random_dev_accuracy']:.3f} ({row['random_best_step']})" if "random_dev_accuracy" in row
                  else "-")
        print(f"{row['model']} | {row['pretrain_s']:.0f} | {row['mlm_accuracy']:.3f} | {row['mlm_loss']:.3f} | "
              f"{row['finetune_s']:.0f} | {row['dev_accuracy']:.3f} ({row['best_step']}) | {random}")
    with open(os.path.join(work_dir, "results.json"), "w", encoding="utf-8") as handle:
        json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    app.run(main)
