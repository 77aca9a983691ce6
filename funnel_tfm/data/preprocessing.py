"""Tokenize and pack `[CLS] A [SEP] B [SEP]`: one in-graph object for the input pipelines and serving graphs.

    pre = Preprocessor.from_file("vocab.txt", uncased=True, seq_len=128)
    features = pre(tf.constant(["a sentence"]), tf.constant(["its pair"]))
    features["token_ids"], features["segment_ids"], features["padding_mask"]     # int32 [1, 128] each
    pre.pack(ragged_ids_a, ragged_ids_b)                                         # already-tokenized input

The finetuning feature writers, the tf.data pipelines and the exported serving signatures all call this one
object, so what a model was trained on and what it is served cannot drift apart.

Packing follows the original's classifier (docs/original_semantics.md, F2):

* `[CLS] A [SEP] B [SEP]` with segment ids `2, 0 * (|A| + 1), 1 * (|B| + 1)`; a single text gives `[CLS] A [SEP]`.
* A pair is trimmed by popping a token from the end of the longer text (of B when they are equal) until
  `|A| + |B| <= seq_len - 3`; a single text keeps its first `seq_len - 2` tokens.
* Padding uses the vocabulary's pad id with segment 0 and `padding_mask` 0 (`padding_mask` is 1 at real
  tokens, the opposite of the original's `input_mask`).
"""

from __future__ import annotations

import tensorflow as tf

from funnel_tfm.data import data_utils
from funnel_tfm.data.tokenization import Tokenizer, TokenizerError


def pair_lengths(len_a: tf.Tensor, len_b: tf.Tensor, budget: int | tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Lengths the original's "pop from the longer, from B when equal" loop leaves, in closed form.

        pair_lengths(tf.constant([9]), tf.constant([2]), 6)        # ([4], [2])

    Popping only shortens the longer text, so the shorter one survives whole when it fits in half the budget;
    otherwise both end at half, A taking the odd token (B is popped first when they are equal).
    """
    len_a, len_b = tf.convert_to_tensor(len_a), tf.convert_to_tensor(len_b)
    budget = tf.cast(budget, len_a.dtype)
    half_up = (budget + 1) // 2
    kept_a = tf.minimum(len_a, tf.maximum(half_up, budget - len_b))
    kept_b = tf.minimum(len_b, budget - kept_a)
    return kept_a, kept_b


class Preprocessor:
    """See the module docstring. `seq_len` is the packed length (the original's `--max_seq_length`)."""

    def __init__(self, tokenizer: Tokenizer, seq_len: int = 128) -> None:
        tokenizer.require_special(("cls", "sep", "pad"))
        if seq_len < 3:
            raise ValueError(f"seq_len={seq_len}: packing [CLS] A [SEP] B [SEP] needs at least 3 positions")
        self.tokenizer, self.seq_len = tokenizer, seq_len
        self.cls_id, self.sep_id, self.pad_id = tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id

    @classmethod
    def from_file(cls, path: str, uncased: bool = True, seq_len: int = 128) -> "Preprocessor":
        """A preprocessor on a WordPiece vocab or a SentencePiece `.model` (see `Tokenizer.from_file`)."""
        tokenizer = Tokenizer.from_file(path, uncased=uncased)
        try:
            return cls(tokenizer, seq_len)
        except TokenizerError as error:
            raise TokenizerError(f"{error} (needed to pack [CLS] A [SEP] B [SEP])") from None

    def __call__(self, text_a: tf.Tensor, text_b: tf.Tensor | None = None) -> dict[str, tf.Tensor]:
        """Strings `[batch]` (or scalars) -> packed int32 features `[batch, seq_len]` (`[seq_len]` for scalars)."""
        text_a = tf.convert_to_tensor(text_a, tf.string)
        scalar = text_a.shape.rank == 0
        ids_a = self.tokenizer.tokenize(tf.reshape(text_a, [-1]))
        ids_b = None
        if text_b is not None:
            ids_b = self.tokenizer.tokenize(tf.reshape(tf.convert_to_tensor(text_b, tf.string), [-1]))
        features = self.pack(ids_a, ids_b)
        if scalar:
            return {name: value[0] for name, value in features.items()}
        return features

    def pack(self, ids_a: tf.RaggedTensor, ids_b: tf.RaggedTensor | None = None) -> dict[str, tf.Tensor]:
        """Token ids (ragged `[batch, (tokens)]`) -> `token_ids`, `segment_ids`, `padding_mask` `[batch, seq_len]`."""
        ids_a = tf.cast(ids_a, tf.int32)
        batch = ids_a.nrows()
        cls = tf.fill([batch, 1], self.cls_id)
        sep = tf.fill([batch, 1], self.sep_id)
        len_a = ids_a.row_lengths()
        if ids_b is None:
            kept_a = tf.minimum(len_a, self.seq_len - 2)
            ids_a = _keep_first(ids_a, kept_a)
            pieces = [cls, ids_a, sep]
            segments = [data_utils.CLS_SEGMENT_ID, data_utils.SEGMENT_A_ID, data_utils.SEGMENT_A_ID]
        else:
            ids_b = tf.cast(ids_b, tf.int32)
            kept_a, kept_b = pair_lengths(len_a, ids_b.row_lengths(), self.seq_len - 3)
            ids_a, ids_b = _keep_first(ids_a, kept_a), _keep_first(ids_b, kept_b)
            pieces = [cls, ids_a, sep, ids_b, sep]
            segments = [data_utils.CLS_SEGMENT_ID, data_utils.SEGMENT_A_ID, data_utils.SEGMENT_A_ID,
                        data_utils.SEGMENT_B_ID, data_utils.SEGMENT_B_ID]
        token_ids = tf.concat(pieces, axis=1)
        segment_ids = tf.concat([tf.ones_like(piece) * segment for piece, segment in zip(pieces, segments)], axis=1)
        shape = [batch, self.seq_len]
        return {
            "token_ids": token_ids.to_tensor(default_value=self.pad_id, shape=shape),
            "segment_ids": segment_ids.to_tensor(default_value=data_utils.SEGMENT_A_ID, shape=shape),
            "padding_mask": tf.ones_like(token_ids).to_tensor(default_value=0, shape=shape),
        }


def _keep_first(ids: tf.RaggedTensor, lengths: tf.Tensor) -> tf.RaggedTensor:
    """The first `lengths[i]` ids of every row `i`."""
    positions = tf.ragged.range(ids.row_lengths())
    return tf.ragged.boolean_mask(ids, positions < tf.expand_dims(lengths, 1))
