"""The raw-text serving signature of a SQuAD model: question + context in, the answer text, its character offsets
and the no-answer probability out, as `python -m funnel_tfm.squad --do_predict` answers.

    fn, signature = squad_endpoint(model, tokenizer, record)
    fn(question=tf.constant(["Who won?"]), context=tf.constant(["The Broncos won the game."]))
    # {"answer": [b"The Broncos"], "answer_start": [0], "answer_end": [11], "no_answer_probability": [0.03],
    #  "null_odds": [-3.4], "answer_log_prob": [-0.4], "windows": [1], "truncated": [False]}

**Every window, in-graph, as the job.** The context is tokenized with character offsets (`text_offsets.py`, the
job's `encode_batch_with_offsets` for WordPiece and SentencePiece), the question cut to `max_query_length`
tokens, and the context cut into the job's windows (`squad_data.doc_windows`: `max_seq_length - 3 - question`
tokens each, `doc_stride` apart, the record's or squad.py's default 128), each packed `[CLS] query [SEP] window
[SEP]` (segments 2 / 1 / 0, `p_mask`, `cls_index` 0). All windows of the batch go through the model at once.
Each token counts at its best-context window only (`squad_data.best_context_windows`: most context on the
nearer side plus 0.01 x window length, the first window on ties). The answer is `make_predictions`' first
candidate: every (start, end) beam of every window with both ends in the window's context, the start at its
best-context window, end >= start and at most `max_answer_length` tokens, ranked by start + end log-probability
(float64), the first of equals kept (window order, then beam order); its text is the context from the first
token's first character to the last token's last one, stripped as `str.strip()`, and `answer_start` /
`answer_end` are that stripped text's characters. No legal beam: "" and the job's -2e6 log-probability.
`null_odds` is the job's `null_odds.json`: the smallest `cls_logits` over the question's windows (less the best
answer's log-probability without the answer class); `no_answer_probability` is its sigmoid (with the answer class)
or exp of the smallest `cls_logits` (log p(start = [CLS])). `windows` counts the windows; `truncated` is kept for
callers of the one-window signature and is always false (no context is cut).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import keras
import tensorflow as tf

from funnel_tfm.data import data_utils
from funnel_tfm.data.tokenization import Tokenizer
from funnel_tfm.serving.text_offsets import strip_like_python, tokenize_with_char_offsets

QUESTION = tf.TensorSpec([None], tf.string, name="question")
CONTEXT = tf.TensorSpec([None], tf.string, name="context")
# squad.py's defaults, for records written before the field was recorded
DEFAULT_MAX_ANSWER_LENGTH = 64
DEFAULT_MAX_QUERY_LENGTH = 64
DEFAULT_DOC_STRIDE = 128
NO_CANDIDATE_LOG_PROB = -2e6  # the job's stand-in answer: start and end log-probability -1e6 each
OUTPUTS = ["answer", "answer_start", "answer_end", "answer_log_prob", "null_odds", "no_answer_probability",
           "windows", "truncated"]
_ILLEGAL = -1e30  # the score of a beam that is no candidate


@dataclasses.dataclass
class Windows:
    """The windows of a batch of questions, flattened to [W] (W = the sum of `count`)."""

    row: tf.Tensor          # [W] the question of each window
    start: tf.Tensor        # [W] its first context token
    length: tf.Tensor       # [W] its context tokens
    doc_offset: tf.Tensor   # [W] where its context starts in the sequence (question + 2)
    max_context: tf.Tensor  # bool [W, L]: the window is the token's best context (False past `length`)
    count: tf.Tensor        # [B] windows per question
    features: dict[str, tf.Tensor]  # the model's inputs, [W, seq_len]


def plan_windows(num_tokens: tf.Tensor, room: tf.Tensor, doc_stride: int) -> tuple[tf.Tensor, ...]:
    """(row, start, length [W], count [B]) of `squad_data.doc_windows(num_tokens[b], room[b], doc_stride)`:
    windows of `room` tokens, `min(room, doc_stride)` apart, the last one reaching the end (one for no tokens)."""
    step = tf.minimum(room, doc_stride)
    count = 1 + (tf.maximum(num_tokens - room, 0) + step - 1) // step
    row = tf.repeat(tf.range(tf.size(count)), count)
    start = tf.ragged.range(count).flat_values * tf.gather(step, row)
    return row, start, tf.minimum(tf.gather(num_tokens, row) - start, tf.gather(room, row)), count


def max_context_flags(row: tf.Tensor, start: tf.Tensor, length: tf.Tensor, count: tf.Tensor, num_tokens: tf.Tensor,
                      room: tf.Tensor, doc_stride: int) -> tf.Tensor:
    """bool [W, L]: each window token's best-context window is this one (`squad_data.best_context_windows`,
    in float64 as numpy scores it). Only windows `window - k`, k < ceil(room / step), can hold a token as well."""
    step = tf.minimum(room, doc_stride)
    row_step, row_room, row_tokens = tf.gather(step, row), tf.gather(room, row), tf.gather(num_tokens, row)
    offsets = tf.range(tf.reduce_max(tf.concat([length, [0]], 0)))
    position = start[:, None] + offsets[None]  # [W, L] context token
    reach = tf.reduce_max(tf.concat([(room + step - 1) // step, [1]], 0))
    other = position[:, :, None] // row_step[:, None, None] - tf.range(reach)[None, None]  # [W, L, K] windows
    other_start = other * row_step[:, None, None]
    other_length = tf.minimum(row_tokens[:, None, None] - other_start, row_room[:, None, None])
    covers = ((other >= 0) & (other < tf.gather(count, row)[:, None, None])
              & (position[:, :, None] < other_start + other_length))
    nearer = tf.minimum(position[:, :, None] - other_start, other_start + other_length - 1 - position[:, :, None])
    score = tf.where(covers, tf.cast(nearer, tf.float64) + 0.01 * tf.cast(other_length, tf.float64), -float("inf"))
    best = tf.reduce_min(tf.where(tf.equal(score, tf.reduce_max(score, -1, keepdims=True)), other, tf.int32.max), -1)
    which = tf.cast(start // row_step, tf.int32)
    return tf.equal(best, which[:, None]) & (offsets[None] < length[:, None])


def pack_windows(tokenizer: Tokenizer, query: tf.RaggedTensor, context: tf.RaggedTensor, seq_len: int,
                 max_query: int, doc_stride: int) -> Windows:
    """Every window of every question, packed in the job's layout (`squad_data._window_feature`)."""
    query = query[:, :max_query]
    query_length = tf.cast(query.row_lengths(), tf.int32)
    room = tf.maximum(seq_len - 3 - query_length, 1)  # < 1 stops the call (squad_endpoint's assertion)
    num_tokens = tf.cast(context.row_lengths(), tf.int32)
    row, start, length, count = plan_windows(num_tokens, room, doc_stride)
    first = tf.gather(tf.cast(context.row_splits, tf.int32), row) + start
    window = tf.gather(context.flat_values, tf.ragged.range(first, first + length))  # [W, (length)]
    query = tf.gather(query, row)
    cls, sep = tf.fill([tf.size(row), 1], tokenizer.cls_id), tf.fill([tf.size(row), 1], tokenizer.sep_id)
    pieces = [cls, query, sep, window, sep]
    segments = [data_utils.CLS_SEGMENT_ID, data_utils.SEGMENT_B_ID, data_utils.SEGMENT_B_ID, data_utils.SEGMENT_A_ID,
                data_utils.SEGMENT_A_ID]
    no_answer_here = [0.0, 1.0, 1.0, 0.0, 1.0]  # p_mask: 1 where no answer can be
    token_ids = tf.concat(pieces, axis=1)
    shape = [None, seq_len]
    features = {
        "token_ids": token_ids.to_tensor(tokenizer.pad_id, shape=shape),
        "segment_ids": tf.concat([tf.ones_like(p) * s for p, s in zip(pieces, segments)], 1).to_tensor(
            data_utils.SEGMENT_A_ID, shape=shape),
        "padding_mask": tf.ones_like(token_ids).to_tensor(0, shape=shape),
        "p_mask": tf.concat([tf.cast(tf.ones_like(p), tf.float32) * m for p, m in zip(pieces, no_answer_here)], 1
                            ).to_tensor(1.0, shape=shape),
        "cls_index": tf.zeros_like(row)}
    flags = max_context_flags(row, start, length, count, num_tokens, room, doc_stride)
    return Windows(row, start, length, tf.gather(query_length, row) + 2, flags, count, features)


