"""tf.data pipelines for pretraining: records -> online masking -> static-shape batches (semantics D4–D7).

    dataset_fn = pretrain_input_fn(record_dirs=["records"], seq_len=128, batch_size=32, num_predict=20,
                                   special=MaskingIds.from_tokenizer(tok), sample_strategy="word_span", seed=1)
    dataset = strategy.distribute_datasets_from_function(dataset_fn)   # or dataset_fn(None) on one device

Every random draw is a stateless op seeded by (seed, example index), so a seed gives the same batches every
run; the record order is shuffled with the seed and reshuffled each epoch (the original cached the first
order, semantics D5). Masking follows the original: `word_span` (MLM: whole-word spans of 1-5 words, p(l) ∝ 1/(l+1))
or `single_token` (ELECTRA), the remainder filled with single tokens, then 80% [MASK] / 10% random / 10% kept.

Batch fields: `token_ids` (masked), `origin_ids`, `segment_ids`, `padding_mask` (1 = real token),
`mlm_padding_mask` (also 0 at [MASK]: the original's MLM attention ignores masked keys, semantics P2), `is_target` [L],
`target_positions` [K] (ascending, 0 in padding slots), `target` [K], `target_weights` [K] (1 = real slot),
`target_mapping` [K, L] (one-hot rows). With `next_sentence=True` (FNet's MLM + NSP), also
`next_sentence_label` (int32 scalar): 0 when segment B continues A, 1 when B is a random span, the BERT / transformers
convention, made from the record's `label` (1 = continuation, create_pretrain_data's split, semantics D3); records
without a `label` cannot feed it (`records_have_next_sentence_label`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re

import numpy as np
import tensorflow as tf

from funnel_tfm.data.data_utils import meta_glob

SAMPLE_STRATEGIES = ("single_token", "word_span")


@dataclasses.dataclass(frozen=True)
class MaskingIds:
    cls_id: int
    sep_id: int
    pad_id: int
    mask_id: int
    vocab_size: int

    @classmethod
    def from_tokenizer(cls, tokenizer) -> "MaskingIds":
        tokenizer.require_special()
        return cls(tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id, tokenizer.mask_id, tokenizer.vocab_size)


def _read_meta(path: str) -> dict:
    """A create_pretrain_data meta json, or a ValueError that names it (a hand-edited or cut-off copy)."""
    try:
        with tf.io.gfile.GFile(path) as handle:
            info = json.load(handle)
        if (isinstance(info, dict) and isinstance(info.get("filenames"), list)
                and isinstance(info.get("num_example"), int)):
            return info
        problem = "not {\"filenames\": [...], \"num_example\": n}"
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        problem = f"not JSON ({error})"
    raise ValueError(f"{path}: {problem}; write the records again with create_pretrain_data")


def record_files(record_dirs: list[str], split: str, seq_len: int, uncased: bool, num_passes: int = 1
                 ) -> tuple[list[str], int]:
    """(record files, number of examples) from the meta jsons of passes < num_passes, as the original globbed;
    files of no examples are left out, a file a meta lists but that is missing is a FileNotFoundError."""
    case = "uncased" if uncased else "cased"
    files, examples, empty = [], 0, []
    for directory, meta, info in _metas(record_dirs, split, seq_len, uncased, num_passes):
        if not int(info["num_example"]):
            empty.append(meta)  # a task whose text was too short for one example: nothing to read
            continue
        for name in info["filenames"]:
            if not tf.io.gfile.exists(os.path.join(directory, name)):
                raise FileNotFoundError(f"{meta} lists {name}, which is not in {directory} (moved or deleted? "
                                        f"write the records again with create_pretrain_data)")
            files.append(os.path.join(directory, name))
        examples += int(info["num_example"])
    if not files and empty:
        raise FileNotFoundError(f"the records in {', '.join(record_dirs)} hold no examples (num_example 0 in "
                                f"{', '.join(os.path.basename(m) for m in empty[:3])}{', ...' if len(empty) > 3 else ''}"
                                f"): the text was shorter than one --seq_len={seq_len} example")
    if not files:
        present = sorted({re.sub(r"^meta\.|\.json.*$", "", os.path.basename(m)) for d in record_dirs
                          for m in tf.io.gfile.glob(os.path.join(d, "meta.*.json*"))})
        found = f"; found: {', '.join(present)}" if present else "; no meta.*.json* files there at all"
        raise FileNotFoundError(f"no meta.{split}.pass-*.seq-{seq_len}.{case}.json* with pass < {num_passes} in "
                                f"{', '.join(record_dirs)} (write them with create_pretrain_data --seq_len={seq_len})"
                                f"{found}")
    return files, examples


def _metas(record_dirs: list[str], split: str, seq_len: int, uncased: bool, num_passes: int):
    """(directory, meta path, meta) of every meta json of passes < num_passes, in order."""
    for directory in record_dirs:
        for meta in sorted(tf.io.gfile.glob(os.path.join(directory, meta_glob(split, seq_len, uncased)))):
            if int(re.search(r"\.pass-(\d+)\.", os.path.basename(meta)).group(1)) < num_passes:
                yield directory, meta, _read_meta(meta)


# Counting reads every record once (~1 s per 300 MB on one core); larger record sets are not counted.
COUNT_RECORDS_UP_TO_BYTES = 2 << 30


def miscounted_records(record_dirs: list[str], split: str, seq_len: int, uncased: bool, num_passes: int = 1,
                       max_bytes: int = COUNT_RECORDS_UP_TO_BYTES) -> list[str] | None:
    """"<meta>: promises N examples, its files hold M" for each meta whose files hold another number of records
    than its num_example (files cut at a record boundary by a copy read without error, and would train on
    fewer examples than promised); None when the files exceed `max_bytes` together and were not counted.

        miscounted_records(["records"], "train", 512, True)    # [] when every file is whole
    """
    metas = list(_metas(record_dirs, split, seq_len, uncased, num_passes))
    paths = [[os.path.join(d, name) for name in info["filenames"]] for d, _, info in metas]
    if sum(tf.io.gfile.stat(p).length for group in paths for p in group if tf.io.gfile.exists(p)) > max_bytes:
        return None
    problems = []
    for (_, meta, info), group in zip(metas, paths):
        damaged = damaged_record_file(group)  # counts too: a file that cannot be read to its end is named
        if damaged is not None:
            problems.append(f"{damaged[0]}: damaged record file ({damaged[1]})")
            continue
        found = sum(int(tf.data.TFRecordDataset(p).reduce(np.int64(0), lambda count, _: count + 1).numpy())
                    for p in group)
        if found != int(info["num_example"]):
            problems.append(f"{meta}: promises {info['num_example']} examples, its files hold {found}")
    return problems


def unused_passes(record_dirs: list[str], split: str, seq_len: int, uncased: bool, num_passes: int) -> list[int]:
    """Pass ids >= num_passes that the record dirs hold (create_pretrain_data --pass_id=1.. that a run with
    --num_passes=1 leaves out, as the original did), to tell the user.

        unused_passes(["records"], "train", 512, True, 1)   # [1, 2, 3, 4] after the README's `seq 0 4` loop
    """
    found = set()
    for directory in record_dirs:
        for meta in tf.io.gfile.glob(os.path.join(directory, meta_glob(split, seq_len, uncased))):
            found.add(int(re.search(r"\.pass-(\d+)\.", os.path.basename(meta)).group(1)))
    return sorted(p for p in found if p >= num_passes)


def first_record_ids(files: list[str], seq_len: int) -> "np.ndarray":
    """Token ids of the first record of the first file, to check records against a model's vocabulary."""
    for serialized in tf.data.TFRecordDataset(files[:1]).take(1):
        example = tf.io.parse_single_example(serialized, {"input": tf.io.FixedLenFeature([seq_len], tf.int64)})
        return example["input"].numpy()
    raise FileNotFoundError(f"{files[0]}: empty record file")


