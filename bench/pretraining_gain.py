r"""Dev accuracy against pretraining compute: random init, MLM and ELECTRA on the Funnel, MLM on FNet and the hybrid.

    python bench/pretraining_gain.py                                  # both data sets, steps 0 / 300 / 600, 2 seeds
    python bench/pretraining_gain.py --datasets=sst2 --starts=funnel-mlm,funnel-electra --checkpoints=200,400,600
    python bench/pretraining_gain.py --work_dir=/tmp/gain --plot=/tmp/gain.png

For each labelled set (the main job's movie-review sentences, SST-2-style; the SpamAssassin e-mails, ham / spam),
the main job's path on that set's own text: the train split's texts without labels are the pretraining corpus
(e-mails cut to their first 2,000 characters, one line per non-empty line), `build_vocab --vocab_size=8000` learns a
vocabulary on it, `create_pretrain_data --seq_len=64` writes the records. Then one pretraining run per start
(`--starts`), saving a checkpoint at each of `--checkpoints`:

* funnel-mlm, funnel-electra: the main job's Funnel (B2-2, decoder 1, d_model 128), MLM or ELECTRA
  (`--sample_strategy=single_token`, the generator a quarter of the width);
* hybrid-mlm: the same Funnel with Fourier mixing in the full-length first block (`block_mixers=fourier_attention`);
* fnet-mlm: FNet of the same width, 4 Fourier layers.

Every checkpoint, and each model from random initialisation (compute 0), is finetuned with the main job's recipe
(`funnel_tfm/demo.py`: batch 32 x 64, lr 5e-4, warmup 10 %) once per seed;
the row is the best dev accuracy over the run's evaluated checkpoints. Compute is given three ways: pretraining
steps, tokens (steps x batch x 64) and seconds of training (from the run's metrics.jsonl, compilation included).
Prints one table per data set, writes `results.json` and a PNG plot (matplotlib: the `bench` extra). Every run is a
real `pretrain` / `classifier` process; a rerun with the same --work_dir reuses what is done.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import statistics
import sys
from typing import Callable

from absl import app, flags

from funnel_tfm import file_io
from funnel_tfm.training import run_dir
from funnel_tfm.demo import (FINETUNE_LEARNING_RATE, FINETUNE_LEN, MODEL, SEQ_LEN, VOCAB_SIZE, read_jsonl, run_step,
                             write_corpus)

FLAGS = flags.FLAGS
# --work_dir (default here: <data cache>/pretraining_gain), --seeds and --finetune_steps are the main job's flags
# (funnel_tfm/demo.py defines them) with the same meaning; this bench finetunes 400 steps by default (the main job
# 800), so that its 44 finetuning runs take about an hour on 2 cores.
FLAGS.set_default("finetune_steps", 400)
flags.DEFINE_list("datasets", ["sst2", "spam"], "Labelled sets: sst2 (movie-review sentences), spam (e-mails).")
flags.DEFINE_list("starts", ["funnel-mlm", "funnel-electra", "hybrid-mlm", "fnet-mlm"], "Pretrained starts.")
flags.DEFINE_list("checkpoints", ["300", "600"], "Pretraining steps at which a checkpoint is finetuned.")
flags.DEFINE_integer("pretrain_batch_size", 32, "Pretraining batch size.")
flags.DEFINE_string("plot", None, "PNG path (default: <work_dir>/pretraining_gain.png; '' for none).")

EMAIL_CHARS = 2000  # of each e-mail in the pretraining corpus; finetuning reads the first 64 tokens (~250 chars)
STARTS = {"funnel-mlm": ("funnel", "mlm"), "funnel-electra": ("funnel", "electra"), "hybrid-mlm": ("hybrid", "mlm"),
          "fnet-mlm": ("fnet", "mlm")}
FNET = {"d_embed": 128, "d_model": 128, "d_inner": 512, "n_layer": 4, "max_seq_length": SEQ_LEN}


@dataclasses.dataclass(frozen=True)
class LabelledSet:
    """A classification data set as the classifier reads it, and its train split's texts."""
    name: str
    task_flags: tuple[str, ...]
    train_texts: tuple[str, ...]


def movie_reviews(work_dir: str) -> LabelledSet:
    from funnel_tfm.data import data_fetch
    glue_dir = data_fetch.glue_style_movie_reviews(os.path.join(work_dir, "glue"))["SST-2"]
    with open(os.path.join(glue_dir, "train.tsv"), encoding="utf-8") as handle:
        texts = [line.rstrip("\n").rsplit("\t", 1)[0] for line in handle][1:]
    return LabelledSet("sst2", ("--task_name=sst-2", f"--data_dir={glue_dir}"), tuple(texts))


