"""SQuAD-format files -> questions -> sliding-window features, as the original's squad.py (spec §6.3.1-§6.3.3).

    squad = read_squad("train-v2.0.json", is_training=True, version="v2")    # .examples, .contexts, .counts
    contexts = tokenize_contexts(squad.contexts, tokenizer)                  # token ids + character offsets
    features, counts = build_features(squad, contexts, tokenizer, max_seq_length=512, max_query_length=64,
                                      doc_stride=128, is_training=True)
    features[0].input_ids        # [CLS] question [SEP] window of the paragraph [SEP] pad...

Differences from the original, on purpose:
- Characters are aligned to tokens through the tokenizer's own offsets (`Tokenizer.encode_with_offsets`), not by
  the original's banded LCS between the raw text and the joined pieces, so accents, punctuation, odd white space
  and CJK map exactly and no example is dropped with "MISMATCH DETECTED".
- A training answer whose `answer_start` does not point at its text is moved to the occurrence of its text nearest
  to `answer_start` and counted (real SQuAD files hold offsets off by a character or two; the original trusted the
  offset); an answer its paragraph does not hold is an error naming the file and the question; a v1.1 training
  question without answers is an error; a question with several
  answers in a training file trains on the first and is counted in the report (the original refused such files).

Layout of a feature (the original's, Q25): `[CLS] query [SEP] paragraph-window [SEP] pad`, segments CLS = 2,
query + its SEP = 1, window + final SEP = 0; `p_mask` is 1 where no answer can be (query, both SEPs, padding) and
0 at CLS (the "no answer" position) and on the window. A window that does not contain the whole answer, or an
unanswerable question, is labelled start = end = 0 and `is_impossible` = 1; windows are never dropped.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Sequence

import numpy as np

from funnel_tfm import file_io
from funnel_tfm.data import data_utils
from funnel_tfm.data.tokenization import Tokenizer

FIRST_UNIQUE_ID = 1000000000  # the original's
_TOKENIZE_BATCH = 256  # paragraphs per tokenizer call


class SquadDataError(ValueError):
    """A SQuAD file that cannot be used: names the file, the question id and what was expected."""


@dataclasses.dataclass(frozen=True)
class SquadExample:
    qas_id: str
    question: str
    context_index: int            # into the paragraph list returned beside the examples
    answer_text: str = ""
    answer_start: int = -1        # character offset in the paragraph; -1: unanswerable or not known (eval)
    is_impossible: bool = False


@dataclasses.dataclass
class SquadFile:
    """The questions of a file, the paragraphs they ask about, and what reading them counted."""

    examples: list[SquadExample]
    contexts: list[str]
    counts: dict[str, int]
    duplicate_ids: tuple[str, ...] = ()  # "where: id 'x' (first at ...)" of each question whose id came before


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise SquadDataError(message)


def read_squad(path: str, is_training: bool, version: str = "v2", limit: int | None = None) -> SquadFile:
    """Questions of a SQuAD v1.1 / v2.0 file (`data -> paragraphs -> qas`), in file order.

    Training (`is_training`) keeps the answer: v2 reads `is_impossible`; an answerable question needs an answer
    whose `answer_start` points at its `text`. Evaluation keeps only ids and questions (the scorer reads the answers
    from the file itself). `limit` keeps the first questions only (`--debug_mode`: 100)."""
    try:
        with file_io.open_file(path, "rb") as handle:
            data = json.loads(handle.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SquadDataError(f"{path}: not a SQuAD json file ({error})") from None
    except FileNotFoundError:
        raise SquadDataError(f"{path}: no such file") from None
    _require(isinstance(data, dict) and isinstance(data.get("data"), list),
             f"{path}: expected an object with a \"data\" list of articles")
    examples, contexts, first_seen, duplicates = [], [], {}, []
    counts = {"questions": 0, "unanswerable": 0, "several_answers_first_used": 0}
    for a, article in enumerate(data["data"]):
        _require(isinstance(article, dict) and isinstance(article.get("paragraphs"), list),
                 f"{path}: data[{a}]: expected an object with a \"paragraphs\" list")
        for p, paragraph in enumerate(article["paragraphs"]):
            where = f"{path}: data[{a}].paragraphs[{p}]"
            _require(isinstance(paragraph, dict) and isinstance(paragraph.get("context"), str)
                     and isinstance(paragraph.get("qas"), list), f"{where}: expected \"context\" text and a \"qas\" list")
            context = paragraph["context"]
            contexts.append(context)
            for q, qa in enumerate(paragraph["qas"]):
                _require(isinstance(qa, dict) and isinstance(qa.get("id"), str) and isinstance(qa.get("question"), str),
                         f"{where}.qas[{q}]: expected an \"id\" and a \"question\"")
                # Predictions are keyed by id, so of questions that share an id only one answer is kept (and the
                # official scoring counts the id once): counted, and the job warns with the count and the first.
                seen = first_seen.setdefault(qa["id"], f"data[{a}].paragraphs[{p}].qas[{q}]")
                if seen != f"data[{a}].paragraphs[{p}].qas[{q}]":
                    duplicates.append(f"data[{a}].paragraphs[{p}].qas[{q}]: id {qa['id']!r} (first at {seen})")
                examples.append(_example(qa, context, len(contexts) - 1, is_training, version, path, counts))
                if limit is not None and len(examples) >= limit:
                    return SquadFile(examples, contexts, counts, tuple(duplicates))
    _require(bool(examples), f"{path}: no questions found")
    return SquadFile(examples, contexts, counts, tuple(duplicates))


def _example(qa: dict, context: str, context_index: int, is_training: bool, version: str, path: str,
             counts: dict[str, int]) -> SquadExample:
    counts["questions"] += 1
    qid = qa["id"]
    if not is_training:
        return SquadExample(qid, qa["question"], context_index)
    impossible = bool(qa.get("is_impossible", False)) if version == "v2" else False
    if impossible:
        counts["unanswerable"] += 1
        return SquadExample(qid, qa["question"], context_index, is_impossible=True)
    answers = qa.get("answers")
    if not answers:
        raise SquadDataError(f"{path}: question {qid}: no answers (a {version} training question needs one"
                             + ("; is this a v2.0 file? pass --train_version=v2)" if version == "v1" else
                                " unless \"is_impossible\" is true)"))
    if len(answers) > 1:
        counts["several_answers_first_used"] += 1
    answer = answers[0]
    _require(isinstance(answer, dict) and isinstance(answer.get("text"), str)
             and isinstance(answer.get("answer_start"), int),
             f"{path}: question {qid}: expected answers of {{\"text\", \"answer_start\"}}")
    text, start = answer["text"], answer["answer_start"]
    found = context[start:start + len(text)] if start >= 0 else ""
    if found != text and text.strip():
        corrected = nearest_occurrence(context, text, start)
        if corrected is not None:
            counts["answer_start_corrected"] = counts.get("answer_start_corrected", 0) + 1
            return SquadExample(qid, qa["question"], context_index, text, corrected)
    if found != text or not text.strip():
        raise SquadDataError(f"{path}: question {qid}: answer_start {start} points at {found!r}, expected the answer "
                             f"text {text!r}" + (" (which the context does not hold)" if text.strip() else ""))
    return SquadExample(qid, qa["question"], context_index, text, start)


def nearest_occurrence(context: str, text: str, start: int) -> int | None:
    """Where `text` occurs in `context` nearest to `start` (the earlier one on a tie), None if nowhere.

        nearest_occurrence("a b a b", "b", 4)      # 3

    Real SQuAD files hold answers whose `answer_start` is off by a character or two (offsets counted in UTF-16
    by the annotation tool, before emoji and other astral characters); their text is still in the paragraph."""
    best, at = None, context.find(text)
    while at >= 0:
        if best is None or abs(at - start) < abs(best - start):
            best = at
        at = context.find(text, at + 1)
    return best


# ----------------------------------------------------------------------------------------------- features
@dataclasses.dataclass(frozen=True)
class ContextTokens:
    """A paragraph's token ids and the character span [start, end) of each token in the paragraph."""

    ids: list[int]
    starts: list[int]
    ends: list[int]