def damaged_record_file(files: list[str]) -> tuple[str, str] | None:
    """(file, TensorFlow's reason) of the first record file that cannot be read to its end (cut off by a copy,
    a bad CRC), else None; reads every file, so it is for after a DataLossError, whose message names none.

        damaged_record_file(record_files(["records"], "train", 512, True)[0])   # ("records/data...", "truncated ...")
    """
    for path in files:
        try:
            tf.data.TFRecordDataset(path).reduce(np.int64(0), lambda count, _: count + 1).numpy()
        except tf.errors.DataLossError as error:
            reason = error.message.strip().splitlines()[-1]
            return path, re.sub(r"\{\{.*?\}\}|\[Op:.*$", "", reason).strip()  # TensorFlow's node names
    return None


def records_have_next_sentence_label(files: list[str]) -> bool:
    """Whether the first record of the first file holds the `label` [1] of the A/B split (semantics D3/D4)."""
    for serialized in tf.data.TFRecordDataset(files[:1]).take(1):
        example = tf.train.Example.FromString(serialized.numpy())
        label = example.features.feature.get("label")
        return label is not None and len(label.int64_list.value) == 1
    raise FileNotFoundError(f"{files[0]}: empty record file")


def _span_lengths(seed, count: int, min_len: int, max_len: int) -> tf.Tensor:
    lengths = tf.range(min_len, max_len + 1, dtype=tf.float32)
    logits = tf.math.log(1.0 / (lengths + 1.0))[None]
    draw = tf.random.stateless_categorical(logits, count, seed, dtype=tf.int32)[0]
    return tf.cast(draw + min_len, tf.float32)


