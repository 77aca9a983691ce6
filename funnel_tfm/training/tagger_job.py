"""The token-classification job behind `python -m funnel_tfm.tagger`: CoNLL files in, entity F1, CoNLL files out.

    run = TaggerRun(data_dir="conll2003", output_dir="proc_data/ner", model_dir="exp/ner", tokenizer_path="vocab.txt",
                    init_checkpoint="B6-6-6H768-ELEC-TF", do_train=True, do_eval=True, do_predict=True,
                    train_batch_size=32, train_steps=4000, learning_rate=5e-5, save_steps=1000)
    run_tagger(run)

Files: `{data_dir}/train.txt`, `{data_dir}/{eval_split}.txt`, `{data_dir}/{predict_split}.txt` (CoNLL format,
`data/tagging_records.py`); the tag is in `tag_column` (default: the last). The tag set is the training file's
(`conll.label_list`), written to `model_dir/labels.txt` so that evaluation and prediction runs, later or on
another machine, use the same indices; a tag in an evaluated file that training never saw is a ConllError
naming the file and line. Every file the run needs is read and checked before anything is written.

Training, resumption, evaluation of every checkpoint and the best checkpoint are the classifier's
(`training/finetune.py`). Evaluation scores at word level, the first piece's prediction standing for its word:
entity precision / recall / F1 (`tasks/tagging_metrics.py`, equal to seqeval and conlleval; `main` = F1), token
accuracy and per-type scores. Predictions (`--do_predict`, best checkpoint) go to
`model_dir/predict/<split>.conll` as `word gold pred` lines (`word pred` for an unlabelled file), conlleval's
input, written atomically.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Sequence

import keras
import numpy as np

from funnel_tfm import file_io
from funnel_tfm.data import tagging_records
from funnel_tfm.data.classifier_records import record_path
from funnel_tfm.data.conll import ConllError, Sentence, label_list, tag_scheme, word_predictions, write_conll
from funnel_tfm.data.tokenization import Tokenizer
from funnel_tfm.tasks.tagging import TaggingTask
from funnel_tfm.tasks.tagging_metrics import entity_scores
from funnel_tfm.training.run_record import write_run_record
from funnel_tfm.training import run_dir
from funnel_tfm.training.run_dir import LABELS_FILE, NET_CONFIG, best_checkpoint
from funnel_tfm.training.finetune import (FinetuneRun, cached_records, evaluate_checkpoints, model_config_and_init,
                                          predict_outputs, shuffled_for_training, train_task, with_schedule)
from funnel_tfm.training.loop import configure_devices
from funnel_tfm.training.strategy import is_chief, make_strategy

REPORTED = ("loss", "precision", "recall", "f1", "accuracy")


@dataclasses.dataclass(frozen=True, kw_only=True)
class TaggerRun(FinetuneRun):
    """Every setting of a tagging run (the flags of `funnel_tfm.tagger`)."""

    max_seq_length: int = 128
    tag_column: int = -1
    train_batch_size: int = 32
    eval_batch_size: int = 32
    predict_split: str | None = None          # None: eval_split
    predict_batch_size: int = 32


# ------------------------------------------------------------------------------------------------ tag set
def _saved_labels(model_dir: str) -> tuple[str, ...] | None:
    path = os.path.join(model_dir, LABELS_FILE)
    if not file_io.exists(path):
        return None
    with file_io.open_file(path) as handle:
        return tuple(line.rstrip("\n") for line in handle if line.strip())


def tag_set(run: TaggerRun, train: list[Sentence] | None) -> tuple[str, ...]:
    """The training file's tags; those of `model_dir/labels.txt` when the run has no training file. A resumed
    training run must see the same tags as the one that wrote the checkpoints."""
    saved = _saved_labels(run.model_dir)
    if train is None:
        if saved is None:
            raise FileNotFoundError(f"{os.path.join(run.model_dir, LABELS_FILE)}: no such file (the tag set of a "
                                    f"training run); evaluate or predict the --model_dir of a finished --do_train")
        return saved
    labels = label_list(train)
    if saved is not None and saved != labels:
        raise ConllError(f"{tagging_records.split_path(run.data_dir, 'train')}:1: tags {', '.join(labels)}; "
                         f"expected those of the checkpoints in {run.model_dir} ({', '.join(saved)})")
    return labels


# ------------------------------------------------------------------------------------------------ records
def prepare_records(run: TaggerRun, tokenizer: Tokenizer, split: str, sentences: list[Sentence],
                    labels: Sequence[str], log: Callable[[str], None],
                    for_training: bool = False) -> tuple[str, dict[str, Any], list[Sentence]]:
    """(record path, meta, sentences in record order) of `split`, written once and reused while the settings
    are the same. Training records are shuffled once (seeded); records to evaluate or predict keep the file's
    order, under another name when the split is `train`."""
    name = split if for_training or split != "train" else "train_in_file_order"
    if for_training:
        sentences = shuffled_for_training(run, sentences, split)
    path = record_path(run.output_dir, run.tokenizer_path, run.max_seq_length, f"tagger.{name}")
    settings = {"task": "tagger", "split": split, "uncased": run.uncased, "max_seq_length": run.max_seq_length,
                "tag_column": run.tag_column, "labels": list(labels),
                "tokenizer": os.path.abspath(run.tokenizer_path),
                "tokenizer_sha256": file_io.sha256_file(run.tokenizer_path),
                "file": os.path.abspath(tagging_records.split_path(run.data_dir, split)),
                "num_sentences": len(sentences), "sha256": tagging_records.fingerprint(sentences),
                "shuffled_with_seed": run.seed if (for_training and run.shuffle_examples) else None}
    meta = cached_records(path, settings, run.overwrite_data, lambda: tagging_records.write_tagging_records(
        sentences, tokenizer, labels, path, run.max_seq_length, settings, log=log), f"{split} sentences", log)
    return path, meta, sentences


# ------------------------------------------------------------------------------------------------ scoring
def word_level_predictions(outputs: dict[str, np.ndarray], sentences: Sequence[Sentence],
                           labels: Sequence[str]) -> list[list[str]]:
    """One predicted tag per word of each sentence: the argmax at the word's first piece; "O" for a word that
    has no piece in the record (cut by max_seq_length, or no piece at all)."""
    best = np.argmax(outputs["logits"], -1)
    return [word_predictions(word_index, [labels[i] for i in tags], len(sentence.words))
            for word_index, tags, sentence in zip(outputs["word_index"], best, sentences)]


def _score_fn(sentences: Sequence[Sentence], labels: Sequence[str]) -> Callable[[dict, int], dict[str, Any]]:
    gold = [sentence.tags for sentence in sentences]

    def score(outputs: dict[str, np.ndarray], step: int) -> dict[str, Any]:
        scores = entity_scores(gold, word_level_predictions(outputs, sentences, labels))
        return {"loss": TaggingTask.mean_loss_numpy(outputs["logits"], outputs["label_ids"]),
                "precision": scores["precision"], "recall": scores["recall"], "f1": scores["f1"],
                "accuracy": scores["accuracy"], "num_words": sum(len(s.words) for s in sentences),
                "per_type": scores["per_type"], "main": scores["f1"]}
    return score


def _write_predictions(run: TaggerRun, split: str, sentences: list[Sentence], predictions: list[list[str]],
                       log: Callable[[str], None]) -> str:
    out = os.path.join(run.model_dir, "predict", f"{split}.conll")
    write_conll(out, sentences, predictions)
    log(f"wrote the tags of {sum(len(s.words) for s in sentences):,} words ({len(sentences):,} sentences) to {out}")
    return out


# ------------------------------------------------------------------------------------------------ the job
def _read_inputs(run: TaggerRun) -> tuple[dict[str, list[Sentence]], tuple[str, ...]]:
    """Every split the run needs, read and checked against the tag set before anything is written."""
    splits: dict[str, list[Sentence]] = {}
    if run.do_train:
        splits["train"] = tagging_records.read_split(run.data_dir, "train", run.tag_column, need_tags=True)
    labels = tag_set(run, splits.get("train"))
    if run.do_eval:
        splits[run.eval_split] = tagging_records.read_split(run.data_dir, run.eval_split, run.tag_column, labels,
                                                            need_tags=True)
    predict_split = run.predict_split or run.eval_split
    if run.do_predict and predict_split not in splits:
        splits[predict_split] = tagging_records.read_split(run.data_dir, predict_split, run.tag_column, labels)
    return splits, labels


def run_tagger(run: TaggerRun, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Runs the phases `run` asks for; returns {"best": the best evaluation result or None, "predictions": path}."""
    if not (run.do_train or run.do_eval or run.do_predict):
        raise ValueError("nothing to do: give at least one of --do_train, --do_eval, --do_predict")
    configure_devices(run.num_cpu_devices, run.deterministic)
    strategy = make_strategy(run.strategy, run.tpu)
    chief = is_chief(strategy)
    log = log or ((lambda line: print(line, flush=True)) if chief else (lambda line: None))
    splits, labels = _read_inputs(run)
    tokenizer = Tokenizer.from_file(run.tokenizer_path, uncased=run.uncased)
    tokenizer.require_special(("cls", "sep", "pad"))
    config, init = model_config_and_init(run, tokenizer.vocab_size, use_decoder=True)
    keras.utils.set_random_seed(run.seed)
    with strategy.scope():
        task = TaggingTask.build(config, len(labels), dtype=run.precision)
    outcome: dict[str, Any] = {"best": None, "predictions": None}
    if run.do_train:
        run_dir.check_same_model(run.model_dir, config, NET_CONFIG)  # every check before the first write there
        log(f"{len(labels)} tags ({tag_scheme(splits['train'])}): {', '.join(labels)}")
        path, meta, _ = prepare_records(run, tokenizer, "train", splits["train"], labels, log, for_training=True)
        if chief:  # the lock is held to the end of this function
            lock = run_dir.lock(run.model_dir)  # noqa: F841
            config.to_json(os.path.join(run.model_dir, NET_CONFIG))
            file_io.atomic_write_text(os.path.join(run.model_dir, LABELS_FILE), "\n".join(labels) + "\n")
            write_run_record(run.model_dir, "tagging", run.tokenizer_path, run.uncased, run.max_seq_length,
                             labels=list(labels), use_decoder=True)  # what `export` needs to serve this model
        file_io.makedirs(run.model_dir)
        run = with_schedule(run, meta["num_examples"])
        per_replica = run.train_batch_size // strategy.num_replicas_in_sync
        dataset_fn_at = lambda start: tagging_records.tagging_train_input_fn(  # noqa: E731
            path, run.max_seq_length, per_replica, seed=run.seed, shuffle_buffer=run.shuffle_buffer, start_step=start)
        train_task(run, strategy, task, init, dataset_fn_at, meta["num_examples"], log)
    if run.do_eval:
        path, meta, sentences = prepare_records(run, tokenizer, run.eval_split, splits[run.eval_split], labels, log)
        dataset = tagging_records.tagging_eval_dataset(path, run.max_seq_length, run.eval_batch_size,
                                                       meta["num_examples"])
        log(f"evaluating {run.eval_split}: {len(sentences):,} sentences ({meta['num_words']:,} words) in batches of "
            f"{run.eval_batch_size} on {strategy.num_replicas_in_sync} replica(s)")
        outcome["best"] = evaluate_checkpoints(run, strategy, task, dataset, _score_fn(sentences, labels), REPORTED,
                                               log, keep=("label_ids", "word_index"), main_name="f1")
    if run.do_predict:
        split = run.predict_split or run.eval_split
        path, meta, sentences = prepare_records(run, tokenizer, split, splits[split], labels, log)
        _, prefix = best_checkpoint(run.model_dir)
        dataset = tagging_records.tagging_eval_dataset(path, run.max_seq_length, run.predict_batch_size,
                                                       meta["num_examples"])
        outputs = predict_outputs(strategy, task, prefix, dataset, keep=("word_index",))
        log(f"predicted {len(sentences):,} {split} sentences with {prefix}")
        outcome["predictions"] = _write_predictions(run, split, sentences,
                                                    word_level_predictions(outputs, sentences, labels), log)
    return outcome
