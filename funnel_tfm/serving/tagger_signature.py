"""The raw-text serving signature of a token classifier: whitespace-separated words in, one tag per word out.

    fn, signature = tagging_endpoint(model, tokenizer, record)
    fn(text=tf.constant(["Johanson lives in Paris", "Yes"]))
    # {"tags": [[b"B-PER", b"O", b"O", b"B-LOC"], [b"O", b"", b"", b""]], "words": ..., "num_words": [4, 1]}

The words are the text split on whitespace (as a CoNLL file holds them). Packed in-graph as
`data.tagging_records.pack_sentence` packs the records (`data.conll.align_first_subtokens`): each word tokenized
on its own, whole words kept while their pieces fit in `max_seq_length - 2`, `[CLS] pieces [SEP]` with segment 2
on [CLS] and 0 after, the vocabulary's pad id. A word's tag is the argmax at its first piece; a word cut by the
length or with no piece gets "O", as `tagger --do_predict` writes it (`conll.word_predictions`). Rows are padded
with "" to the longest text of the batch (TensorFlow Serving's dense rows); `num_words` says where each ends.
"""

from __future__ import annotations

from typing import Any, Callable

import keras
import tensorflow as tf

from funnel_tfm.data import data_utils
from funnel_tfm.data.tokenization import Tokenizer

TEXT = tf.TensorSpec([None], tf.string, name="text")
FILL = "O"  # the tag of a word without a scored piece (conll.word_predictions' default)


def _row_cumsum(values: tf.RaggedTensor) -> tf.Tensor:
    """The running total within each row of a ragged [B, (W)] tensor, as flat values (no ragged cumsum op)."""
    total = tf.math.cumsum(values.flat_values)
    before_row = tf.gather(tf.concat([[0], total], 0), values.row_starts())  # the total before each row starts
    return total - tf.gather(before_row, values.value_rowids())


def pack_words(tokenizer: Tokenizer, words: tf.RaggedTensor, seq_len: int) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
    """Words [B, (W)] -> (int32 features [B, seq_len], first-piece position of each word [B, (W)], -1 if none)."""
    pieces = tf.cast(tokenizer.tokenize(words.flat_values), tf.int32)  # [N, (P)]: each word on its own
    counts = words.with_flat_values(tf.cast(pieces.row_lengths(), tf.int32))  # [B, (W)]
    ends = counts.with_flat_values(_row_cumsum(counts))
    kept = ends <= seq_len - 2  # the running total only grows: the first word that overflows cuts the rest
    has_piece = tf.logical_and(kept, counts > 0)
    position = tf.where(has_piece, 1 + ends - counts, -1)  # +1: [CLS]
    kept_pieces = tf.ragged.boolean_mask(tf.RaggedTensor.from_row_lengths(
        pieces, words.row_lengths()), kept).merge_dims(1, 2)  # [B, (pieces)]
    batch = kept_pieces.nrows()
    token_ids = tf.concat([tf.fill([batch, 1], tokenizer.cls_id), kept_pieces, tf.fill([batch, 1], tokenizer.sep_id)],
                          axis=1)
    shape = [batch, seq_len]
    segment_ids = tf.concat([tf.fill([batch, 1], data_utils.CLS_SEGMENT_ID),
                             tf.fill([batch, seq_len - 1], data_utils.SEGMENT_A_ID)], axis=1)
    features = {"token_ids": token_ids.to_tensor(tokenizer.pad_id, shape=shape), "segment_ids": segment_ids,
                "padding_mask": tf.ones_like(token_ids).to_tensor(0, shape=shape)}
    return features, position


def word_tags(logits: tf.Tensor, position: tf.RaggedTensor, labels: list[str]) -> tf.RaggedTensor:
    """Logits [B, L, T], first-piece positions [B, (W)] -> tag strings [B, (W)]."""
    best = tf.argmax(logits, axis=-1, output_type=tf.int32)  # [B, L]
    rows = tf.cast(position.value_rowids(), tf.int32)
    at = tf.stack([rows, tf.maximum(position.flat_values, 0)], axis=1)
    names = tf.gather(tf.constant(labels, tf.string), tf.gather_nd(best, at))
    return position.with_flat_values(tf.where(position.flat_values >= 0, names, FILL))


def tagging_endpoint(model: keras.Model, tokenizer: Tokenizer, record: dict[str, Any]
                     ) -> tuple[Callable, list[tf.TensorSpec]]:
    """(function, input signature): `text` [B] -> `tags`, `words` [B, max words] (padded ""), `num_words` [B]."""
    seq_len, labels = record["max_seq_length"], list(record["labels"])

    def serve(text: tf.Tensor) -> dict[str, tf.Tensor]:
        words = tf.strings.split(text)  # on whitespace, as a CoNLL file separates them
        features, position = pack_words(tokenizer, words, seq_len)
        tags = word_tags(tf.cast(model(features, training=False), tf.float32), position, labels)
        return {"tags": tags.to_tensor(""), "words": words.to_tensor(""),
                "num_words": tf.cast(words.row_lengths(), tf.int32)}

    return serve, [TEXT]
