"""CoNLL sentences -> the tagger's TFRecords, and the tf.data pipelines that read them back.

    sentences = read_split("data/chunking", "train", tag_column=-1)        # data/chunking/train.txt
    labels = label_list(sentences)                                        # conll.label_list: "O" first
    meta = write_tagging_records(sentences, tokenizer, labels, path, 128, settings={"task": "tagger", ...})
    dataset_fn = tagging_train_input_fn(path, 128, per_replica_batch=16, seed=0)
    dataset = tagging_eval_dataset(path, 128, global_batch=32, num_examples=meta["num_examples"])

Files: `{data_dir}/{split}.txt` in CoNLL format (see `conll.py`). A file whose first token line has a single
column is unlabelled (prediction only); otherwise the tag is in `tag_column` (default: the last).

One sentence is one record, `[CLS] pieces [SEP]` padded to `max_seq_length` (segments 2, 0, 0; pad id,
segment 0, padding_mask 0), as the classifier packs a single text. Only the first piece of a word is labelled:
`label_ids` holds the tag's index there and -1 everywhere else ([CLS], [SEP], later pieces, padding), and
`word_index` the word's number there (-1 elsewhere), so predictions go back to words. An unlabelled sentence
has -1 everywhere in `label_ids`.

Long sentences are **truncated**, not split: the words whose pieces do not fit after the first
`max_seq_length - 2` are dropped from the record and counted (`num_words_cut`, `num_sentences_cut` in the
meta and the log). Evaluation and prediction still cover every word of the file: a cut word is predicted "O",
so truncation shows in the scores instead of hiding words from them. (Splitting into windows would tag every
word, at the price of stitching overlapping windows back together; choose a longer --max_seq_length instead.)
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import Any, Callable, Sequence

import numpy as np
import tensorflow as tf

from funnel_tfm import file_io
from funnel_tfm.data import data_utils
from funnel_tfm.data.classifier_records import numbered_eval_dataset, shuffled_input_fn
from funnel_tfm.data.conll import DOCSTART, ConllError, Sentence, align_first_subtokens, read_conll
from funnel_tfm.data.example_proto import write_records
from funnel_tfm.data.tokenization import Tokenizer

IGNORED = -1          # label_ids / word_index of positions that carry no word label
ENCODE_BATCH = 4096   # distinct words tokenized per call
WRITE_BATCH = 512     # records serialized per call


# CoNLL-2003's own names (eng.train, eng.testa = dev, eng.testb = test; deu.* for German), used when
# `{split}.txt` is absent.
CONLL2003_NAMES = {"train": ("eng.train", "deu.train"), "dev": ("eng.testa", "deu.testa"),
                   "test": ("eng.testb", "deu.testb")}


def split_path(data_dir: str, split: str) -> str:
    """The CoNLL file of `split`: `{data_dir}/{split}.txt`, else CoNLL-2003's name for it (`eng.testa` for
    dev ...), else the `{split}.txt` path (for the error message)."""
    path = os.path.join(data_dir, f"{split}.txt")
    if not file_io.exists(path):  # local or gs://
        for name in CONLL2003_NAMES.get(split, ()):
            if file_io.exists(os.path.join(data_dir, name)):
                return os.path.join(data_dir, name)
    return path


def _first_token_columns(path: str) -> int:
    """The number of columns of the file's first token line (0 when it has none)."""
    with file_io.open_file(path, "rb") as handle:
        for raw in handle:
            line = raw.decode("utf-8", errors="replace").lstrip("\ufeff").strip(" \t\r\n")
            columns = re.split(r"[ \t]+", line) if line else []  # read_conll's separators: spaces and tabs
            if columns and columns[0] != DOCSTART:
                return len(columns)
    return 0


