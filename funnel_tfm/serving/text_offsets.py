"""In-graph tokenization with character offsets into the raw text, equal to the job's Python
`Tokenizer.encode_batch_with_offsets`, for WordPiece and SentencePiece vocabularies.

    ids, first, end = tokenize_with_char_offsets(tokenizer, tf.constant(["Café “Müller” won."]))
    # ids [B, (T)] int32; token t covers the characters [first[b, t], end[b, t]) of the raw string
    answer, lead, trail = strip_like_python(tf.constant([" a\u00a0"]))   # [b"a"], [1], [1]

How: the job normalises one character at a time and keeps where each output character came from
(`tokenization.normalise_with_sources`, `sp_preprocess_with_sources`). Here each character of the raw text is
normalised on its own as well (one string per character), the pieces are joined, the tokenizer's byte offsets in
the joined text are mapped back to the character whose piece holds that byte (cumulative byte lengths and
`searchsorted`), and a token ends where its last byte's character ends (`[max(end - 1, start)]`, as the job).

SentencePiece's preprocessing has three steps that look beyond one character; they are done with neighbours:
a run of white space becomes one space, written only after output that does not already end in a space; a final
space is dropped; and `` or '' (paired left to right) become one '"' whose source spans both characters. White
space and combining marks are Python's (`str.isspace`, `unicodedata.combining`), written into the graph as
explicit character classes: RE2's `\\s` is ASCII only and its `\\p{Mn}` is not `combining`.
"""

from __future__ import annotations

import functools
import sys
import unicodedata
from typing import Callable, Iterable

import tensorflow as tf
import tensorflow_text as tf_text

from funnel_tfm.data.tokenization import Tokenizer


def _re2_class(codes: Iterable[int]) -> str:
    ranges: list[list[int]] = []
    for code in sorted(codes):
        if ranges and code == ranges[-1][1] + 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return "[" + "".join(f"\\x{{{a:X}}}" + (f"-\\x{{{b:X}}}" if b > a else "") for a, b in ranges) + "]"


@functools.cache
def python_space_class() -> str:
    """The RE2 character class of Python's `str.isspace()` (what `str.strip()` removes)."""
    return _re2_class(code for code in range(sys.maxunicode + 1) if chr(code).isspace())


@functools.cache
def _combining_class() -> str:
    return _re2_class(code for code in range(sys.maxunicode + 1) if unicodedata.combining(chr(code)))