@dataclasses.dataclass
class SquadFeature:
    """One window of one question: the model's inputs, training labels, and what post-processing needs."""

    unique_id: int
    example_index: int            # the question's index in the file's question list
    window_start: int             # first paragraph token of the window
    window_length: int
    doc_offset: int               # position of the window's first token in the sequence (len(query) + 2)
    max_context: list[bool]       # per window token: this window is its best context
    input_ids: list[int]
    segment_ids: list[int]
    padding_mask: list[int]       # 1 = real token
    p_mask: list[float]
    start_position: int = 0
    end_position: int = 0
    is_impossible: bool = True


def tokenize_contexts(contexts: Sequence[str], tokenizer: Tokenizer,
                      needed: set[int] | None = None) -> list[ContextTokens | None]:
    """Every paragraph (or those whose index is in `needed`; None for the others) tokenized once: questions about
    the same paragraph share it."""
    wanted = [i for i in range(len(contexts)) if needed is None or i in needed]
    out: list[ContextTokens | None] = [None] * len(contexts)
    for begin in range(0, len(wanted), _TOKENIZE_BATCH):
        chunk = wanted[begin:begin + _TOKENIZE_BATCH]
        for i, encoded in zip(chunk, tokenizer.encode_batch_with_offsets([contexts[i] for i in chunk])):
            out[i] = ContextTokens(*encoded)
    return out