def _word_span_targets(ids, boundary, special, num_predict: int, stride: int, seeds) -> tf.Tensor:
    """is_target [L] from whole-word spans (the original's word_span, semantics D6)."""
    seq_len = ids.shape[0]
    non_pad_len = seq_len + 1 - stride
    chunk = non_pad_len / num_predict / 1.2
    span_len = _span_lengths(seeds[0], num_predict, 1, 5)
    u = tf.random.stateless_uniform([num_predict], seeds[1])
    left = tf.round(u * span_len * (chunk - 1.0))
    right = tf.round(span_len * chunk) - left
    begin = tf.cumsum(left) + tf.cumsum(right, exclusive=True)
    end = begin + span_len
    valid = end < tf.cast(tf.shape(boundary)[0] - 1, tf.float32)
    begin = tf.cast(tf.boolean_mask(begin, valid), tf.int32)
    end = tf.cast(tf.boolean_mask(end, valid), tf.int32)
    order = tf.argsort(tf.random.stateless_uniform(tf.shape(begin), seeds[2]))
    begin_tok = tf.gather(boundary, tf.gather(begin, order))
    end_tok = tf.gather(boundary, tf.gather(end, order))
    positions = tf.range(seq_len)[None]
    covered = (positions >= begin_tok[:, None]) & (positions < end_tok[:, None]) & ~special[None]
    running = tf.reshape(tf.cumsum(tf.reshape(tf.cast(covered, tf.int32), [-1])), tf.shape(covered))
    kept = covered & (running <= num_predict)
    return tf.reduce_any(kept, axis=0)


def _fill_single_tokens(ids, is_target, excluded, num_predict: int, seed) -> tf.Tensor:
    """Adds random single-token targets among the non-excluded positions up to num_predict (single_token)."""
    candidate = ~excluded & ~is_target
    needed = num_predict - tf.reduce_sum(tf.cast(is_target, tf.int32))
    keys = tf.random.stateless_uniform(tf.shape(ids), seed) + 2.0 * tf.cast(~candidate, tf.float32)
    rank = tf.argsort(tf.argsort(keys))
    return is_target | (candidate & (rank < needed))


def make_example_fn(seq_len: int, num_predict: int, ids_: MaskingIds, sample_strategy: str = "single_token",
                    stride: int = 1, truncate_seq: bool = False, leak_ratio: float = 0.1, rand_ratio: float = 0.1,
                    next_sentence: bool = False):
    """(serialized record, seed [2]) -> masked example dict; see the module docstring."""
    if sample_strategy not in SAMPLE_STRATEGIES:
        raise ValueError(f"sample_strategy {sample_strategy!r}; expected one of {', '.join(SAMPLE_STRATEGIES)}")
    if not 0 < num_predict < seq_len - 3:
        raise ValueError(f"num_predict must be in (0, seq_len - 3) = (0, {seq_len - 3}), got {num_predict}")
    spec = {"input": tf.io.FixedLenFeature([seq_len], tf.int64), "seg_id": tf.io.FixedLenFeature([seq_len], tf.int64),
            "boundary": tf.io.VarLenFeature(tf.int64)}
    if next_sentence:
        spec["label"] = tf.io.FixedLenFeature([1], tf.int64)

    def example_fn(serialized, seed):
        features = tf.io.parse_single_example(serialized, spec)
        ids = tf.cast(features["input"], tf.int32)
        segments = tf.cast(features["seg_id"], tf.int32)
        boundary = tf.cast(tf.sparse.to_dense(features["boundary"]), tf.int32)
        if truncate_seq and stride > 1:  # the last `stride` tokens become [SEP] [PAD]... (semantics D5)
            tail = tf.constant([ids_.sep_id] + [ids_.pad_id] * (stride - 1), tf.int32)
            ids = tf.concat([ids[:seq_len - stride], tail], 0)
            boundary = tf.boolean_mask(boundary, boundary < seq_len - stride)
        seeds = tf.random.experimental.stateless_split(seed, 6)
        special = (ids == ids_.cls_id) | (ids == ids_.sep_id)
        is_target = tf.zeros([seq_len], tf.bool)
        if sample_strategy == "word_span":
            is_target = _word_span_targets(ids, boundary, special, num_predict, stride, seeds[:3])
        is_target = _fill_single_tokens(ids, is_target, special | (ids == ids_.pad_id), num_predict, seeds[3])

        # 80% [MASK] / 10% random id / 10% kept (semantics D7).
        p = tf.random.stateless_uniform([seq_len], seeds[4])
        random_ids = tf.random.stateless_uniform([seq_len], seeds[5], maxval=ids_.vocab_size, dtype=tf.int32)
        masked = tf.where(is_target & (p > leak_ratio), ids_.mask_id, ids)
        if rand_ratio > 0:
            masked = tf.where(is_target & (p > leak_ratio) & (p < leak_ratio + rand_ratio), random_ids, masked)

        positions = tf.cast(tf.where(is_target)[:, 0], tf.int32)[:num_predict]
        count = tf.shape(positions)[0]
        weights = tf.concat([tf.ones([count]), tf.zeros([num_predict - count])], 0)
        positions = tf.concat([positions, tf.zeros([num_predict - count], tf.int32)], 0)
        target = tf.gather(ids, positions) * tf.cast(weights, tf.int32)
        real = tf.cast(masked != ids_.pad_id, tf.int32)
        example = {
            "token_ids": masked, "origin_ids": ids, "segment_ids": segments, "padding_mask": real,
            "mlm_padding_mask": real * tf.cast(masked != ids_.mask_id, tf.int32), "is_target": is_target,
            "target_positions": positions, "target": target, "target_weights": weights,
            "target_mapping": tf.one_hot(positions, seq_len) * weights[:, None],
        }
        for key in ("target_positions", "target", "target_weights"):  # static shapes: XLA compiles once
            example[key] = tf.ensure_shape(example[key], [num_predict])
        example["target_mapping"] = tf.ensure_shape(example["target_mapping"], [num_predict, seq_len])
        if next_sentence:  # the record's 1 = "B continues A" becomes NSP class 0 (see the module docstring)
            example["next_sentence_label"] = 1 - tf.cast(features["label"][0], tf.int32)
        return example

    return example_fn


