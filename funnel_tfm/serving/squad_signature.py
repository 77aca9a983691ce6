"""The raw-text serving signature of a SQuAD model: question + context in, the answer text, its character offsets
and the no-answer probability out.

    fn, signature = squad_endpoint(model, tokenizer, record)
    fn(question=tf.constant(["Who won?"]), context=tf.constant(["The Broncos won the game."]))
    # {"answer": [b"The Broncos"], "answer_start": [0], "answer_end": [11], "no_answer_probability": [0.03],
    #  "null_odds": [-3.4], "answer_log_prob": [-0.4], "truncated": [False]}

**One window, in-graph.** The job slides windows over a long context and picks each token's best-context window
(`tasks/squad_postprocess.py`); serving packs the first window only: `[CLS] query [SEP] context [SEP]` with the
query cut to `max_query_length` tokens and the context to the room left, in the job's layout (segments 2 / 1 / 0,
`p_mask`, `cls_index` 0). For a context that fits (`truncated` false) this is the job's single feature, and the
answer rule below is `make_predictions` on it: every (start, end) beam with both ends in the context, end >= start
and at most `max_answer_length` tokens, ranked by start + end log-probability, the first of equals kept; the text
is the context between the first token's first character and the last token's last one; no legal beam gives "".
`null_odds` is the answer-class logit (the job's `null_odds.json`), `no_answer_probability` its sigmoid. A longer
context is answered from its first window only (`truncated` true): use the job or batch the windows yourself.

Offsets in-graph: each character is normalised on its own (the tokenizer's normaliser is per character, as
`tokenization.normalise_with_sources` uses it), so the tokenizer's byte offsets in the normalised text map back to
the character each byte came from. WordPiece vocabularies only.
"""

from __future__ import annotations

from typing import Any, Callable

import keras
import tensorflow as tf

from funnel_tfm.data import data_utils
from funnel_tfm.data.tokenization import Tokenizer

QUESTION = tf.TensorSpec([None], tf.string, name="question")
CONTEXT = tf.TensorSpec([None], tf.string, name="context")
DEFAULT_MAX_ANSWER_LENGTH = 64  # squad.py's --max_answer_length, for records written before it was recorded
_NO_CANDIDATE = -1e30


def tokenize_with_char_offsets(tokenizer: Tokenizer, text: tf.Tensor) -> tuple[tf.RaggedTensor, ...]:
    """Strings [B] -> (ids, first character, end character (exclusive)), ragged [B, (T)], in characters of `text`."""
    chars = tf.strings.unicode_split(text, "UTF-8")  # [B, (C)]
    normalised = chars.with_flat_values(tokenizer.normalize(chars.flat_values))
    ids, start_bytes, end_bytes = tokenizer.trackables()["wordpiece"].tokenize_with_offsets(
        tf.strings.reduce_join(normalised, axis=1))
    # End byte (in the normalised text) of each source character's output; a dropped character ends where the
    # previous one did, so it is never found.
    lengths = normalised.with_flat_values(tf.strings.length(normalised.flat_values, unit="BYTE"))
    char_end_bytes = tf.math.cumsum(lengths.to_tensor(0), axis=1)
    padded_ends = tf.where(tf.sequence_mask(lengths.row_lengths(), tf.shape(char_end_bytes)[1]), char_end_bytes,
                           tf.int32.max)
    first = tf.searchsorted(padded_ends, tf.cast(start_bytes.to_tensor(0), tf.int32), side="right")
    last = tf.searchsorted(padded_ends, tf.cast(end_bytes.to_tensor(1), tf.int32) - 1, side="right")
    mask = tf.sequence_mask(ids.row_lengths(), tf.shape(first)[1])
    return (tf.cast(ids, tf.int32), tf.ragged.boolean_mask(tf.cast(first, tf.int32), mask),
            tf.ragged.boolean_mask(tf.cast(last, tf.int32) + 1, mask))


def _keep(ragged: tf.RaggedTensor, counts: tf.Tensor) -> tf.RaggedTensor:
    return tf.ragged.boolean_mask(ragged, tf.ragged.range(ragged.row_lengths()) < tf.expand_dims(counts, 1))


def pack_question(tokenizer: Tokenizer, query: tf.RaggedTensor, context: tf.RaggedTensor, seq_len: int,
                  max_query: int) -> tuple[dict[str, tf.Tensor], tf.Tensor, tf.Tensor]:
    """(features [B, seq_len] in the job's layout, doc offset [B], context tokens kept [B])."""
    query = _keep(query, tf.fill([query.nrows()], tf.cast(max_query, tf.int64)))
    room = tf.maximum(tf.constant(0, tf.int64), seq_len - 3 - query.row_lengths())
    kept = tf.minimum(context.row_lengths(), room)
    context = _keep(context, kept)
    batch = query.nrows()
    cls, sep = tf.fill([batch, 1], tokenizer.cls_id), tf.fill([batch, 1], tokenizer.sep_id)
    pieces = [cls, query, sep, context, sep]
    segments = [data_utils.CLS_SEGMENT_ID, data_utils.SEGMENT_B_ID, data_utils.SEGMENT_B_ID, data_utils.SEGMENT_A_ID,
                data_utils.SEGMENT_A_ID]
    answerable = [0.0, 1.0, 1.0, 0.0, 1.0]  # p_mask: 1 where no answer can be
    token_ids = tf.concat(pieces, axis=1)
    shape = [batch, seq_len]
    features = {
        "token_ids": token_ids.to_tensor(tokenizer.pad_id, shape=shape),
        "segment_ids": tf.concat([tf.ones_like(p) * s for p, s in zip(pieces, segments)], 1).to_tensor(
            data_utils.SEGMENT_A_ID, shape=shape),
        "padding_mask": tf.ones_like(token_ids).to_tensor(0, shape=shape),
        "p_mask": tf.concat([tf.cast(tf.ones_like(p), tf.float32) * m for p, m in zip(pieces, answerable)], 1
                            ).to_tensor(1.0, shape=shape),
        "cls_index": tf.zeros([batch], tf.int32)}
    return features, tf.cast(query.row_lengths() + 2, tf.int32), tf.cast(kept, tf.int32)