def read_split(data_dir: str, split: str, tag_column: int = -1, labels: Sequence[str] | None = None,
               need_tags: bool = False) -> list[Sentence]:
    """The sentences of `{data_dir}/{split}.txt`; tags checked against `labels` when given.

        read_split("ner", "train")                                   # tags in the last column
        read_split("ner", "dev", labels=("O", "B-PER", "I-PER"))     # another tag: ConllError at file:line
        read_split("ner", "test")                                    # one column: Sentence.tags is None

    A file with one column is unlabelled; with `need_tags` (training, evaluation) that is a ConllError.
    """
    path = split_path(data_dir, split)
    if not file_io.exists(path):
        raise FileNotFoundError(f"{path}: no such file (the tagger reads {{data_dir}}/{{split}}.txt, or CoNLL-2003's "
                                f"eng.train / eng.testa / eng.testb, in CoNLL format: one token per line with its tag, a blank line between sentences)")
    has_tags = _first_token_columns(path) != 1
    if need_tags and not has_tags:
        raise ConllError(f"{path}:1: one column (words only); expected the words and their tags (needed to "
                         f"{'train' if split == 'train' else 'evaluate'})")
    return read_conll(path, tag_column=tag_column, has_tags=has_tags, label_list=labels if has_tags else None)


def fingerprint(sentences: Sequence[Sentence]) -> str:
    """A digest of the words and tags, so that records of an edited file are not silently reused."""
    digest = hashlib.sha256()
    for sentence in sentences:
        digest.update("\x1f".join(sentence.words).encode("utf-8") + b"\x1e")
        digest.update("\x1f".join(sentence.tags or ()).encode("utf-8") + b"\x1d")
    return digest.hexdigest()


def _piece_table(tokenizer: Tokenizer, sentences: Sequence[Sentence]) -> dict[str, list[int]]:
    """Word -> its pieces, for every distinct word (tokenized in large batches: one graph call per batch)."""
    words = sorted({word for sentence in sentences for word in sentence.words})
    table: dict[str, list[int]] = {}
    for start in range(0, len(words), ENCODE_BATCH):
        chunk = words[start:start + ENCODE_BATCH]
        table.update(zip(chunk, tokenizer.encode_batch(chunk)))
    return table


def pack_sentence(sentence: Sentence, pieces: dict[str, list[int]], tokenizer: Tokenizer,
                  label_index: dict[str, int], max_seq_length: int) -> tuple[dict[str, np.ndarray], int]:
    """(`token_ids`, `segment_ids`, `padding_mask`, `label_ids`, `word_index` int32 [max_seq_length], words cut).

        features, cut = pack_sentence(Sentence(("Johanson", "lives"), ("B-PER", "O"), 1), table, tok,
                                      {"O": 0, "B-PER": 1}, max_seq_length=8)
        # token_ids [CLS] johan ##son lives [SEP] [PAD] x3; label_ids -1 1 -1 0 -1 -1 -1 -1; word_index -1 0 -1 1 -1 ...
    """
    aligned = align_first_subtokens(sentence.words, sentence.tags, pieces.__getitem__, label_index,
                                     max_seq_length - 2)
    has_labels = sentence.tags is not None
    labelled = [label if first and has_labels else IGNORED
                for label, first in zip(aligned.label_ids, aligned.label_mask)]
    ids = [tokenizer.cls_id, *aligned.ids, tokenizer.sep_id]
    padding = max_seq_length - len(ids)
    features = {
        "token_ids": ids + [tokenizer.pad_id] * padding,
        "segment_ids": [data_utils.CLS_SEGMENT_ID] + [data_utils.SEGMENT_A_ID] * (max_seq_length - 1),
        "padding_mask": [1] * len(ids) + [0] * padding,
        "label_ids": [IGNORED, *labelled] + [IGNORED] * (padding + 1),
        "word_index": [IGNORED, *aligned.word_index] + [IGNORED] * (padding + 1),
    }
    return {name: np.asarray(values, np.int32) for name, values in features.items()}, aligned.words_cut