def best_span(beams: dict[str, tf.Tensor], offset: tf.Tensor, length: tf.Tensor, max_answer_length: int,
              conditional_end: bool, max_context: tf.Tensor | None = None) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(start, end window token, float64 score) of each window's best candidate beam (`_candidates` of
    `make_predictions`), the first of equals; start -1 and score -1e30 where none is a candidate. `max_context`
    (bool [W, L], `max_context_flags`): None when every window token is at its best context (one window)."""
    starts = tf.cast(beams["start_top_index"], tf.int32)  # [W, K]
    ends = tf.cast(beams["end_top_index"], tf.int32)  # [W, K * J] (conditional end) or [W, J]
    k = tf.shape(starts)[1]
    j = tf.shape(ends)[1] // k if conditional_end else tf.shape(ends)[1]
    start = tf.repeat(starts, j, axis=1)  # [W, K * J], in the job's (start, end) order
    # float64 sums, as the job adds Python floats: a near tie ranks the same way
    start_lp = tf.repeat(tf.cast(beams["start_top_log_probs"], tf.float64), j, axis=1)
    end, end_lp = ends, tf.cast(beams["end_top_log_probs"], tf.float64)
    if not conditional_end:
        end, end_lp = tf.tile(ends, [1, k]), tf.tile(end_lp, [1, k])
    s, e = start - offset[:, None], end - offset[:, None]
    at_best = True
    if max_context is not None:
        flags = tf.pad(max_context, [[0, 0], [0, 1]])  # a column to gather from when a window has no tokens
        at_best = tf.gather(flags, tf.clip_by_value(s, 0, tf.shape(flags)[1] - 1), batch_dims=1)
    legal = ((s >= 0) & (s < length[:, None]) & (e >= 0) & (e < length[:, None]) & (e >= s)
             & (e - s + 1 <= max_answer_length) & at_best)
    score = tf.where(legal, start_lp + end_lp, _ILLEGAL)
    best = _first_max(score)
    found = tf.reduce_any(legal, axis=1)
    pick = lambda x: tf.gather(x, best, batch_dims=1)  # noqa: E731
    return tf.where(found, pick(s), -1), tf.where(found, pick(e), -1), tf.where(found, pick(score), _ILLEGAL)


def _first_max(score: tf.Tensor) -> tf.Tensor:
    """[N, M] -> [N]: the first column holding the row's maximum (the job's stable sort keeps the first)."""
    columns = tf.range(tf.shape(score)[1])[None]
    return tf.reduce_min(tf.where(tf.equal(score, tf.reduce_max(score, 1, keepdims=True)), columns, tf.int32.max), 1)


def best_answer(windows: Windows, start: tf.Tensor, end: tf.Tensor, score: tf.Tensor, batch: tf.Tensor
                ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(first, last context token [B], -1 for no answer; float64 log-probability [B]) of each question's best
    candidate over its windows (window order breaks ties)."""
    row_best = tf.math.unsorted_segment_max(score, windows.row, batch)
    index = tf.range(tf.size(windows.row))
    pick = tf.math.unsorted_segment_min(tf.where(tf.equal(score, tf.gather(row_best, windows.row)), index,
                                                 tf.int32.max), windows.row, batch)
    found = tf.gather(start, pick) >= 0
    first = tf.gather(windows.start, pick)
    return (tf.where(found, first + tf.gather(start, pick), -1), tf.where(found, first + tf.gather(end, pick), -1),
            tf.where(found, tf.gather(score, pick), NO_CANDIDATE_LOG_PROB))


