"""Raw text -> documents -> packed pretraining examples -> TFRecords (semantics D2–D4), reproducibly.

    stats = write_task_records(files, tokenizer, save_dir="records", seq_len=128, task=0, num_task=1, pass_id=0)

Raw format: one sentence per line, an empty line ends a document (`input_format="sentence_per_line"`), or one
document per line (`"doc_per_line"`, split into sentences by a rule-based splitter). Differences from the original,
all deliberate: the last document of a file is kept and never merged into the next file (semantics D2); every random choice
comes from one generator seeded by (seed, task, pass) so a fixed seed gives byte-identical files (semantics D2); a line
longer than an example is cut into example-sized sentences and counted.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import numpy as np
import tensorflow as tf

from funnel_tfm import file_io
from funnel_tfm.data.data_fetch import split_sentences
from funnel_tfm.data.data_utils import CLS_SEGMENT_ID, SEGMENT_A_ID, SEGMENT_B_ID, meta_name, record_name
from funnel_tfm.data.tokenization import Tokenizer

INPUT_FORMATS = ("sentence_per_line", "doc_per_line")


class DataError(ValueError):
    """Input that cannot be used (names the file and line)."""


@dataclasses.dataclass
class Stats:
    files: int = 0
    empty_files: int = 0
    documents: int = 0
    short_documents_skipped: int = 0
    sentences: int = 0
    long_lines_split: int = 0
    invalid_lines_skipped: int = 0
    tokens: int = 0
    examples: int = 0
    record_files: int = 0
    seconds: float = 0.0

    def add(self, other: "Stats") -> None:
        for field in dataclasses.fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    def summary(self) -> str:
        rate = self.tokens / self.seconds if self.seconds else 0.0
        return (f"{self.files} files ({self.empty_files} empty, skipped), {self.documents} documents "
                f"({self.short_documents_skipped} empty/short skipped), {self.sentences} sentences "
                f"({self.long_lines_split} long lines split, {self.invalid_lines_skipped} invalid UTF-8 lines skipped), "
                f"{self.tokens} tokens, {self.examples} examples in {self.record_files} record files, "
                f"{self.seconds:.1f} s, {rate:,.0f} tokens/s")


# --------------------------------------------------------------------------------------------- reading
def _same_file(a: str, b: str) -> bool:
    if file_io.is_remote(a) or file_io.is_remote(b):
        return a == b
    return os.path.realpath(a) == os.path.realpath(b)


def input_files(pattern: str, exclude: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
    """(files, left out) that the glob(s) match, sorted. Left out, and named so: directories (`data/*` with a
    `data/old/` in it) and the files of `exclude` (the vocabulary: `--input_glob=*.txt` next to `vocab.txt`
    would read it as text). A FileNotFoundError when no file is left.

        input_files("corpus/*.txt,more/*.txt")            # (["corpus/a.txt", "more/b.txt"], [])
        input_files("*.txt", exclude=("vocab.txt",))      # (["a.txt"], ["vocab.txt (the vocabulary)"])
    """
    parts = [part.strip() for part in pattern.split(",") if part.strip()]
    found = {part: tf.io.gfile.glob(part) for part in parts}
    missing = [part for part in parts if not found[part]]
    if missing and len(missing) < len(parts):  # a typo in one glob of several would drop its files in silence
        raise FileNotFoundError(f"--input_glob={pattern!r}: {', '.join(repr(p) for p in missing)} matches no files")
    matches = sorted({f for part in parts for f in found[part]})
    files, left_out = [], []
    for path in matches:
        if tf.io.gfile.isdir(path):
            left_out.append(f"{path} (a directory)")
        elif any(_same_file(path, other) for other in exclude):
            left_out.append(f"{path} (the vocabulary)")
        else:
            files.append(path)
    if not files:
        only = f" (only {', '.join(left_out[:3])}{', ...' if len(left_out) > 3 else ''})" if left_out else ""
        raise FileNotFoundError(f"--input_glob={pattern!r} matches no files{only}")
    return files, left_out


def check_settings(seq_len: int, task: int = 0, num_task: int = 1, pass_id: int = 0, seed: int = 0) -> None:
    """A DataError naming the flag for settings no task can run with (before any file is read or written).

        check_settings(seq_len=3)   # DataError: --seq_len=3: ... at least 4
    """
    problems = []
    if seq_len < 4:
        problems.append(f"--seq_len={seq_len}: an example is [CLS] A [SEP] B [SEP], so at least 4")
    if num_task < 1:
        problems.append(f"--num_proc={num_task}: at least 1")
    elif not 0 <= task < num_task:
        problems.append(f"--proc_id={task}: must be in 0..{num_task - 1} for --num_proc={num_task}")
    for name, value in (("pass_id", pass_id), ("seed", seed)):
        if value < 0:
            problems.append(f"--{name}={value}: must not be negative")
    if problems:
        raise DataError("; ".join(problems))


def _decoded_lines(path: str, skip_invalid: bool, stats: Stats) -> list[str | None]:
    try:
        with file_io.open_file(path, "rb") as handle:
            raw = handle.read()
    except (OSError, tf.errors.OpError) as error:  # a directory, an unreadable file: name it, no traceback
        reason = getattr(error, "strerror", None) or str(error).splitlines()[0]
        raise DataError(f"{path}: cannot read it as a text file ({reason})") from None
    lines = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        try:
            lines.append(line.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError as error:
            if not skip_invalid:
                raise DataError(f"{path}:{number}: invalid UTF-8 at byte {error.start} of the line "
                                f"(pass --skip_invalid_lines to skip such lines)") from None
            stats.invalid_lines_skipped += 1
            lines.append(None)  # skipped: it neither adds a sentence nor ends a document
    return lines


def read_documents(path: str, tokenizer: Tokenizer, max_sentence_len: int, input_format: str = "sentence_per_line",
                   min_doc_len: int = 1, skip_invalid: bool = False,
                   stats: Stats | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Documents of one file as (token ids, sentence flags); flags alternate per sentence from True at the
    start of the file, as in the original."""
    stats = stats if stats is not None else Stats()
    if input_format not in INPUT_FORMATS:
        raise DataError(f"input format {input_format!r}; expected one of {', '.join(INPUT_FORMATS)}")
    lines = _decoded_lines(path, skip_invalid, stats)
    stats.files += 1
    if not any(line and line.strip() for line in lines):
        stats.empty_files += 1
        return []
    # Group into documents of sentences (strings), then tokenize all sentences of the file in one call.
    documents: list[list[str]] = []
    current: list[str] = []
    for line in lines:
        if line is None:
            continue
        if input_format == "doc_per_line":
            if line.strip():
                documents.append(split_sentences(line))
            continue
        if line.strip():
            current.append(line.strip())
        elif current:
            documents.append(current)
            current = []
    if current:
        documents.append(current)  # the last document of a file stays in this file
    sentences = [s for doc in documents for s in doc]
    encoded = iter(tokenizer.encode_batch(sentences))
    result, flag = [], True
    for doc in documents:
        ids, flags = [], []
        for _ in doc:
            tokens = next(encoded)
            if not tokens:
                continue
            chunks = [tokens[i:i + max_sentence_len] for i in range(0, len(tokens), max_sentence_len)]
            stats.long_lines_split += len(chunks) > 1
            for chunk in chunks:
                ids.extend(chunk)
                flags.extend([flag] * len(chunk))
                flag = not flag
                stats.sentences += 1
        if len(ids) >= max(min_doc_len, 1):
            result.append((np.array(ids, np.int32), np.array(flags, bool)))
            stats.documents += 1
            stats.tokens += len(ids)
        else:
            stats.short_documents_skipped += 1
    return result