def spam_emails(work_dir: str) -> LabelledSet:
    import csv
    from funnel_tfm.data import data_fetch
    data_dir = data_fetch.spam_csv(os.path.join(work_dir, "spam"))
    csv.field_size_limit(2 ** 31 - 1)
    with open(os.path.join(data_dir, "train.csv"), encoding="utf-8", newline="") as handle:
        texts = [row["text"][:EMAIL_CHARS] for row in csv.DictReader(handle)]
    return LabelledSet("spam", ("--task_name=custom", f"--data_dir={data_dir}"), tuple(texts))


DATASETS: dict[str, Callable[[str], LabelledSet]] = {"sst2": movie_reviews, "spam": spam_emails}


def prepare(data: LabelledSet, work_dir: str) -> tuple[str, str, int]:
    """(vocabulary, record dir, vocabulary size) learned from and written from the train texts."""
    corpus = os.path.join(work_dir, "corpus.txt")
    write_corpus(data.train_texts, corpus)
    vocab, records = os.path.join(work_dir, "vocab.txt"), os.path.join(work_dir, "records")
    if not os.path.exists(vocab):
        run_step([sys.executable, "-m", "funnel_tfm.build_vocab", f"--input_glob={corpus}", f"--output={vocab}",
                  f"--vocab_size={VOCAB_SIZE}"])
    if not os.path.exists(os.path.join(records, f"meta.train.pass-0.seq-{SEQ_LEN}.uncased.json-00000-of-00001")):
        run_step([sys.executable, "-m", "funnel_tfm.create_pretrain_data", f"--input_glob={corpus}",
                  f"--save_dir={records}", f"--tokenizer_path={vocab}", f"--seq_len={SEQ_LEN}"])
    with open(vocab, encoding="utf-8") as handle:
        return vocab, records, sum(1 for _ in handle)


def write_config(model: str, vocab_size: int, path: str) -> str:
    from funnel_tfm.config import ModelConfig
    from funnel_tfm.config_fnet import FNetConfig
    if model == "fnet":
        FNetConfig(**FNET, vocab_size=vocab_size).to_json(path)
    else:
        mixers = {"block_mixers": "fourier_attention"} if model == "hybrid" else {}
        ModelConfig(**MODEL, **mixers, vocab_size=vocab_size).to_json(path)
    return path


def pretrain(start: str, work_dir: str, vocab: str, records: str, config: str) -> dict[int, tuple[str, float]]:
    """One pretraining run of `start`: {step: (checkpoint prefix, training seconds up to it)}."""
    steps = sorted(int(step) for step in FLAGS.checkpoints)
    model_dir = os.path.join(work_dir, f"{start}-{steps[-1]}")
    objective = STARTS[start][1]
    command = ([sys.executable, "-m", "funnel_tfm.pretrain", f"--record_dir={records}", f"--tokenizer_path={vocab}",
                f"--model_dir={model_dir}", f"--model_config={config}", f"--loss_type={objective}",
                f"--seq_len={SEQ_LEN}", "--num_predict=10", f"--train_batch_size={FLAGS.pretrain_batch_size}",
                f"--train_steps={steps[-1]}", "--iterations=50", f"--save_steps={math.gcd(*steps)}", "--max_save=0",
                "--learning_rate=1e-3", f"--warmup_steps={max(1, steps[-1] // 10)}"]
               + (["--sample_strategy=single_token"] if objective == "electra" else []))
    if not os.path.exists(os.path.join(model_dir, "export")):  # a rerun reuses a finished run
        run_step(command)
    seconds, elapsed, previous = {}, 0.0, 0
    for row in read_jsonl(os.path.join(model_dir, run_dir.METRICS)):
        elapsed += (row["step"] - previous) / row["steps_per_second"]
        previous = row["step"]
        seconds[row["step"]] = elapsed
    return {step: (os.path.join(model_dir, f"ckpt-{step}"), seconds[step]) for step in steps}


def finetune(data: LabelledSet, work_dir: str, vocab: str, name: str, seed: str, init: list[str]) -> float:
    """One finetuning run with the main job's recipe: its best dev accuracy."""
    steps = FLAGS.finetune_steps
    model_dir = os.path.join(work_dir, "finetuned", f"{name}-seed{seed}")
    command = ([sys.executable, "-m", "funnel_tfm.classifier", *data.task_flags,
                f"--output_dir={os.path.join(work_dir, f'finetuning-records-seed{seed}')}", f"--model_dir={model_dir}",
                f"--tokenizer_path={vocab}", f"--max_seq_length={FINETUNE_LEN}", "--do_train=True", "--do_eval=True",
                "--train_batch_size=32", f"--train_steps={steps}", f"--save_steps={max(1, steps // 4)}",
                f"--warmup_steps={steps // 10}", f"--learning_rate={FINETUNE_LEARNING_RATE}",
                "--eval_batch_size=64",
                f"--iterations={max(1, steps // 8)}", "--retain_best=True", "--jit_compile=False", f"--seed={seed}"]
               + init)
    if not os.path.exists(os.path.join(model_dir, "export")):  # a rerun reuses a finished (evaluated) run
        run_step(command)
    return max(row["accuracy"] for row in read_jsonl(run_dir.results_path(model_dir, "dev")))


