"""RACE: the official files, the original's input building, and its records (docs/original_semantics.md F4).

    examples = read_race("RACE", "dev")                   # RACE/dev/{middle,high}/*.txt, one example per question
    features = pack_race(tokenizer, examples[0], max_seq_length=512, max_qa_length=128)   # int arrays [4, 512]
    write_race_records(examples, tokenizer, path, 512, 128, settings={...})
    dataset = race_eval_dataset(path, 512, num_choices=4, global_batch=16, num_examples=len(examples))

Each option becomes `[CLS] qa [SEP] article [SEP]`: `qa` is the question with every `_` replaced by the
option (else question, space, option), cut to its **last** `max_qa_length` tokens; the article keeps its first
`max_seq_length - 3 - len(qa)` tokens; segments 2, 0 (qa), 1 (article); padding with id 0 (the original's,
Q25). The four sequences of a question are written side by side (`input_ids` of length 4 x M), with
`label_ids`, `is_real_example` and `is_high_example` (middle or high school).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable, Sequence

import numpy as np
import tensorflow as tf

from funnel_tfm import file_io
from funnel_tfm.data import data_utils
from funnel_tfm.data.classifier_records import numbered_eval_dataset, shuffled_input_fn
from funnel_tfm.data.example_proto import write_records
from funnel_tfm.data.tokenization import Tokenizer

LEVELS = ("middle", "high")
ANSWERS = "ABCD"
WRITE_BATCH = 256


class RaceDataError(ValueError):
    """A RACE file that is not what the official release holds: names the file, question and what was expected."""


@dataclasses.dataclass(frozen=True)
class RaceExample:
    guid: str                     # "<level>/<file name>/<question index>"
    article: str
    question: str
    options: tuple[str, ...]
    label: int | None             # index of the answer (A = 0), None when the file has no answers
    level: str                    # "middle" or "high"


def _examples_of_file(path: str, level: str) -> list[RaceExample]:
    name = os.path.basename(path)
    try:
        with file_io.open_file(path, "rb") as handle:
            record = json.loads(handle.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RaceDataError(f"{path}: not a RACE json file ({error})") from None
    missing = [key for key in ("article", "questions", "options") if key not in record]
    if missing:
        raise RaceDataError(f"{path}: missing key(s) {', '.join(missing)} (expected article, questions, options, "
                            f"answers)")
    answers = record.get("answers")
    if answers is not None and len(answers) != len(record["questions"]):
        raise RaceDataError(f"{path}: {len(record['questions'])} questions but {len(answers)} answers")
    if len(record["options"]) != len(record["questions"]):
        raise RaceDataError(f"{path}: {len(record['questions'])} questions but {len(record['options'])} option lists")
    examples = []
    for index, (question, options) in enumerate(zip(record["questions"], record["options"])):
        if len(options) != len(ANSWERS):
            raise RaceDataError(f"{path}: question {index}: {len(options)} options, expected {len(ANSWERS)}")
        label = None
        if answers is not None:
            if answers[index] not in ANSWERS:
                raise RaceDataError(f"{path}: question {index}: answer {answers[index]!r}, expected one of "
                                    f"{', '.join(ANSWERS)}")
            label = ANSWERS.index(answers[index])
        examples.append(RaceExample(f"{level}/{name}/{index}", record["article"], question, tuple(options), label,
                                    level))
    return examples


def read_race(data_dir: str, split: str) -> list[RaceExample]:
    """Every question of `data_dir/<split>/{middle,high}/*` (files in sorted order; the original used listdir's)."""
    examples = []
    for level in LEVELS:
        directory = os.path.join(data_dir, split, level)
        if not tf.io.gfile.isdir(directory):
            raise RaceDataError(f"{directory}: no such directory (the RACE layout is <data_dir>/{split}/"
                                f"{{middle,high}}/*.txt)")
        for name in sorted(tf.io.gfile.listdir(directory)):
            examples += _examples_of_file(os.path.join(directory, name), level)
    if not examples:
        raise RaceDataError(f"{os.path.join(data_dir, split)}: no questions found")
    return examples


def qa_texts(example: RaceExample) -> list[str]:
    """The question joined with each option: `_` replaced by the option, else question + " " + option."""
    if "_" in example.question:
        return [example.question.replace("_", option) for option in example.options]
    return [f"{example.question} {option}" for option in example.options]


def pack_race(article_ids: Sequence[int], qa_ids: Sequence[Sequence[int]], tokenizer: Tokenizer,
              max_seq_length: int, max_qa_length: int) -> dict[str, np.ndarray]:
    """`token_ids`, `segment_ids`, `padding_mask` int32 [num_choices, max_seq_length] of one question.

    A question + option still longer than `max_seq_length - 3` tokens after the cut to `max_qa_length` leaves
    no room for [CLS], two [SEP] and the article: a ValueError (the original wrote a longer sequence).
    """
    rows = {"token_ids": [], "segment_ids": [], "padding_mask": []}
    for qa in qa_ids:
        qa = list(qa)[-max_qa_length:]  # the original keeps the end of the question + option
        if len(qa) > max_seq_length - 3:
            raise ValueError(f"a question + option of {len(qa)} tokens (after the cut to max_qa_length="
                             f"{max_qa_length}) does not fit max_seq_length={max_seq_length} with [CLS] and two "
                             f"[SEP]; expected max_qa_length <= max_seq_length - 3 = {max_seq_length - 3}")
        context = list(article_ids)[:max(0, max_seq_length - 3 - len(qa))]
        ids = [tokenizer.cls_id] + qa + [tokenizer.sep_id] + context + [tokenizer.sep_id]
        segments = ([data_utils.CLS_SEGMENT_ID] + [data_utils.SEGMENT_A_ID] * (len(qa) + 1)
                    + [data_utils.SEGMENT_B_ID] * (len(context) + 1))
        padding = max_seq_length - len(ids)
        rows["token_ids"].append(ids + [0] * padding)  # id 0, not pad_id (the original's, Q25)
        rows["segment_ids"].append(segments + [data_utils.SEGMENT_A_ID] * padding)
        rows["padding_mask"].append([1] * len(ids) + [0] * padding)
    return {name: np.asarray(values, np.int32) for name, values in rows.items()}


def _packed_batches(examples: Sequence[RaceExample], tokenizer: Tokenizer, max_seq_length: int,
                    max_qa_length: int) -> Any:
    for start in range(0, len(examples), WRITE_BATCH):
        chunk = examples[start:start + WRITE_BATCH]
        articles = tokenizer.encode_batch([e.article for e in chunk])
        qas = tokenizer.encode_batch([text for e in chunk for text in qa_texts(e)])
        choices = len(ANSWERS)
        packed = []
        for i, article in enumerate(articles):
            try:
                packed.append(pack_race(article, qas[i * choices:(i + 1) * choices], tokenizer, max_seq_length,
                                        max_qa_length))
            except ValueError as error:
                raise RaceDataError(f"question {chunk[i].guid}: {error}") from None
        yield chunk, {name: np.stack([p[name] for p in packed]) for name in packed[0]}


def write_race_records(examples: Sequence[RaceExample], tokenizer: Tokenizer, path: str, max_seq_length: int,
                       max_qa_length: int, settings: dict[str, Any],
                       log: Callable[[str], None] = print) -> dict[str, Any]:
    """Writes the records of `examples` to `path` and the meta json beside it, atomically; returns the meta."""
    def batches():
        for chunk, packed in _packed_batches(examples, tokenizer, max_seq_length, max_qa_length):
            count = len(chunk)
            yield {"input_ids": packed["token_ids"].reshape(count, -1),
                   "input_mask": 1.0 - packed["padding_mask"].reshape(count, -1).astype(np.float32),
                   "segment_ids": packed["segment_ids"].reshape(count, -1),
                   "label_ids": np.array([[e.label or 0] for e in chunk], np.int64),
                   "is_real_example": np.ones((count, 1), np.int64),
                   "is_high_example": np.array([[int(e.level == "high")] for e in chunk], np.int64)}

    meta = {"num_real_examples": len(examples), "num_examples": len(examples), "settings": settings}
    write_records(path, batches(), meta)
    log(f"wrote {len(examples):,} questions to {path}")
    return meta


def _parse_fn(max_seq_length: int, num_choices: int) -> Callable:
    total = max_seq_length * num_choices
    spec = {"input_ids": tf.io.FixedLenFeature([total], tf.int64),
            "input_mask": tf.io.FixedLenFeature([total], tf.float32),
            "segment_ids": tf.io.FixedLenFeature([total], tf.int64),
            "label_ids": tf.io.FixedLenFeature([1], tf.int64),
            "is_real_example": tf.io.FixedLenFeature([1], tf.int64, default_value=[1]),
            "is_high_example": tf.io.FixedLenFeature([1], tf.int64)}
    shape = [num_choices, max_seq_length]

    def parse(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        record = tf.io.parse_single_example(serialized, spec)
        return {"token_ids": tf.reshape(tf.cast(record["input_ids"], tf.int32), shape),
                "segment_ids": tf.reshape(tf.cast(record["segment_ids"], tf.int32), shape),
                "padding_mask": tf.reshape(tf.cast(1.0 - record["input_mask"], tf.int32), shape),
                "label": tf.cast(record["label_ids"][0], tf.int32),
                "is_real_example": tf.cast(record["is_real_example"][0], tf.int32),
                "is_high_example": tf.cast(record["is_high_example"][0], tf.int32)}
    return parse


def race_train_input_fn(path: str, max_seq_length: int, per_replica_batch: int, seed: int = 0,
                        shuffle_buffer: int = 2048, start_step: int = 0, num_choices: int = 4) -> Callable:
    """`dataset_fn(input_context)`: shuffled, repeated, per-replica batches; resumable at `start_step`."""
    return shuffled_input_fn(path, _parse_fn(max_seq_length, num_choices), per_replica_batch, seed, shuffle_buffer,
                             start_step)


def race_eval_dataset(path: str, max_seq_length: int, global_batch: int, num_examples: int,
                      num_choices: int = 4) -> tf.data.Dataset:
    """Every question once, numbered (`example_index`), padded with fake questions to a multiple of the batch."""
    shape = [num_choices, max_seq_length]
    fake = {"token_ids": tf.zeros(shape, tf.int32), "segment_ids": tf.zeros(shape, tf.int32),
            "padding_mask": tf.tile(tf.one_hot([0], max_seq_length, dtype=tf.int32), [num_choices, 1]),
            "label": tf.constant(0), "is_high_example": tf.constant(0)}
    return numbered_eval_dataset(path, _parse_fn(max_seq_length, num_choices), fake, global_batch, num_examples)