BEAMS = {"start_top_index": tf.int32, "start_top_log_probs": tf.float32, "end_top_index": tf.int32,
         "end_top_log_probs": tf.float32, "cls_logits": tf.float32}


def answer_text(context: tf.Tensor, char_start: tf.RaggedTensor, char_end: tf.RaggedTensor, first: tf.Tensor,
                last: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(text, first character, end character) of context tokens [first, last], stripped as the job strips it;
    "" at 0 where `first` is -1."""
    found = first >= 0
    pad = lambda offsets: tf.pad(offsets.to_tensor(0), [[0, 0], [0, 1]])  # noqa: E731  (no tokens: a column)
    begin = tf.where(found, tf.gather(pad(char_start), tf.maximum(first, 0), batch_dims=1), 0)
    finish = tf.where(found, tf.gather(pad(char_end), tf.maximum(last, 0), batch_dims=1), 0)
    text, lead, trail = strip_like_python(tf.strings.substr(context, begin, finish - begin, unit="UTF8_CHAR"))
    return text, tf.where(found, begin + lead, 0), tf.where(found, finish - trail, 0)


def squad_endpoint(model: keras.Model, tokenizer: Tokenizer, record: dict[str, Any]
                   ) -> tuple[Callable, list[tf.TensorSpec]]:
    """(function, input signature): `question` [B], `context` [B] (see the module docstring)."""
    seq_len = record["max_seq_length"]
    max_query = record.get("max_query_length", DEFAULT_MAX_QUERY_LENGTH)
    doc_stride = record.get("doc_stride", DEFAULT_DOC_STRIDE)
    max_answer = record.get("max_answer_length", DEFAULT_MAX_ANSWER_LENGTH)
    conditional_end, use_answer_class = record.get("conditional_end", True), record.get("use_answer_class", True)

    def serve(question: tf.Tensor, context: tf.Tensor) -> dict[str, tf.Tensor]:
        query = tf.cast(tokenizer.tokenize(question), tf.int32)
        ids, char_start, char_end = tokenize_with_char_offsets(tokenizer, context)
        if seq_len - 3 - max_query < 1:  # the job stops at such a question; so does serving
            tf.debugging.assert_greater(seq_len - 3 - tf.minimum(query.row_lengths(), max_query), 0, message=(
                f"max_seq_length={seq_len} leaves no room for a context after the question's tokens and three "
                f"special ones (the run's max_query_length is {max_query})"))
        windows = pack_windows(tokenizer, query, ids, seq_len, max_query, doc_stride)
        outputs = model(windows.features, training=False)
        beams = {name: tf.cast(outputs[name], dtype) for name, dtype in BEAMS.items()}
        start, end, score = best_span(beams, windows.doc_offset, windows.length, max_answer, conditional_end,
                                      windows.max_context)
        batch = tf.size(windows.count)
        first, last, log_prob = best_answer(windows, start, end, score, batch)
        answer, begin, finish = answer_text(context, char_start, char_end, first, last)
        score_null = tf.math.unsorted_segment_min(beams["cls_logits"], windows.row, batch)
        if use_answer_class:  # the answer-class logit of "no answer"
            null_odds, no_answer = score_null, tf.sigmoid(score_null)
        else:  # cls_logits is log p(start = [CLS]); the job's odds subtract the best answer's log-probability
            null_odds, no_answer = tf.cast(tf.cast(score_null, tf.float64) - log_prob, tf.float32), tf.exp(score_null)
        return {"answer": answer, "answer_start": begin, "answer_end": finish,
                "answer_log_prob": tf.cast(log_prob, tf.float32), "null_odds": null_odds,
                "no_answer_probability": no_answer, "windows": windows.count,
                "truncated": tf.zeros_like(windows.count, tf.bool)}

    return serve, [QUESTION, CONTEXT]