SHARDINGS = ("files", "global_batch")


def pretrain_input_fn(record_dirs: list[str], seq_len: int, batch_size: int, num_predict: int,
                      special: MaskingIds, sample_strategy: str = "single_token", uncased: bool = True,
                      split: str = "train", num_passes: int = 1, seed: int = 0, stride: int = 1,
                      truncate_seq: bool = False, shuffle_buffer: int = 20480, repeat: bool = True,
                      start_step: int = 0, sharding: str = "files", next_sentence: bool = False):
    """A `fn(input_context) -> tf.data.Dataset` for `strategy.distribute_datasets_from_function`.

    `batch_size` is per replica. `sharding="files"`: each input pipeline reads `files[i::n]` (every n-th record
    when there are fewer files than pipelines): scalable, but the global batch depends on the number of
    pipelines. `sharding="global_batch"`: every pipeline reads the whole stream and keeps its slice of each
    global batch, so any number of hosts sees exactly the batches of one device (each host reads everything).

    `start_step` resumes the stream after that many global batches: the pipeline is a pure function of the
    seed, so skipping the records consumed so far (before parsing and masking, the costly part) continues the
    exact sequence an uninterrupted run would have read.
    """
    if sharding not in SHARDINGS:
        raise ValueError(f"sharding {sharding!r}; expected one of {', '.join(SHARDINGS)}")
    files, _ = record_files(record_dirs, split, seq_len, uncased, num_passes)
    example_fn = make_example_fn(seq_len, num_predict, special, sample_strategy, stride, truncate_seq,
                                 next_sentence=next_sentence)

    def dataset_fn(input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
        pipelines = input_context.num_input_pipelines if input_context else 1
        pipeline = input_context.input_pipeline_id if input_context else 0
        replicas = input_context.num_replicas_in_sync if input_context else 1
        per_pipeline = batch_size * replicas // pipelines  # examples of one global batch read by this pipeline
        by_files = sharding == "files"
        my_files = files[pipeline::pipelines] if by_files and len(files) >= pipelines else files
        dataset = tf.data.Dataset.from_tensor_slices(my_files)
        dataset = dataset.shuffle(len(my_files), seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.interleave(tf.data.TFRecordDataset, cycle_length=min(8, len(my_files)),
                                     num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if by_files and len(files) < pipelines:
            dataset = dataset.shard(pipelines, pipeline)
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        if repeat:
            dataset = dataset.repeat()
        dataset = dataset.enumerate()
        if by_files:
            dataset = dataset.skip(start_step * per_pipeline)
            stream = pipeline
        else:  # one stream for all: the example index (the masking seed) is the global one
            global_batch = per_pipeline * pipelines
            dataset = dataset.skip(start_step * global_batch)
            dataset = dataset.filter(lambda index, _: (index % global_batch) // per_pipeline == pipeline)
            stream = 0
        base = seed * 1_000_003 + stream
        dataset = dataset.map(lambda index, record: example_fn(record, tf.stack([tf.constant(base, tf.int64),
                                                                                     index])),
                              num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    return dataset_fn
