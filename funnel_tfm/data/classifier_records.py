"""Classification features as the original's TFRecords, and the tf.data pipelines that read them back.

    pre = Preprocessor.from_file("vocab.txt", uncased=True, seq_len=128)
    path = record_path("proc_data/cola", "vocab.txt", 128, "train")
    meta = write_features(examples, spec.labels, spec.is_regression, pre, path, settings={"task": "cola"})
    dataset_fn = train_input_fn(path, 128, spec.is_regression, per_replica_batch=16, seed=0)
    dataset = eval_dataset(path, 128, spec.is_regression, global_batch=16, num_examples=meta["num_examples"])

Files and features are the original's (docs/original_semantics.md F1, F2), so records written by the original
read here and the other way round: `{output_dir}/{basename(tokenizer)}.len-{M}.{split}.tfrecord` with `input_ids`,
`input_mask` (float, 1 = padding), `segment_ids`, `label_ids` (float for regression), `is_real_example`; the
meta json beside it (`tfrecord` -> `meta.json` in the name) counts the examples and, ours only, records the
settings that made them (with a digest of the examples: `examples_digest`), so records of other settings or of
other data are not silently reused.

Evaluation sets are not padded in the file (the original wrote fake examples into it); `eval_dataset` pads the
stream to a multiple of the global batch with `is_real_example = 0` examples and numbers the real ones
(`example_index`), so every example is counted exactly once whatever the batch size and replica count.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import time
from typing import Any, Callable, Sequence

import numpy as np
import tensorflow as tf

from funnel_tfm import file_io
from funnel_tfm.data.example_proto import serialize_examples
from funnel_tfm.data.preprocessing import Preprocessor

CONVERT_BATCH = 512


def record_path(output_dir: str, tokenizer_path: str, seq_len: int, split: str) -> str:
    """The original's record name: `{output_dir}/{basename(tokenizer)}.len-{M}.{split}.tfrecord`."""
    return os.path.join(output_dir, f"{os.path.basename(tokenizer_path)}.len-{seq_len}.{split}.tfrecord")


def meta_path(path: str) -> str:
    return path.replace("tfrecord", "meta.json")


def read_meta(path: str) -> dict[str, Any] | None:
    """The meta json of the records at `path`, or None when either file is missing."""
    if not (file_io.exists(path) and file_io.exists(meta_path(path))):
        return None
    with file_io.open_file(meta_path(path)) as handle:
        return json.load(handle)