def concatenate(documents: list[tuple[np.ndarray, np.ndarray]], rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray]:
    """Documents in a random order, flags inverted where needed so that every join is a sentence boundary."""
    if not documents:
        return np.zeros([0], np.int32), np.zeros([0], bool)
    ids, flags = [], []
    for index in rng.permutation(len(documents)):
        doc_ids, doc_flags = documents[index]
        if flags and doc_flags[0] == flags[-1][-1]:
            doc_flags = ~doc_flags
        ids.append(doc_ids)
        flags.append(doc_flags)
    return np.concatenate(ids), np.concatenate(flags)


# --------------------------------------------------------------------------------------------- packing
def split_a_and_b(flags: np.ndarray, begin: int, total: int, rng: np.random.Generator):
    """The original `_split_a_and_b` (semantics D3): returns (a_begin, a_end, b_begin, b_end, label, next_begin)."""
    n = len(flags)
    if begin + total >= n:
        return None
    cut_points, end = [], begin + 1
    while end < n:
        if flags[end] != flags[end - 1]:
            if end - begin >= total:
                break
            cut_points.append(end)
        end += 1
    a_begin = begin
    if not cut_points or rng.random() < 0.5:
        label = 0
        a_end = cut_points[rng.integers(len(cut_points))] if cut_points else end
        b_len = max(1, total - (a_end - a_begin))
        b_begin = int(rng.integers(0, n - b_len + 1))
        b_end = b_begin + b_len
        while b_begin > 0 and flags[b_begin - 1] == flags[b_begin]:
            b_begin -= 1
        while b_end < n and flags[b_end - 1] == flags[b_end]:
            b_end += 1
        next_begin = a_end
    else:
        label = 1
        a_end = cut_points[rng.integers(len(cut_points))]
        b_begin, b_end = a_end, end
        next_begin = end
    while (a_end - a_begin) + (b_end - b_begin) > total:
        if a_end - a_begin > b_end - b_begin:
            a_end -= 1
        elif rng.random() < 0.5:
            b_end -= 1
        else:
            b_begin += 1
    return a_begin, a_end, b_begin, b_end, label, next_begin