def strip_like_python(strings: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(`str.strip()` of each string, characters removed on the left, on the right); `tf.strings.strip` removes
    ASCII white space only."""
    space = python_space_class()
    left = tf.strings.regex_replace(strings, f"^{space}+", "")
    both = tf.strings.regex_replace(left, f"{space}+$", "")
    length = functools.partial(tf.strings.length, unit="UTF8_CHAR")
    return both, length(strings) - length(left), length(left) - length(both)


def _last_true_before(flags: tf.Tensor, inclusive: bool = False) -> tf.Tensor:
    """bool [B, C] -> int32 [B, C]: the index of the last true flag before each position (at or before it when
    `inclusive`), -1 where there is none."""
    shape = tf.shape(flags)
    positions = tf.ragged.boolean_mask(tf.broadcast_to(tf.range(shape[1]), shape), flags).to_tensor(-1)
    positions = tf.concat([tf.fill([shape[0], 1], -1), positions], axis=1)  # a count of 0 -> -1
    count = tf.cumsum(tf.cast(flags, tf.int32), axis=1, exclusive=not inclusive)
    return tf.gather(positions, count, batch_dims=1)


def _sentencepiece_pieces(chars: tf.RaggedTensor, uncased: bool) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
    """(normalised piece of every character, how many source characters it stands for), `sp_preprocess_with_sources`
    character by character."""
    dense = chars.to_tensor("")
    dense = tf.concat([dense, tf.fill([tf.shape(dense)[0], 1], "")], axis=1)  # a column past the end: shifts work
    valid = tf.sequence_mask(chars.row_lengths(), tf.shape(dense, out_type=tf.int64)[1])
    is_space = tf.strings.regex_full_match(dense, python_space_class()) & valid
    # `` and '': a run of equal quote characters pairs up from its first character
    quote = tf.equal(dense, "`") | tf.equal(dense, "'")
    repeats = quote & tf.pad(tf.equal(dense[:, 1:], dense[:, :-1]), [[0, 0], [1, 0]])
    position = tf.range(tf.shape(dense)[1])[tf.newaxis] - _last_true_before(~repeats, inclusive=True)
    pair_first = quote & (position % 2 == 0) & tf.pad(repeats[:, 1:], [[0, 0], [0, 1]])
    pair_second = quote & (position % 2 == 1)
    pieces = tf.strings.regex_replace(tf.strings.regex_replace(dense, "”|“", '"'), "‘|’", "'")
    pieces = tf.strings.regex_replace(tf_text.normalize_utf8(pieces, "NFKD"), _combining_class(), "")
    if uncased:
        pieces = tf.strings.lower(pieces, encoding="utf-8")
    pieces = tf.where(pair_first, '"', tf.where(pair_second | is_space, "", pieces))
    # a white-space character writes " " if it is the first of its run after output that ends in no space
    written = (tf.strings.length(pieces) > 0) & valid
    ends_in_space = tf.strings.regex_full_match(pieces, "(?s).* ")
    last_written = _last_true_before(written)
    after_space = tf.gather(ends_in_space, tf.maximum(last_written, 0), batch_dims=1)
    emit = is_space & (last_written >= 0) & (_last_true_before(is_space) < last_written) & ~after_space
    pieces = tf.where(emit, " ", pieces)
    # the text's final space is dropped (one character)
    final = _last_true_before((tf.strings.length(pieces) > 0) & valid, inclusive=True)[:, -1:]
    trailing = tf.equal(tf.range(tf.shape(dense)[1])[tf.newaxis], final) & tf.strings.regex_full_match(
        pieces, "(?s).* ")
    kept = tf.maximum(tf.strings.length(pieces) - 1, 0)
    pieces = tf.where(trailing, tf.strings.substr(pieces, tf.zeros_like(kept), kept), pieces)
    widths = tf.where(pair_first, 2, 1)
    lengths = chars.row_lengths()
    return (tf.RaggedTensor.from_tensor(pieces, lengths=lengths), tf.RaggedTensor.from_tensor(widths, lengths=lengths))


def _pieces(tokenizer: Tokenizer, chars: tf.RaggedTensor) -> tuple[tf.RaggedTensor, tf.RaggedTensor, Callable]:
    """(per-character pieces, source widths, the tokenizer's `tokenize_with_offsets` on joined pieces)."""
    if tokenizer.kind == "wordpiece":  # the normaliser is per character (`normalise_with_sources`)
        pieces = chars.with_flat_values(tokenizer.normalize(chars.flat_values))
        return pieces, tf.ones_like(chars, tf.int32), tokenizer.trackables()["wordpiece"].tokenize_with_offsets
    pieces, widths = _sentencepiece_pieces(chars, tokenizer.uncased)
    return pieces, widths, tokenizer.trackables()["sentencepiece"].tokenize_with_offsets


def tokenize_with_char_offsets(tokenizer: Tokenizer, text: tf.Tensor) -> tuple[tf.RaggedTensor, ...]:
    """Strings [B] -> (ids, first character, end character (exclusive)), ragged [B, (T)] int32, in characters of
    `text` (see the module docstring)."""
    chars = tf.strings.unicode_split(text, "UTF-8")  # [B, (C)]
    pieces, widths, tokenize_with_offsets = _pieces(tokenizer, chars)
    ids, start_bytes, end_bytes = tokenize_with_offsets(tf.strings.reduce_join(pieces, axis=1))
    byte_lengths = pieces.with_flat_values(tf.strings.length(pieces.flat_values)).to_tensor(0)
    num_chars = tf.cast(chars.row_lengths(), tf.int32)
    # where each character's piece ends in the joined text; past the text: never (a byte there maps to the end)
    piece_ends = tf.where(tf.sequence_mask(num_chars, tf.shape(byte_lengths)[1]),
                          tf.cumsum(byte_lengths, axis=1), tf.int32.max)
    starts = tf.cast(start_bytes.to_tensor(0), tf.int32)
    last_bytes = tf.maximum(tf.cast(end_bytes.to_tensor(0), tf.int32) - 1, starts)
    first = tf.searchsorted(piece_ends, starts, side="right")  # a dropped character (empty piece) is never found
    last = tf.searchsorted(piece_ends, last_bytes, side="right")
    widths = tf.pad(widths.to_tensor(0), [[0, 0], [0, 1]])  # 0 past the text: a token there ends at its end
    end = last + tf.gather(widths, last, batch_dims=1)
    lengths = ids.row_lengths()
    return (tf.cast(ids, tf.int32), tf.RaggedTensor.from_tensor(tf.cast(first, tf.int32), lengths=lengths),
            tf.RaggedTensor.from_tensor(tf.cast(end, tf.int32), lengths=lengths))