def measure(data: LabelledSet, work_dir: str) -> list[dict]:
    """Rows {dataset, start, step, tokens, seconds, accuracies (one per seed)} for the random starts and each
    pretraining checkpoint."""
    vocab, records, vocab_size = prepare(data, work_dir)
    rows, models = [], sorted({STARTS[start][0] for start in FLAGS.starts})
    configs = {model: write_config(model, vocab_size, os.path.join(work_dir, f"{model}.json")) for model in models}
    for model in models:
        accuracies = [finetune(data, work_dir, vocab, f"{model}-random", seed, [f"--model_config={configs[model]}"])
                      for seed in FLAGS.seeds]
        rows.append({"dataset": data.name, "start": f"{model}-random", "step": 0, "tokens": 0, "seconds": 0.0,
                     "accuracies": accuracies})
    for start in FLAGS.starts:
        for step, (prefix, seconds) in pretrain(start, work_dir, vocab, records, configs[STARTS[start][0]]).items():
            accuracies = [finetune(data, work_dir, vocab, f"{start}-{step}", seed, [f"--init_checkpoint={prefix}"])
                          for seed in FLAGS.seeds]
            rows.append({"dataset": data.name, "start": start, "step": step, "seconds": seconds,
                         "tokens": step * FLAGS.pretrain_batch_size * SEQ_LEN, "accuracies": accuracies})
    return rows


def table(rows: list[dict]) -> list[str]:
    """A markdown table: one row per start and compute point; mean, lowest and highest over the seeds."""
    lines = ["| start | pretraining steps | tokens | seconds | dev accuracy, mean [lowest .. highest] | per seed |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        accuracies = row["accuracies"]
        lines.append(f"| {row['start']} | {row['step']} | {row['tokens']:,} | {row['seconds']:.0f} | "
                     f"{statistics.mean(accuracies):.3f} [{min(accuracies):.3f} .. {max(accuracies):.3f}] | "
                     f"{', '.join(f'{value:.3f}' for value in accuracies)} |")
    return lines


def plot(rows: list[dict], path: str) -> None:
    """Mean dev accuracy against pretraining seconds, one panel per data set, one line per start (its random
    initialisation at 0), bars from the lowest to the highest seed."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot
    datasets = sorted({row["dataset"] for row in rows})
    figure, axes = pyplot.subplots(1, len(datasets), figsize=(6 * len(datasets), 4.5), squeeze=False)
    for axis, dataset in zip(axes[0], datasets):
        for start in [start for start in STARTS if start in FLAGS.starts]:
            model = STARTS[start][0]
            points = [row for row in rows if row["dataset"] == dataset and row["start"] in (start, f"{model}-random")]
            means = [statistics.mean(row["accuracies"]) for row in points]
            errors = [[m - min(row["accuracies"]) for m, row in zip(means, points)],
                      [max(row["accuracies"]) - m for m, row in zip(means, points)]]
            axis.errorbar([row["seconds"] for row in points], means, yerr=errors, marker="o", capsize=3, label=start)
        axis.set(title=f"{dataset}: best dev accuracy after {FLAGS.finetune_steps} finetuning steps",
                 xlabel="pretraining seconds (2 CPU cores; 0 = random init)", ylabel="dev accuracy")
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    temporary = path + ".tmp.png"
    figure.savefig(temporary, dpi=100)
    os.replace(temporary, path)


def main(argv: list[str]) -> None:
    del argv
    from funnel_tfm.data import data_fetch
    unknown = sorted(set(FLAGS.starts) - set(STARTS)) + sorted(set(FLAGS.datasets) - set(DATASETS))
    if unknown:
        sys.exit(f"pretraining_gain: unknown --starts / --datasets: {', '.join(unknown)}")
    work_dir = FLAGS.work_dir or os.path.join(data_fetch.default_cache_dir(), "pretraining_gain")
    rows = []
    for name in FLAGS.datasets:
        data_dir = os.path.join(work_dir, name)
        rows += measure(DATASETS[name](data_dir), data_dir)
    file_io.atomic_write_text(os.path.join(work_dir, "results.json"), json.dumps(rows, indent=1))
    for name in FLAGS.datasets:
        print(f"\n{name}: {FLAGS.finetune_steps} finetuning steps (32 x {FINETUNE_LEN}), seeds "
              f"{', '.join(FLAGS.seeds)}; pretraining batch {FLAGS.pretrain_batch_size} x {SEQ_LEN}")
        print("\n".join(table([row for row in rows if row["dataset"] == name])))
    path = os.path.join(work_dir, "pretraining_gain.png") if FLAGS.plot is None else FLAGS.plot
    if path:
        plot(rows, path)
        print(f"\nplot: {path}")


if __name__ == "__main__":
    app.run(main)
