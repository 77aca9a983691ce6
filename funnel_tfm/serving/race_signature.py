"""The raw-text serving signature of a multiple-choice (RACE) model: article + question + options in, the chosen
option and its probabilities out.

    fn, signature = multiple_choice_endpoint(model, tokenizer, record)
    fn(article=tf.constant(["..."]), question=tf.constant(["The author thinks _ ."]),
       options=tf.constant([["a", "b", "c", "d"]]))
    # {"prediction": [b"B"], "choice": [1], "probabilities": [[.1, .6, .2, .1]], "logits": ..., "option_names": ...}

Packed in-graph exactly as `data.race_data.pack_race` packs the training records (the original's rule): the
question joined with each option (`_` replaced by the option, else question + " " + option), cut to its *last*
`max_qa_length` tokens; the article keeps its first `max_seq_length - 3 - len(qa)` tokens; `[CLS] qa [SEP]
article [SEP]`, segments 2 / 0 / 1, padded with id 0 (not the vocabulary's pad id: the original's choice).
"""

from __future__ import annotations

from typing import Any, Callable

import keras
import tensorflow as tf

from funnel_tfm.data import data_utils
from funnel_tfm.data.tokenization import Tokenizer

DEFAULT_MAX_QA_LENGTH = 128  # race.py's --max_qa_length, for records written before it was recorded
ARTICLE = tf.TensorSpec([None], tf.string, name="article")
QUESTION = tf.TensorSpec([None], tf.string, name="question")
OPTIONS = tf.TensorSpec([None, None], tf.string, name="options")


def qa_strings(question: tf.Tensor, options: tf.Tensor) -> tf.Tensor:
    """[B] questions, [B, C] options -> [B, C] strings, as `race_data.qa_texts` (every `_` replaced)."""
    questions = tf.broadcast_to(question[:, tf.newaxis], tf.shape(options))
    # A backslash in the option would be read as a group reference by the rewrite: escape it.
    rewrite = tf.strings.regex_replace(options, r"\\", r"\\\\")
    flat_q, flat_rewrite = tf.reshape(questions, [-1]), tf.reshape(rewrite, [-1])
    replaced = tf.map_fn(lambda pair: tf.strings.regex_replace(pair[0], "_", pair[1]), (flat_q, flat_rewrite),
                         fn_output_signature=tf.string)  # regex_replace takes one rewrite for the whole tensor
    joined = tf.strings.join([questions, options], separator=" ")
    has_blank = tf.strings.regex_full_match(questions, ".*_.*")
    return tf.where(has_blank, tf.reshape(replaced, tf.shape(options)), joined)


def pack_choices(tokenizer: Tokenizer, article: tf.Tensor, qa: tf.Tensor, seq_len: int, max_qa: int
                 ) -> dict[str, tf.Tensor]:
    """Articles [B], qa strings [B, C] -> int32 features [B, C, seq_len] (see the module docstring)."""
    batch, choices = tf.shape(qa)[0], tf.shape(qa)[1]
    qa_ids = tf.cast(tokenizer.tokenize(tf.reshape(qa, [-1])), tf.int32)
    qa_len = qa_ids.row_lengths()
    qa_ids = tf.ragged.boolean_mask(qa_ids, tf.ragged.range(qa_len) >= tf.expand_dims(qa_len - max_qa, 1))
    article_ids = tf.cast(tokenizer.tokenize(article), tf.int32)
    article_ids = tf.gather(article_ids, tf.repeat(tf.range(batch), choices))  # one copy per option
    keep = tf.maximum(tf.constant(0, tf.int64), seq_len - 3 - qa_ids.row_lengths())
    article_ids = tf.ragged.boolean_mask(article_ids, tf.ragged.range(article_ids.row_lengths())
                                         < tf.expand_dims(keep, 1))
    rows = tf.shape(qa_ids.row_lengths())[0]
    cls, sep = tf.fill([rows, 1], tokenizer.cls_id), tf.fill([rows, 1], tokenizer.sep_id)
    pieces = [cls, qa_ids, sep, article_ids, sep]
    segments = [data_utils.CLS_SEGMENT_ID, data_utils.SEGMENT_A_ID, data_utils.SEGMENT_A_ID,
                data_utils.SEGMENT_B_ID, data_utils.SEGMENT_B_ID]
    token_ids = tf.concat(pieces, axis=1)
    segment_ids = tf.concat([tf.ones_like(piece) * segment for piece, segment in zip(pieces, segments)], axis=1)
    shape = [rows, seq_len]
    features = {"token_ids": token_ids.to_tensor(0, shape=shape),
                "segment_ids": segment_ids.to_tensor(data_utils.SEGMENT_A_ID, shape=shape),
                "padding_mask": tf.ones_like(token_ids).to_tensor(0, shape=shape)}
    return {name: tf.reshape(value, [batch, choices, seq_len]) for name, value in features.items()}


def choice_outputs(logits: tf.Tensor, names: list[str]) -> dict[str, tf.Tensor]:
    """Logits [B, C] -> the serving outputs: option name, index, probabilities (names per row, for TF Serving)."""
    logits = tf.cast(logits, tf.float32)
    probabilities = tf.nn.softmax(logits, axis=-1)
    choice = tf.argmax(logits, axis=-1, output_type=tf.int32)
    table = tf.constant(names, tf.string)
    return {"prediction": tf.gather(table, choice), "choice": choice, "probabilities": probabilities,
            "logits": logits, "option_names": tf.tile(table[tf.newaxis], [tf.shape(logits)[0], 1])}


def multiple_choice_endpoint(model: keras.Model, tokenizer: Tokenizer, record: dict[str, Any]
                             ) -> tuple[Callable, list[tf.TensorSpec]]:
    """(function, input signature): `article` [B], `question` [B], `options` [B, num_choices]."""
    seq_len, choices = record["max_seq_length"], record.get("num_choices", 4)
    max_qa = record.get("max_qa_length", DEFAULT_MAX_QA_LENGTH)
    names = list(record.get("labels") or [chr(ord("A") + i) for i in range(choices)])

    def serve(article: tf.Tensor, question: tf.Tensor, options: tf.Tensor) -> dict[str, tf.Tensor]:
        tf.debugging.assert_equal(tf.shape(options)[1], choices,
                                  message=f"options: expected {choices} options per question")
        features = pack_choices(tokenizer, article, qa_strings(question, options), seq_len, max_qa)
        return choice_outputs(model(features, training=False), names)

    return serve, [ARTICLE, QUESTION, tf.TensorSpec([None, choices], tf.string, name="options")]