def answer_token_span(tokens: ContextTokens, char_start: int, char_end: int) -> tuple[int, int] | None:
    """(first, last) tokens overlapping the characters [char_start, char_end), None if no token does."""
    first = next((t for t, end in enumerate(tokens.ends) if end > char_start), None)
    last = next((t for t in range(len(tokens.starts) - 1, -1, -1) if tokens.starts[t] < char_end), None)
    if first is None or last is None or first > last:
        return None
    return first, last


def doc_windows(num_tokens: int, max_tokens: int, doc_stride: int) -> list[tuple[int, int]]:
    """(start, length) windows over `num_tokens` paragraph tokens: each at most `max_tokens` long, the next one
    `min(length, doc_stride)` further on, the last one reaching the end (the original's loop).

    Each step moves the start by at least 1 (both sizes are checked to be >= 1), so there are at most
    `num_tokens` windows; a stride of 0 or less looped forever (and grew memory) in the original."""
    if doc_stride < 1 or max_tokens < 1:
        raise ValueError(f"doc_stride={doc_stride}, room for paragraph tokens {max_tokens}: both must be at least 1 "
                         f"(a larger --max_seq_length or a smaller --max_query_length makes room)")
    windows, start = [], 0
    while True:
        length = min(num_tokens - start, max_tokens)
        windows.append((start, length))
        if start + length >= num_tokens:
            return windows
        start += min(length, doc_stride)


def best_context_windows(windows: Sequence[tuple[int, int]]) -> np.ndarray:
    """For each paragraph token, the window where it has the most context on both sides
    (`min(left, right) + 0.01 * length`; the first window on ties), one pass over the windows."""
    end = max(start + length for start, length in windows)
    best, best_score = np.full(end, -1), np.full(end, -np.inf)
    for index, (start, length) in enumerate(windows):
        positions = np.arange(start, start + length)
        score = np.minimum(positions - start, start + length - 1 - positions) + 0.01 * length
        better = score > best_score[positions]  # strictly: an earlier window keeps a tie
        best[positions[better]], best_score[positions[better]] = index, score[better]
    return best


def max_context_flags(windows: Sequence[tuple[int, int]], which: int,
                      best: np.ndarray | None = None) -> list[bool]:
    """For each token of window `which`: is this its best-context window (`best_context_windows`)?"""
    best = best_context_windows(windows) if best is None else best
    start, length = windows[which]
    return (best[start:start + length] == which).tolist()


def _window_feature(query: list[int], tokens: ContextTokens, window: tuple[int, int], tokenizer: Tokenizer,
                    max_seq_length: int) -> dict[str, list]:
    start, length = window
    ids = [tokenizer.cls_id] + query + [tokenizer.sep_id] + tokens.ids[start:start + length] + [tokenizer.sep_id]
    segments = ([data_utils.CLS_SEGMENT_ID] + [data_utils.SEGMENT_B_ID] * (len(query) + 1)
                + [data_utils.SEGMENT_A_ID] * (length + 1))
    p_mask = [0.0] + [1.0] * (len(query) + 1) + [0.0] * length + [1.0]
    padding = max_seq_length - len(ids)
    return {"input_ids": ids + [tokenizer.pad_id] * padding,
            "segment_ids": segments + [data_utils.SEGMENT_A_ID] * padding,
            "padding_mask": [1] * len(ids) + [0] * padding, "p_mask": p_mask + [1.0] * padding}


