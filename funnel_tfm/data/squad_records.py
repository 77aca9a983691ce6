"""SQuAD features as TFRecords (the original's file names and fields) and the tf.data streams over them.

    path = train_record_path("proc_data/squad", "vocab.uncased.txt", 512, 64, "v2", proc_id=0)
    write_squad_records(features, path, is_training=True, meta={...})
    dataset_fn = squad_train_input_fn([path], 512, per_replica_batch=8, seed=0)
    dataset = squad_eval_dataset(eval_path, 512, global_batch=32, num_examples=meta["num_examples"])

Evaluation records come with `<name>.features.json` (`squad_data.feature_index`): which question and window each
record is, and the character span of every paragraph token, for turning the model's beams into answer text.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Sequence

import tensorflow as tf

from funnel_tfm import file_io
from funnel_tfm.data.classifier_records import numbered_eval_dataset, shuffled_input_fn
from funnel_tfm.data.example_proto import write_records
from funnel_tfm.data.squad_data import SquadFeature, record_arrays

WRITE_BATCH = 256


def _version_infix(version: str) -> str:
    return "v1." if version == "v1" else ""


def train_record_path(output_dir: str, tokenizer_path: str, max_seq_length: int, max_query_length: int,
                      version: str, proc_id: int) -> str:
    """`{tok}.{proc_id}.slen-{L}.qlen-{Q}.train.{v1.|}tfrecord`, the original's name."""
    return os.path.join(output_dir, f"{os.path.basename(tokenizer_path)}.{proc_id}.slen-{max_seq_length}."
                                    f"qlen-{max_query_length}.train.{_version_infix(version)}tfrecord")


def train_record_glob(output_dir: str, tokenizer_path: str, max_seq_length: int, max_query_length: int,
                      version: str) -> list[str]:
    """Every process's training records (`--num_proc` > 1 writes one file per `--proc_id`), sorted."""
    pattern = train_record_path(output_dir, tokenizer_path, max_seq_length, max_query_length, version, 0)
    pattern = pattern.replace(f"{os.path.basename(tokenizer_path)}.0.", f"{os.path.basename(tokenizer_path)}.*.")
    return sorted(tf.io.gfile.glob(pattern))


def eval_record_path(output_dir: str, tokenizer_path: str, max_seq_length: int, max_query_length: int,
                     version: str) -> str:
    """`{tok}.slen-{L}.qlen-{Q}.eval.{v1.|}tfrecord`, the original's name."""
    return os.path.join(output_dir, f"{os.path.basename(tokenizer_path)}.slen-{max_seq_length}."
                                    f"qlen-{max_query_length}.eval.{_version_infix(version)}tfrecord")


def feature_index_path(record_path: str) -> str:
    return record_path.replace(".tfrecord", ".features.json")


def write_squad_records(features: Sequence[SquadFeature], path: str, is_training: bool, meta: dict[str, Any],
                        index: dict[str, Any] | None = None) -> None:
    """Records (and meta; for evaluation the feature index) of `features`; nothing half-written on failure."""
    if index is not None:
        file_io.atomic_write_text(feature_index_path(path), json.dumps(index))
    batches = (record_arrays(features[i:i + WRITE_BATCH], is_training)
               for i in range(0, len(features), WRITE_BATCH))
    write_records(path, batches, meta)


def read_feature_index(record_path: str) -> dict[str, Any]:
    with file_io.open_file(feature_index_path(record_path)) as handle:
        return json.load(handle)


def _parse_fn(max_seq_length: int, is_training: bool) -> Callable:
    length = max_seq_length
    spec = {"unique_ids": tf.io.FixedLenFeature([1], tf.int64),
            "input_ids": tf.io.FixedLenFeature([length], tf.int64),
            "input_mask": tf.io.FixedLenFeature([length], tf.float32),
            "p_mask": tf.io.FixedLenFeature([length], tf.float32),
            "segment_ids": tf.io.FixedLenFeature([length], tf.int64),
            "cls_index": tf.io.FixedLenFeature([1], tf.int64)}
    if is_training:
        spec.update(start_positions=tf.io.FixedLenFeature([1], tf.int64),
                    end_positions=tf.io.FixedLenFeature([1], tf.int64),
                    is_impossible=tf.io.FixedLenFeature([1], tf.float32))

    def parse(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        record = tf.io.parse_single_example(serialized, spec)
        out = {"token_ids": tf.cast(record["input_ids"], tf.int32),
               "segment_ids": tf.cast(record["segment_ids"], tf.int32),
               "padding_mask": tf.cast(1.0 - record["input_mask"], tf.int32),
               "p_mask": record["p_mask"], "cls_index": tf.cast(record["cls_index"][0], tf.int32),
               "is_real_example": tf.constant(1, tf.int32)}
        if is_training:
            out.update(start_positions=tf.cast(record["start_positions"][0], tf.int32),
                       end_positions=tf.cast(record["end_positions"][0], tf.int32),
                       is_impossible=record["is_impossible"][0])
        return out
    return parse


def squad_train_input_fn(paths: Sequence[str], max_seq_length: int, per_replica_batch: int, seed: int = 0,
                         shuffle_buffer: int = 2048, start_step: int = 0) -> Callable:
    """`dataset_fn(input_context)`: the records of `paths` shuffled, repeated, per-replica batches; a resumed run
    skips exactly what it had read."""
    return shuffled_input_fn(list(paths), _parse_fn(max_seq_length, True), per_replica_batch, seed, shuffle_buffer,
                             start_step)


def squad_eval_dataset(path: str, max_seq_length: int, global_batch: int, num_examples: int) -> tf.data.Dataset:
    """Every evaluation feature once, in file order, numbered (`example_index` = record number), padded."""
    fake = {"token_ids": tf.zeros([max_seq_length], tf.int32), "segment_ids": tf.zeros([max_seq_length], tf.int32),
            "padding_mask": tf.one_hot(0, max_seq_length, dtype=tf.int32),
            "p_mask": tf.concat([[0.0], tf.ones([max_seq_length - 1])], 0), "cls_index": tf.constant(0)}
    return numbered_eval_dataset(path, _parse_fn(max_seq_length, False), fake, global_batch, num_examples)