def best_span(beams: dict[str, tf.Tensor], offset: tf.Tensor, length: tf.Tensor, max_answer_length: int,
              conditional_end: bool) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(start, end context token, log-prob) of the best legal beam per row; start -1 where none is legal."""
    starts = tf.cast(beams["start_top_index"], tf.int32)  # [B, K]
    ends = tf.cast(beams["end_top_index"], tf.int32)  # [B, K * J] (conditional end) or [B, J]
    k = tf.shape(starts)[1]
    j = tf.shape(ends)[1] // k if conditional_end else tf.shape(ends)[1]
    start = tf.repeat(starts, j, axis=1)  # [B, K * J], in the job's (start, end) order
    # float64 sums, as the job adds Python floats: a near tie ranks the same way
    start_lp = tf.repeat(tf.cast(beams["start_top_log_probs"], tf.float64), j, axis=1)
    end, end_lp = ends, tf.cast(beams["end_top_log_probs"], tf.float64)
    if not conditional_end:
        end, end_lp = tf.tile(ends, [1, k]), tf.tile(end_lp, [1, k])
    s, e = start - offset[:, None], end - offset[:, None]
    legal = ((s >= 0) & (s < length[:, None]) & (e >= 0) & (e < length[:, None]) & (e >= s)
             & (e - s + 1 <= max_answer_length))
    score = tf.where(legal, start_lp + end_lp, _NO_CANDIDATE)
    best = tf.argmax(score, axis=1, output_type=tf.int32)  # the first of equals, as the job's stable sort
    found = tf.reduce_any(legal, axis=1)
    pick = lambda x: tf.gather(x, best, batch_dims=1)  # noqa: E731
    log_prob = tf.cast(tf.where(found, pick(score), _NO_CANDIDATE), tf.float32)
    return tf.where(found, pick(s), -1), tf.where(found, pick(e), -1), log_prob


BEAMS = {"start_top_index": tf.int32, "start_top_log_probs": tf.float32, "end_top_index": tf.int32,
         "end_top_log_probs": tf.float32, "cls_logits": tf.float32}


def beams_row_by_row(model: keras.Model, features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """The model's inference beams, one row at a time.

    Why: the SQuAD head gathers its top-k starts through `layers.core.take_along_sequence`, which reshapes by the
    static batch size; a serving signature's batch is unknown, so the graph could not be built with `[None, L]`
    inputs. Rows of a static batch of 1 trace; the numbers are the same. (Once that reshape takes a dynamic batch,
    call the model on the whole batch.)
    """
    def one(row: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        beams = model({name: value[tf.newaxis] for name, value in row.items()}, training=False)
        return {name: tf.cast(beams[name][0], dtype) for name, dtype in BEAMS.items()}

    return tf.map_fn(one, features, fn_output_signature=BEAMS)


def squad_endpoint(model: keras.Model, tokenizer: Tokenizer, record: dict[str, Any]
                   ) -> tuple[Callable, list[tf.TensorSpec]]:
    """(function, input signature): `question` [B], `context` [B] (see the module docstring)."""
    seq_len, max_query = record["max_seq_length"], record.get("max_query_length", 64)
    max_answer = record.get("max_answer_length", DEFAULT_MAX_ANSWER_LENGTH)
    conditional_end, use_answer_class = record.get("conditional_end", True), record.get("use_answer_class", True)

    def serve(question: tf.Tensor, context: tf.Tensor) -> dict[str, tf.Tensor]:
        query = tf.cast(tokenizer.tokenize(question), tf.int32)
        ids, char_start, char_end = tokenize_with_char_offsets(tokenizer, context)
        features, offset, kept = pack_question(tokenizer, query, ids, seq_len, max_query)
        beams = beams_row_by_row(model, features)
        start, end, log_prob = best_span(beams, offset, kept, max_answer, conditional_end)
        found = start >= 0
        begin = tf.where(found, tf.gather(char_start.to_tensor(0), tf.maximum(start, 0), batch_dims=1), 0)
        finish = tf.where(found, tf.gather(char_end.to_tensor(0), tf.maximum(end, 0), batch_dims=1), 0)
        answer = tf.strings.strip(tf.strings.substr(context, begin, finish - begin, unit="UTF8_CHAR"))
        cls_logits = tf.cast(beams["cls_logits"], tf.float32)
        if use_answer_class:  # the answer-class logit of "no answer"
            null_odds, no_answer = cls_logits, tf.sigmoid(cls_logits)
        else:  # cls_logits is log p(start = [CLS]); the job's odds subtract the best answer's log-probability
            null_odds, no_answer = cls_logits - log_prob, tf.exp(cls_logits)
        return {"answer": answer, "answer_start": begin, "answer_end": finish, "answer_log_prob": log_prob,
                "null_odds": null_odds, "no_answer_probability": no_answer,
                "truncated": kept < tf.cast(ids.row_lengths(), tf.int32)}

    return serve, [QUESTION, CONTEXT]