def build_features(squad: SquadFile, contexts: Sequence[ContextTokens | None], tokenizer: Tokenizer,
                   max_seq_length: int = 512, max_query_length: int = 64, doc_stride: int = 128,
                   is_training: bool = False) -> tuple[list[SquadFeature], dict[str, int]]:
    """The windows of every question of `squad` (training: labelled), `contexts` its tokenized paragraphs
    (`tokenize_contexts`), and counts for the summary: features, answers that no window holds whole (split
    across windows, or beyond every window when the paragraph is cut)."""
    queries = tokenizer.encode_batch([e.question for e in squad.examples])
    features: list[SquadFeature] = []
    counts = {"features": 0, "answers_outside_windows": 0, "answers_split_across_windows": 0}
    for index, example in enumerate(squad.examples):
        query = queries[index][:max_query_length]
        tokens = contexts[example.context_index]
        room = max_seq_length - len(query) - 3
        if room < 1:
            raise ValueError(f"--max_seq_length={max_seq_length} leaves no room for a paragraph after question "
                             f"{example.qas_id}'s {len(query)} tokens and three special ones (lower "
                             f"--max_query_length={max_query_length})")
        windows = doc_windows(len(tokens.ids), room, doc_stride)
        span = None
        if is_training and not example.is_impossible:
            span = answer_token_span(tokens, example.answer_start, example.answer_start + len(example.answer_text))
            if span is None:  # only white space or nothing tokenizable under the answer
                raise SquadDataError(f"question {example.qas_id}: no token covers the answer "
                                     f"{example.answer_text!r}")
        inside_some = False
        best = best_context_windows(windows)
        for which, window in enumerate(windows):
            doc_offset = len(query) + 2
            feature = SquadFeature(FIRST_UNIQUE_ID + len(features), index, window[0], window[1], doc_offset,
                                   max_context_flags(windows, which, best),
                                   **_window_feature(query, tokens, window, tokenizer, max_seq_length))
            if span is not None and window[0] <= span[0] and span[1] < window[0] + window[1]:
                feature.start_position = span[0] - window[0] + doc_offset
                feature.end_position = span[1] - window[0] + doc_offset
                feature.is_impossible = False
                inside_some = True
            features.append(feature)
        if span is not None and not inside_some:
            within = any(w[0] <= span[0] < w[0] + w[1] or w[0] <= span[1] < w[0] + w[1] for w in windows)
            counts["answers_split_across_windows" if within else "answers_outside_windows"] += 1
    counts["features"] = len(features)
    return features, counts


def record_arrays(features: Sequence[SquadFeature], is_training: bool) -> dict[str, np.ndarray]:
    """The TFRecord fields of `features`, [n, ...] (the original's names: `input_mask` 1 = padding)."""
    arrays = {
        "unique_ids": np.array([[f.unique_id] for f in features], np.int64),
        "input_ids": np.array([f.input_ids for f in features], np.int64),
        "input_mask": 1.0 - np.array([f.padding_mask for f in features], np.float32),
        "p_mask": np.array([f.p_mask for f in features], np.float32),
        "segment_ids": np.array([f.segment_ids for f in features], np.int64),
        "cls_index": np.zeros((len(features), 1), np.int64),
    }
    if is_training:
        arrays.update(start_positions=np.array([[f.start_position] for f in features], np.int64),
                      end_positions=np.array([[f.end_position] for f in features], np.int64),
                      is_impossible=np.array([[float(f.is_impossible)] for f in features], np.float32))
    return arrays


def feature_index(features: Sequence[SquadFeature], contexts: Sequence[ContextTokens | None],
                  examples: Sequence[SquadExample]) -> dict[str, Any]:
    """What post-processing needs of eval features, as json: per feature its question, window and max-context
    flags; per paragraph the character span of each token."""
    return {
        "questions": [{"id": e.qas_id, "context": e.context_index} for e in examples],
        "contexts": [{"starts": c.starts, "ends": c.ends} if c is not None else None for c in contexts],
        "features": [{"example_index": f.example_index, "window_start": f.window_start,
                      "window_length": f.window_length, "doc_offset": f.doc_offset,
                      "max_context": "".join("1" if flag else "0" for flag in f.max_context)} for f in features],
    }


def describe_counts(counts: dict[str, int]) -> str:
    """`1,234 features, 3 answers outside windows` (zero counts left out)."""
    return ", ".join(f"{value:,} {name.replace('_', ' ')}" for name, value in counts.items() if value)