def examples_digest(examples: Sequence) -> str:
    """SHA-256 of the examples (dataclasses) in order: records are reused only for the data they were made from,
    so an edited data file at the same path is not silently answered with the old records.

        settings["data_sha256"] = examples_digest(task.examples("dev"))
    """
    digest = hashlib.sha256()
    names = [field.name for field in dataclasses.fields(examples[0])] if len(examples) else []
    for example in examples:  # not dataclasses.astuple: it deep-copies, 4x slower
        digest.update(json.dumps([getattr(example, name) for name in names], ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def _label_values(examples: Sequence, labels: tuple[str, ...], regression: bool) -> list[float | int]:
    if regression:
        return [float(e.label) if e.label is not None else 0.0 for e in examples]
    index = {label: i for i, label in enumerate(labels)}
    return [index[e.label] if e.label is not None else 0 for e in examples]  # test rows: the first label (original)


def _serialized_runs(examples: Sequence, labels: Sequence, preprocessor: Preprocessor, regression: bool,
                     progress: Callable[[int], None]):
    """Serialized records of `examples` in order. Runs of single texts and of pairs go through the in-graph
    preprocessor and serializer in batches (tf.data runs both on every core)."""
    start = 0
    for has_b, run in itertools.groupby(examples, key=lambda e: e.text_b is not None):
        run = list(run)
        columns = [[e.text_a for e in run]] + ([[e.text_b for e in run]] if has_b else [])
        run_labels = np.asarray(labels[start:start + len(run)], np.float32 if regression else np.int64)
        start += len(run)

        def serialize(label, *texts):
            packed = preprocessor(*texts)
            return serialize_examples({
                "input_ids": packed["token_ids"],
                "input_mask": 1.0 - tf.cast(packed["padding_mask"], tf.float32),  # the original's: 1 = padding
                "segment_ids": packed["segment_ids"],
                "label_ids": label[:, None],
                "is_real_example": tf.ones_like(packed["token_ids"][:, :1]),
            })

        dataset = tf.data.Dataset.from_tensor_slices((run_labels, *columns)).batch(CONVERT_BATCH)
        dataset = dataset.map(serialize, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        for records in dataset.prefetch(tf.data.AUTOTUNE).as_numpy_iterator():
            progress(len(records))
            yield from records


def write_features(examples: Sequence, labels: tuple[str, ...], regression: bool, preprocessor: Preprocessor,
                   path: str, settings: dict[str, Any], log: Callable[[str], None] = print) -> dict[str, Any]:
    """Writes `examples` to the record file `path` (and its meta json) atomically; returns the meta.

    Each example is packed by `preprocessor` and serialized in the graph (`example_proto`), a batch at a time;
    a progress line with the throughput is logged every few seconds, and once at the end.
    """
    values = _label_values(examples, labels, regression)
    started = last = time.perf_counter()
    done = 0

    def progress(count: int) -> None:
        nonlocal done, last
        done += count
        now = time.perf_counter()
        if now - last > 5.0:
            last = now
            log(f"  {os.path.basename(path)}: {done:,}/{len(examples):,} examples, {done / (now - started):,.0f}/s")

    file_io.makedirs(os.path.dirname(path) or ".")
    temporary = file_io.temporary_sibling(path)
    try:
        with tf.io.TFRecordWriter(temporary) as writer:
            for record in _serialized_runs(examples, values, preprocessor, regression, progress):
                writer.write(record)
        meta = {"num_real_examples": len(examples), "num_examples": len(examples), "settings": settings}
        file_io.atomic_write_text(meta_path(path), json.dumps(meta, indent=4) + "\n")
        file_io.rename(temporary, path)
    except BaseException:
        if file_io.exists(temporary):
            file_io.remove(temporary)
        raise
    elapsed = max(time.perf_counter() - started, 1e-9)
    log(f"wrote {len(examples):,} examples to {path} in {elapsed:.1f}s ({len(examples) / elapsed:,.0f} examples/s)")
    return meta


def _parse_fn(seq_len: int, regression: bool) -> Callable:
    spec = {
        "input_ids": tf.io.FixedLenFeature([seq_len], tf.int64),
        "input_mask": tf.io.FixedLenFeature([seq_len], tf.float32),
        "segment_ids": tf.io.FixedLenFeature([seq_len], tf.int64),
        "label_ids": tf.io.FixedLenFeature([1], tf.float32 if regression else tf.int64),
        "is_real_example": tf.io.FixedLenFeature([1], tf.int64, default_value=[1]),
    }

    def parse(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        record = tf.io.parse_single_example(serialized, spec)
        return {
            "token_ids": tf.cast(record["input_ids"], tf.int32),
            "segment_ids": tf.cast(record["segment_ids"], tf.int32),
            "padding_mask": tf.cast(1.0 - record["input_mask"], tf.int32),
            "label": record["label_ids"][0] if regression else tf.cast(record["label_ids"][0], tf.int32),
            "is_real_example": tf.cast(record["is_real_example"][0], tf.int32),
        }
    return parse


def shuffled_input_fn(path: str, parse: Callable, per_replica_batch: int, seed: int = 0, shuffle_buffer: int = 2048,
                      start_step: int = 0) -> Callable:
    """`dataset_fn(input_context)` for `Trainer.distribute` over the records at `path` read by `parse`: shuffled,
    repeated, batched per replica. The stream depends only on `seed`, so a run resumed at `start_step` skips
    exactly the batches it had read. Each input pipeline reads every `num_input_pipelines`-th record."""
    def dataset_fn(input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
        pipelines = input_context.num_input_pipelines if input_context else 1
        pipeline = input_context.input_pipeline_id if input_context else 0
        replicas_here = (input_context.num_replicas_in_sync // pipelines) if input_context else 1
        dataset = tf.data.TFRecordDataset(path).shard(pipelines, pipeline).repeat()
        dataset = dataset.shuffle(shuffle_buffer, seed=seed + pipeline, reshuffle_each_iteration=True)
        dataset = dataset.skip(start_step * per_replica_batch * replicas_here)
        dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
        return dataset.batch(per_replica_batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    return dataset_fn


def numbered_eval_dataset(path: str, parse: Callable, fake: dict[str, tf.Tensor], global_batch: int,
                          num_examples: int) -> tf.data.Dataset:
    """Every record once, in file order, numbered (`example_index`), padded with `fake` examples
    (`is_real_example = 0`, `example_index = -1`) to a multiple of `global_batch`; global batches."""
    real = tf.data.TFRecordDataset(path).map(parse).enumerate().map(
        lambda index, example: {**example, "example_index": tf.cast(index, tf.int32)})
    fake = {**fake, "is_real_example": tf.constant(0), "example_index": tf.constant(-1)}
    dataset = real.concatenate(tf.data.Dataset.from_tensors(fake).repeat(-num_examples % global_batch))
    return dataset.batch(global_batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def train_input_fn(path: str, seq_len: int, regression: bool, per_replica_batch: int, seed: int = 0,
                   shuffle_buffer: int = 2048, start_step: int = 0) -> Callable:
    """The classification records' `dataset_fn` (see `shuffled_input_fn`)."""
    return shuffled_input_fn(path, _parse_fn(seq_len, regression), per_replica_batch, seed, shuffle_buffer,
                             start_step)


def eval_dataset(path: str, seq_len: int, regression: bool, global_batch: int, num_examples: int) -> tf.data.Dataset:
    """Every classification example once, numbered and padded (see `numbered_eval_dataset`)."""
    fake = {"token_ids": tf.zeros([seq_len], tf.int32), "segment_ids": tf.zeros([seq_len], tf.int32),
            "padding_mask": tf.one_hot(0, seq_len, dtype=tf.int32),  # one real key: no all-masked attention row
            "label": tf.constant(0.0) if regression else tf.constant(0)}
    return numbered_eval_dataset(path, _parse_fn(seq_len, regression), fake, global_batch, num_examples)