def write_tagging_records(sentences: Sequence[Sentence], tokenizer: Tokenizer, labels: Sequence[str], path: str,
                          max_seq_length: int, settings: dict[str, Any],
                          log: Callable[[str], None] = print) -> dict[str, Any]:
    """Writes one record per sentence to `path` and the meta json beside it, atomically; returns the meta.

    The meta counts sentences (`num_examples`), words, and the words and sentences cut by `max_seq_length`.
    """
    tokenizer.require_special(("cls", "sep", "pad"))
    label_index = {label: i for i, label in enumerate(labels)}
    pieces = _piece_table(tokenizer, sentences)
    meta = {"num_real_examples": len(sentences), "num_examples": len(sentences),
            "num_words": sum(len(s.words) for s in sentences), "num_words_cut": 0, "num_sentences_cut": 0,
            "labels": list(labels), "settings": settings}

    def batches():
        # The cut counts are added up here, as the batches are written; write_records writes the meta last.
        for start in range(0, len(sentences), WRITE_BATCH):
            packed = []
            for sentence in sentences[start:start + WRITE_BATCH]:
                features, cut = pack_sentence(sentence, pieces, tokenizer, label_index, max_seq_length)
                packed.append(features)
                meta["num_words_cut"] += cut
                meta["num_sentences_cut"] += int(cut > 0)
            column = {name: np.stack([p[name] for p in packed]) for name in packed[0]}
            yield {"input_ids": column["token_ids"],
                   "input_mask": 1.0 - column["padding_mask"].astype(np.float32),  # the original's: 1 = padding
                   "segment_ids": column["segment_ids"], "label_ids": column["label_ids"],
                   "word_index": column["word_index"], "is_real_example": np.ones((len(packed), 1), np.int64)}

    write_records(path, batches(), meta)
    cut_note = (f"; {meta['num_words_cut']:,} word(s) cut from {meta['num_sentences_cut']:,} sentence(s) longer "
                f"than {max_seq_length - 2} pieces (predicted O)" if meta["num_words_cut"] else "")
    log(f"wrote {len(sentences):,} sentences to {path}{cut_note}")
    return meta


def _parse_fn(max_seq_length: int) -> Callable:
    spec = {"input_ids": tf.io.FixedLenFeature([max_seq_length], tf.int64),
            "input_mask": tf.io.FixedLenFeature([max_seq_length], tf.float32),
            "segment_ids": tf.io.FixedLenFeature([max_seq_length], tf.int64),
            "label_ids": tf.io.FixedLenFeature([max_seq_length], tf.int64),
            "word_index": tf.io.FixedLenFeature([max_seq_length], tf.int64),
            "is_real_example": tf.io.FixedLenFeature([1], tf.int64, default_value=[1])}

    def parse(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        record = tf.io.parse_single_example(serialized, spec)
        return {"token_ids": tf.cast(record["input_ids"], tf.int32),
                "segment_ids": tf.cast(record["segment_ids"], tf.int32),
                "padding_mask": tf.cast(1.0 - record["input_mask"], tf.int32),
                "label_ids": tf.cast(record["label_ids"], tf.int32),
                "word_index": tf.cast(record["word_index"], tf.int32),
                "is_real_example": tf.cast(record["is_real_example"][0], tf.int32)}
    return parse


def tagging_train_input_fn(path: str, max_seq_length: int, per_replica_batch: int, seed: int = 0,
                           shuffle_buffer: int = 2048, start_step: int = 0) -> Callable:
    """`dataset_fn(input_context)`: shuffled, repeated, per-replica batches; resumable at `start_step`."""
    return shuffled_input_fn(path, _parse_fn(max_seq_length), per_replica_batch, seed, shuffle_buffer, start_step)


def tagging_eval_dataset(path: str, max_seq_length: int, global_batch: int, num_examples: int) -> tf.data.Dataset:
    """Every sentence once, numbered (`example_index`), padded with unlabelled fake sentences to a multiple of
    the global batch (`is_real_example` = 0), so each sentence counts once whatever the replica count."""
    ignored = tf.fill([max_seq_length], IGNORED)
    fake = {"token_ids": tf.zeros([max_seq_length], tf.int32), "segment_ids": tf.zeros([max_seq_length], tf.int32),
            "padding_mask": tf.one_hot(0, max_seq_length, dtype=tf.int32),  # one real key: no all-masked row
            "label_ids": ignored, "word_index": ignored}
    return numbered_eval_dataset(path, _parse_fn(max_seq_length), fake, global_batch, num_examples)
