"""The SQuAD job behind `python -m funnel_tfm.squad`: v1.1 / v2.0 question answering, official scoring.

    run = SquadRun(train_file="train-v2.0.json", predict_file="dev-v2.0.json", output_dir="proc_data/squad",
                   model_dir="exp/squad", tokenizer_path="vocab.uncased.txt",
                   init_checkpoint="B10-10-10H1024-ELEC-FULL-TF",
                   do_train=True, do_predict=True, train_batch_size=48, train_steps=8000, warmup_steps=1000,
                   learning_rate=3e-5, lr_layer_decay_rate=0.75, save_steps=1000)
    run_squad(run)

Preprocessing (`data/squad_data.py`, `data/squad_records.py`) is done once and reused; `prepro_split` does only
that (the original's parallel preprocessing: `num_proc` processes each write the training records of every
`num_proc`-th question, `proc_id` being this one). Training and resumption are the classifier's. Evaluation runs
every saved checkpoint on `predict_file`, writes `{step}.predictions.json`, `{step}.nbest_predictions.json` and
`{step}.null_odds.json` to `predict_dir`, scores them with the official script's numbers (`tasks/squad_metrics.py`)
and keeps the best by `target_eval_key` (`best_f1`; `f1` for v1.1).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable

import keras
import numpy as np

from funnel_tfm import file_io
from funnel_tfm.data import squad_data, squad_records
from funnel_tfm.data.classifier_records import read_meta
from funnel_tfm.data.tokenization import Tokenizer
from funnel_tfm.tasks import squad_metrics
from funnel_tfm.tasks.squad import SquadTask
from funnel_tfm.tasks.squad_postprocess import make_predictions, write_answers
from funnel_tfm.training.run_dir import NET_CONFIG
from funnel_tfm.training.run_record import write_run_record
from funnel_tfm.training import run_dir
from funnel_tfm.training.finetune import (FinetuneRun, cached_records, evaluate_checkpoints, model_config_and_init,
                                          shuffled_for_training, train_task, with_schedule)
from funnel_tfm.training.loop import configure_devices
from funnel_tfm.training.strategy import is_chief, make_strategy

VERSIONS = ("v1", "v2")
DEBUG_QUESTIONS = 100  # --debug_mode keeps this many, as the original
_SHARD_KEYS = ("num_proc", "proc_id")  # how preprocessing was split, not what it wrote


@dataclasses.dataclass(frozen=True, kw_only=True)
class SquadRun(FinetuneRun):
    """Every setting of a SQuAD run (the flags of `funnel_tfm.squad`, the original's names and defaults)."""

    data_dir: str = ""
    train_file: str = ""
    predict_file: str = ""
    predict_dir: str = ""                    # "": model_dir/predict
    prepro_split: str | None = None          # "train" / "eval": only preprocess
    num_proc: int = 1
    proc_id: int = 0
    max_seq_length: int = 512
    max_query_length: int = 64
    doc_stride: int = 128
    max_answer_length: int = 64
    train_version: str = "v2"
    eval_version: str = "v2"
    n_best_size: int = 5
    start_n_top: int = 5
    end_n_top: int = 5
    use_answer_class: bool = True
    use_masked_loss: bool = True
    conditional_end: bool = True
    cls_loss_weight: float = 0.5
    ans_loss_weight: float = 0.5
    target_eval_key: str = "best_f1"
    predict_batch_size: int = 128
    train_batch_size: int = 128
    train_steps: int = 5500
    debug_mode: bool = False

    def __post_init__(self) -> None:
        for name in ("train_version", "eval_version"):
            if getattr(self, name) not in VERSIONS:
                raise ValueError(f"--{name}={getattr(self, name)!r}; expected v1 or v2")
        if not 0 <= self.proc_id < self.num_proc:
            raise ValueError(f"--proc_id={self.proc_id} must be in [0, --num_proc={self.num_proc})")
        if self.prepro_split not in (None, "", "train", "eval"):
            raise ValueError(f"--prepro_split={self.prepro_split!r}; expected train or eval")

    @property
    def eval_key(self) -> str:
        return "f1" if self.eval_version == "v1" else self.target_eval_key  # the original forced f1 for v1.1


def _settings(run: SquadRun, split: str, path: str) -> dict[str, Any]:
    version = run.train_version if split == "train" else run.eval_version
    return {"task": "squad", "split": split, "file": os.path.abspath(path), "version": version,
            "uncased": run.uncased, "tokenizer": os.path.abspath(run.tokenizer_path),
            "tokenizer_sha256": file_io.sha256_file(run.tokenizer_path),
            "max_seq_length": run.max_seq_length, "max_query_length": run.max_query_length,
            "doc_stride": run.doc_stride, "debug_mode": run.debug_mode,
            **({"num_proc": run.num_proc, "proc_id": run.proc_id,
                "shuffled_with_seed": run.seed if run.shuffle_examples else None} if split == "train" else {})}


def _features(run: SquadRun, tokenizer: Tokenizer, split: str, log: Callable[[str], None]):
    is_training = split == "train"
    path = run.train_file if is_training else run.predict_file
    squad = squad_data.read_squad(path, is_training, run.train_version if is_training else run.eval_version,
                                  limit=DEBUG_QUESTIONS if run.debug_mode else None)
    if is_training:
        shard = squad.examples[run.proc_id::run.num_proc]
        squad = dataclasses.replace(squad, examples=shuffled_for_training(run, shard, "train"))
    log(f"{path}: {squad_data.describe_counts(squad.counts)}")
    if squad.duplicate_ids and not is_training:
        log(f"warning: {path}: {len(squad.duplicate_ids):,} question(s) share an id with an earlier one (the first: "
            f"{squad.duplicate_ids[0]}); predictions.json keeps one answer per id, as the official scoring counts one")
    contexts = squad_data.tokenize_contexts(squad.contexts, tokenizer,
                                            needed={e.context_index for e in squad.examples})
    features, counts = squad_data.build_features(squad, contexts, tokenizer, run.max_seq_length,
                                                 run.max_query_length, run.doc_stride, is_training)
    log(f"{split}: {len(squad.examples):,} questions -> {squad_data.describe_counts(counts)}")
    return squad, contexts, features, counts


def prepare_train_records(run: SquadRun, tokenizer: Tokenizer, log: Callable[[str], None]) -> dict[str, Any]:
    """This process's training records (`proc_id`), written once; returns their meta."""
    path = squad_records.train_record_path(run.output_dir, run.tokenizer_path, run.max_seq_length,
                                           run.max_query_length, run.train_version, run.proc_id)
    settings = _settings(run, "train", run.train_file)

    def write() -> dict[str, Any]:
        squad, _, features, counts = _features(run, tokenizer, "train", log)
        meta = {"num_examples": len(features), "num_questions": len(squad.examples),
                "counts": {**squad.counts, **counts}, "settings": settings}
        squad_records.write_squad_records(features, path, True, meta)
        log(f"wrote {len(features):,} training features to {path}")
        return meta
    return cached_records(path, settings, run.overwrite_data, write, "training features", log)


def parallel_train_records(run: SquadRun, log: Callable[[str], None]) -> list[str] | None:
    """The record files of an earlier `--prepro_split=train --num_proc=N` (one per `--proc_id`), when they were
    written from this run's file and settings: training reads them whatever its own `--num_proc` (the seed README
    preprocesses with `--num_proc` and trains without it). None when there are none, or with `--overwrite_data`.

        parallel_train_records(run, print)          # ["proc/vocab.0.slen-512...", "proc/vocab.1.slen-512..."]
    """
    if run.overwrite_data:
        return None
    paths = squad_records.train_record_glob(run.output_dir, run.tokenizer_path, run.max_seq_length,
                                            run.max_query_length, run.train_version)
    metas = [read_meta(path) for path in paths]
    shards = [(path, meta["settings"]) for path, meta in zip(paths, metas) if meta and meta.get("settings")]
    ours = {key: value for key, value in _settings(run, "train", run.train_file).items() if key not in _SHARD_KEYS}
    written = [(path, settings) for path, settings in shards
               if {key: value for key, value in settings.items() if key not in _SHARD_KEYS} == ours]
    if not written:
        return None
    num_proc = written[0][1]["num_proc"]
    found = {settings["proc_id"] for _, settings in written if settings["num_proc"] == num_proc}
    missing = sorted(set(range(num_proc)) - found)
    if missing or len(written) != num_proc:
        raise ValueError(f"{run.output_dir}: the training records of a --num_proc={num_proc} preprocessing are "
                         f"incomplete (no --proc_id {', '.join(map(str, missing)) or '?'}; or files of another "
                         f"--num_proc); finish it, or pass --overwrite_data")
    log(f"reusing the training records of {num_proc} preprocessing process(es) in {run.output_dir}")
    return [path for path, _ in written]


def prepare_eval_records(run: SquadRun, tokenizer: Tokenizer, log: Callable[[str], None]) -> tuple[str, dict]:
    """(path, meta) of the evaluation records and their feature index, written once."""
    path = squad_records.eval_record_path(run.output_dir, run.tokenizer_path, run.max_seq_length,
                                          run.max_query_length, run.eval_version)
    settings = _settings(run, "eval", run.predict_file)

    def write() -> dict[str, Any]:
        squad, contexts, features, counts = _features(run, tokenizer, "eval", log)
        meta = {"num_examples": len(features), "num_questions": len(squad.examples),
                "counts": {**squad.counts, **counts}, "settings": settings}
        index = squad_data.feature_index(features, contexts, squad.examples)
        squad_records.write_squad_records(features, path, False, meta, index=index)
        log(f"wrote {len(features):,} evaluation features to {path}")
        return meta
    return path, cached_records(path, settings, run.overwrite_data, write, "evaluation features", log)


def _score_fn(run: SquadRun, index: dict[str, Any], dataset: list, log: Callable[[str], None]) -> Callable:
    contexts = [p["context"] for article in dataset for p in article["paragraphs"]]
    predict_dir = run.predict_dir or os.path.join(run.model_dir, "predict")

    def score(outputs: dict[str, np.ndarray], step: int) -> dict[str, Any]:
        answers = make_predictions(outputs, index, contexts, run.n_best_size, run.max_answer_length,
                                   run.conditional_end, run.use_answer_class)
        write_answers(answers, predict_dir, str(step))
        if run.eval_version == "v1":
            result = squad_metrics.evaluate_v1_1(dataset, answers.predictions)
        else:
            result = squad_metrics.evaluate(dataset, answers.predictions, answers.null_odds)
        if run.eval_key not in result:
            raise ValueError(f"--target_eval_key={run.eval_key!r} is not among the results: {', '.join(result)}")
        return {**result, "main": result[run.eval_key]}
    return score


def run_squad(run: SquadRun, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Runs the phases `run` asks for; returns {"best": the best evaluation result or None, ...}."""
    configure_devices(run.num_cpu_devices, run.deterministic)
    log = log or (lambda line: print(line, flush=True))
    tokenizer = Tokenizer.from_file(run.tokenizer_path, uncased=run.uncased)
    tokenizer.require_special(("cls", "sep", "pad"))
    outcome: dict[str, Any] = {"best": None}
    if run.prepro_split:
        if run.prepro_split == "train":
            outcome["meta"] = prepare_train_records(run, tokenizer, log)
        else:
            outcome["meta"] = prepare_eval_records(run, tokenizer, log)[1]
        return outcome
    if not (run.do_train or run.do_eval or run.do_predict):
        raise ValueError("nothing to do: give at least one of --do_train, --do_predict (--do_eval), --prepro_split")
    if run.do_train and not run.train_file:
        raise ValueError("--do_train needs --train_file")
    gold = None
    if run.do_eval or run.do_predict:  # checked before training: scoring reads the gold answers
        if not run.predict_file:
            raise ValueError("--do_predict needs --predict_file")
        gold = squad_metrics.load_dataset(run.predict_file)
        if run.eval_version == "v1":
            unanswerable = next((qa["id"] for article in gold for paragraph in article["paragraphs"]
                                 for qa in paragraph["qas"] if not qa["answers"]), None)
            if unanswerable is not None:
                raise squad_metrics.SquadFormatError(
                    f"{run.predict_file}: question {unanswerable!r} has no answer: SQuAD v1.1 scoring needs one "
                    f"(a v2.0 file? pass --eval_version=v2)")
    strategy = make_strategy(run.strategy, run.tpu)
    chief = is_chief(strategy)
    if not chief:
        log = lambda line: None  # noqa: E731
    config, init = model_config_and_init(run, tokenizer.vocab_size, use_decoder=True)
    keras.utils.set_random_seed(run.seed)
    with strategy.scope():
        task = SquadTask.build(config, run.conditional_end, run.use_answer_class, run.use_masked_loss,
                               run.start_n_top, run.end_n_top, run.ans_loss_weight, run.cls_loss_weight,
                               dtype=run.precision)
    if run.do_train:
        run_dir.check_same_model(run.model_dir, config, NET_CONFIG)  # every check before the first write there
        paths = parallel_train_records(run, log)
        if paths is None:
            prepare_train_records(run, tokenizer, log)
            paths = squad_records.train_record_glob(run.output_dir, run.tokenizer_path, run.max_seq_length,
                                                    run.max_query_length, run.train_version)
        if chief:  # the lock is held to the end of this function
            lock = run_dir.lock(run.model_dir)  # noqa: F841
            config.to_json(os.path.join(run.model_dir, NET_CONFIG))
            write_run_record(run.model_dir, "squad", run.tokenizer_path, run.uncased, run.max_seq_length,
                             max_query_length=run.max_query_length, doc_stride=run.doc_stride, use_decoder=True,
                             conditional_end=run.conditional_end, use_answer_class=run.use_answer_class,
                             max_answer_length=run.max_answer_length)
    file_io.makedirs(run.model_dir)
    if run.do_train:
        num_features = sum(read_meta(path)["num_examples"] for path in paths)
        run = with_schedule(run, num_features)
        per_replica = run.train_batch_size // strategy.num_replicas_in_sync
        dataset_fn_at = lambda start: squad_records.squad_train_input_fn(  # noqa: E731
            paths, run.max_seq_length, per_replica, seed=run.seed, shuffle_buffer=run.shuffle_buffer, start_step=start)
        log(f"training on {len(paths)} record file(s), {num_features:,} features")
        train_task(run, strategy, task, init, dataset_fn_at, num_features, log)
    if run.do_eval or run.do_predict:
        path, meta = prepare_eval_records(run, tokenizer, log)
        index = squad_records.read_feature_index(path)
        dataset = squad_records.squad_eval_dataset(path, run.max_seq_length, run.predict_batch_size,
                                                   meta["num_examples"])
        reported = ("exact_match", "f1") if run.eval_version == "v1" else ("exact", "f1", "best_exact", "best_f1")
        outcome["best"] = evaluate_checkpoints(run, strategy, task, dataset, _score_fn(run, index, gold, log),
                                               reported, log, keep=(), main_name=run.eval_key)
    return outcome