def pack_examples(ids: np.ndarray, flags: np.ndarray, seq_len: int, tokenizer: Tokenizer,
                  rng: np.random.Generator):
    """Yields dicts with `input`, `seg_id`, `boundary`, `label` (the original layout, semantics D3)."""
    total = seq_len - 3
    starts = tokenizer.start_id_table()
    begin = 0
    while begin + seq_len <= len(ids):
        split = split_a_and_b(flags, begin, total, rng)
        if split is None:
            break
        a_begin, a_end, b_begin, b_end, label, begin = split
        a, b = ids[a_begin:a_end], ids[b_begin:b_end]
        tokens = np.concatenate([[tokenizer.cls_id], a, [tokenizer.sep_id], b, [tokenizer.sep_id]]).astype(np.int64)
        seg = np.array([CLS_SEGMENT_ID] + [SEGMENT_A_ID] * (len(a) + 1) + [SEGMENT_B_ID] * (len(b) + 1), np.int64)
        boundary = np.concatenate([np.flatnonzero(starts[tokens]), [seq_len]]).astype(np.int64)
        yield {"input": tokens, "seg_id": seg, "boundary": boundary, "label": np.array([label], np.int64)}


def serialize(example: dict[str, np.ndarray]) -> bytes:
    feature = {k: tf.train.Feature(int64_list=tf.train.Int64List(value=v.tolist())) for k, v in example.items()}
    # deterministic=True: protobuf map order otherwise varies between processes (byte-identical output)
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString(deterministic=True)


# --------------------------------------------------------------------------------------------- writing
def remove_task_outputs(save_dir: str, split: str, pass_id: int, seq_len: int, uncased: bool, tasks: list[int],
                        num_task: int) -> None:
    """Deletes the record files and metas of `tasks` (of a run that failed in another task), metas first."""
    for task in tasks:
        for name in (meta_name(split, pass_id, seq_len, uncased, task, num_task),
                     record_name(split, pass_id, seq_len, uncased, task, num_task)):
            path = os.path.join(save_dir, name)
            if tf.io.gfile.exists(path):
                tf.io.gfile.remove(path)


def write_task_records(files: list[str], tokenizer: Tokenizer, save_dir: str, seq_len: int, task: int = 0,
                       num_task: int = 1, pass_id: int = 0, split: str = "train", seed: int = 0,
                       input_format: str = "sentence_per_line", min_doc_len: int = 1, skip_invalid: bool = False,
                       log=print) -> Stats:
    """Processes `files[task::num_task]` and writes one record file and its meta json.

    The record file is written under a temporary name and renamed, then the meta is written: a record file
    without its meta is incomplete, and an interrupted run leaves only a `.tmp-` file.
    """
    started = time.time()
    stats = Stats()
    check_settings(seq_len, task, num_task, pass_id, seed)
    tokenizer.require_special()
    documents = []
    my_files = files[task::num_task]
    for index, path in enumerate(my_files):
        documents += read_documents(path, tokenizer, seq_len - 3, input_format, min_doc_len, skip_invalid, stats)
        log(f"task {task}: file {index + 1}/{len(my_files)} {os.path.basename(path)}: {stats.documents} documents, "
            f"{stats.tokens} tokens, {time.time() - started:.1f} s")
    rng = np.random.default_rng([seed, task, pass_id])
    ids, flags = concatenate(documents, rng)
    record_path = os.path.join(save_dir, record_name(split, pass_id, seq_len, tokenizer.uncased, task, num_task))
    tf.io.gfile.makedirs(save_dir)
    temporary = file_io.temporary_sibling(record_path)
    try:
        with tf.io.TFRecordWriter(temporary) as writer:
            for example in pack_examples(ids, flags, seq_len, tokenizer, rng):
                writer.write(serialize(example))
                stats.examples += 1
        tf.io.gfile.rename(temporary, record_path, overwrite=True)
    finally:
        if tf.io.gfile.exists(temporary):
            tf.io.gfile.remove(temporary)
    meta = {"filenames": [os.path.basename(record_path)], "num_example": stats.examples}
    file_io.atomic_write_text(os.path.join(save_dir, meta_name(split, pass_id, seq_len, tokenizer.uncased, task,
                                                               num_task)), json.dumps(meta) + "\n")
    stats.record_files = 1
    stats.seconds = time.time() - started
    return stats
