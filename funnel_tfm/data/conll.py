"""CoNLL-style token-classification files: read, check the tag scheme, write predictions, align sub-tokens.

    sentences = read_conll("eng.train")                 # tag in the last column, token in column 0
    sentences[0]        # Sentence(words=("EU", "rejects", ...), tags=("I-ORG", "O", ...), line=3)
    tag_scheme(sentences)                               # "IOB1"
    labels = label_list(sentences)                      # ("O", "B-LOC", "B-MISC", ..., "I-PER")
    write_conll("out/dev.pred", sentences, predictions) # "word gold pred" lines: conlleval's input

The format: one token per line, columns separated by spaces or tabs, a blank line between sentences. Lines whose
first column is `-DOCSTART-` (CoNLL-2003's document marks) are dropped and end the sentence they interrupt;
the blank line after them is then just another blank line. Every line that holds a token must have as many
columns as the file's first token line. A problem is a `ConllError` naming the file and line.

`align_first_subtokens` turns one sentence into word-piece ids for the tagger: only the first piece of a word
carries its label, and `word_index` maps the pieces back to words so predictions can be written at word level.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Callable, Iterable, Mapping, NamedTuple, Sequence

from funnel_tfm import file_io

DOCSTART = "-DOCSTART-"
SCHEMES = ("IOB1", "IOB2", "IOBES")
_BOM = "\ufeff"
# Columns are split on ASCII spaces and tabs only: str.split() would also split on no-break and ideographic
# spaces, which occur inside tokens of real corpora.
_COLUMN_SEPARATOR = re.compile(r"[ \t]+")
_TAG = re.compile(r"([BIES])-(.+)")


class ConllError(ValueError):
    """Input that cannot be used; the message is `<file>:<line>: <what was wrong and what was expected>`."""


@dataclasses.dataclass(frozen=True)
class Sentence:
    """One sentence: its words, their tags (None for an unlabelled file) and the 1-based line of its first word."""
    words: tuple[str, ...]
    tags: tuple[str, ...] | None
    line: int


# ------------------------------------------------------------------------------------------------ reading
def _decode(path: str, data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ConllError(f"{path}:{line}: invalid UTF-8 (byte 0x{data[error.start]:02x}); "
                         f"expected a UTF-8 text file") from None
    return text[len(_BOM):] if text.startswith(_BOM) else text


def _tag_column_index(path: str, number: int, width: int, tag_column: int) -> int:
    """`tag_column` as a non-negative index into a line of `width` columns; never the token column 0."""
    index = tag_column + width if tag_column < 0 else tag_column
    if not 0 < index < width:
        raise ConllError(f"{path}:{number}: {width} column(s) and tag column {tag_column}; expected the tag in a "
                         f"column other than the token's (column 0)")
    return index


class _SentenceBuilder:
    """Collects the token lines of one sentence; `close()` hands back the finished Sentence (or None)."""

    def __init__(self, has_tags: bool) -> None:
        self.has_tags, self.words, self.tags, self.line = has_tags, [], [], 0

    def add(self, number: int, word: str, tag: str | None) -> None:
        if not self.words:
            self.line = number
        self.words.append(word)
        self.tags.append(tag)

    def close(self) -> Sentence | None:
        if not self.words:
            return None
        sentence = Sentence(tuple(self.words), tuple(self.tags) if self.has_tags else None, self.line)
        self.words, self.tags = [], []
        return sentence


def read_conll(path: str, tag_column: int = -1, has_tags: bool = True,
               label_list: Sequence[str] | None = None) -> list[Sentence]:
    """The sentences of a CoNLL-style file (local or gs://), in file order.

        read_conll("eng.testa")                          # CoNLL-2003: word POS chunk NER -> the NER tags
        read_conll("chunks.txt", tag_column=2)           # word POS gold pred -> the gold chunk tags
        read_conll("test.txt", has_tags=False)           # words only: Sentence.tags is None
        read_conll("dev.txt", label_list=("O", "B-PER", "I-PER"))   # any other tag is an error

    Errors (`ConllError`, `<file>:<line>: ...`): invalid UTF-8, a file without a single token, a line whose
    number of columns differs from the first token line's, a tag column the lines do not have, a tag not in
    `label_list` when one is given.
    """
    with file_io.open_file(path, "rb") as handle:
        text = _decode(path, handle.read())
    allowed = None if label_list is None else frozenset(label_list)
    sentences: list[Sentence] = []
    builder = _SentenceBuilder(has_tags)
    width, first_line, tag_index = 0, 0, 0
    # split("\n"), not splitlines(): the latter also breaks at \x1c, \x85, \u2028, which would shift line numbers.
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip(" \t\r")
        columns = _COLUMN_SEPARATOR.split(line) if line else []
        if not columns or columns[0] == DOCSTART:
            sentences.append(builder.close())
            continue
        if not width:
            width, first_line = len(columns), number
            tag_index = _tag_column_index(path, number, width, tag_column) if has_tags else 0
        if len(columns) != width:
            raise ConllError(f"{path}:{number}: {len(columns)} column(s); expected {width} as on line {first_line} "
                             f"(the first token line), separated by spaces or tabs")
        tag = columns[tag_index] if has_tags else None
        if allowed is not None and has_tags and tag not in allowed:
            raise ConllError(f"{path}:{number}: unknown tag {tag!r}; expected one of {', '.join(label_list)}")
        builder.add(number, columns[0], tag)
    sentences.append(builder.close())
    sentences = [s for s in sentences if s is not None]
    if not sentences:
        raise ConllError(f"{path}:1: no token in the file; expected one token per line, a blank line between "
                         f"sentences")
    return sentences


# ------------------------------------------------------------------------------------------------ tag sets
def split_tag(tag: str) -> tuple[str, str]:
    """(prefix, type) of a tag; a ValueError naming it when it is not O or B-/I-/E-/S- plus a type.

        split_tag("B-PER")      # ("B", "PER")
        split_tag("I-B-X")      # ("I", "B-X"): the type is everything after the first "-"
        split_tag("O")          # ("O", "")
    """
    if tag == "O":
        return "O", ""
    match = _TAG.fullmatch(tag)
    if not match:
        raise ValueError(f"tag {tag!r} is none of {', '.join(SCHEMES)}; expected 'O' or B-, I-, E-, S- "
                         f"followed by a type (B-PER)")
    return match.group(1), match.group(2)


def _tag_sequences(tags: Iterable) -> Iterable[Sequence[str]]:
    """Sentences of tags from a flat sequence of tags or an iterable of sentences (tag lists or Sentences)."""
    flat: list[str] = []
    for item in tags:
        if isinstance(item, str):
            flat.append(item)
        else:
            yield item.tags if isinstance(item, Sentence) else item
    if flat:
        yield flat


def tag_scheme(tags: Iterable) -> str:
    """"IOB1", "IOB2" (= BIO) or "IOBES": the scheme the tags are written in.

        tag_scheme(["B-PER", "I-PER", "O"])              # "IOB2"
        tag_scheme(["I-PER", "I-PER", "B-PER", "O"])     # "IOB1": a chunk may start with I-
        tag_scheme(["S-LOC", "O", "B-PER", "E-PER"])     # "IOBES"
        tag_scheme(read_conll("eng.train"))              # sentences (or lists of tags) are separate sequences

    Decided by evidence: any E- or S- tag means IOBES; otherwise an I- tag that starts a chunk (after O, after
    another type, or at the start of a sentence) means IOB1; otherwise IOB2, which is also the answer for tags
    that are all O. Malformed sequences are not errors here (the metrics chunk them as conlleval does); a tag
    that is not `O` or B-/I-/E-/S- plus a type is a ValueError naming it.
    """
    iobes = iob1 = False
    for sequence in _tag_sequences(tags):
        previous = ("O", "")
        for tag in sequence:
            prefix, kind = split_tag(tag)
            iobes = iobes or prefix in ("E", "S")
            iob1 = iob1 or (prefix == "I" and (previous[0] == "O" or previous[1] != kind))
            previous = (prefix, kind)
    return "IOBES" if iobes else "IOB1" if iob1 else "IOB2"


def label_list(sentences: Iterable[Sentence]) -> tuple[str, ...]:
    """Every tag of the sentences, "O" first (always present: the tagger predicts it), then sorted.

        label_list(read_conll("eng.train"))     # ("O", "B-LOC", "B-MISC", "B-ORG", "I-LOC", ...)
    """
    found: set[str] = set()
    for sentence in sentences:
        if sentence.tags is None:
            raise ValueError(f"sentence at line {sentence.line} has no tags; expected a labelled file")
        found.update(sentence.tags)
    return ("O", *sorted(found - {"O"}))


# ------------------------------------------------------------------------------------------------ writing
def _checked_field(value: str, what: str, sentence: Sentence) -> str:
    # A space inside a field would shift the columns for conlleval and read_conll.
    if not value or re.search(r"\s", value):
        raise ValueError(f"sentence at line {sentence.line}: {what} {value!r} is empty or holds whitespace; "
                         f"expected one non-blank field")
    return value


def _sentence_lines(sentence: Sentence, predicted: Sequence[str]) -> list[str]:
    if len(predicted) != len(sentence.words):
        raise ValueError(f"sentence at line {sentence.line}: {len(predicted)} predictions for "
                         f"{len(sentence.words)} words; expected one per word")
    gold = sentence.tags if sentence.tags is not None else [None] * len(sentence.words)
    lines = []
    for word, tag, pred in zip(sentence.words, gold, predicted):
        fields = [_checked_field(word, "word", sentence)]
        fields += [] if tag is None else [_checked_field(tag, "gold tag", sentence)]
        lines.append(" ".join(fields + [_checked_field(pred, "predicted tag", sentence)]))
    return lines


def write_conll(path: str, sentences: Sequence[Sentence], predictions: Sequence[Sequence[str]]) -> None:
    """Writes `word gold pred` lines (`word pred` for unlabelled sentences), a blank line after each sentence.

        write_conll("out/dev.pred", sentences, predictions)    # then: perl conlleval.pl < out/dev.pred
        read_conll("out/dev.pred", tag_column=-1)              # the predictions back (tag_column=1: gold)

    This is conlleval's input format. The file is written atomically (`file_io`); local or gs:// paths.
    """
    if len(predictions) != len(sentences):
        raise ValueError(f"{len(predictions)} prediction lists for {len(sentences)} sentences; expected one each")
    blocks = ["\n".join(_sentence_lines(s, p)) + "\n\n" for s, p in zip(sentences, predictions)]
    file_io.atomic_write_text(path, "".join(blocks))


# ------------------------------------------------------------------------------------------------ alignment
class Alignment(NamedTuple):
    """Word pieces of one sentence (no [CLS]/[SEP]: the caller packs); unpacks as a 5-tuple."""
    ids: list[int]          # word-piece ids
    label_ids: list[int]    # the word's label index on its first piece, 0 elsewhere (masked out)
    label_mask: list[int]   # 1 on the first piece of each word, 0 on the others
    word_index: list[int]   # the word a first piece starts, -1 on the others
    words_cut: int          # words dropped at the end because their pieces did not fit in max_len


def align_first_subtokens(words: Sequence[str], tags: Sequence[str] | None, encode: Callable[[str], list[int]],
                          label_index: Mapping[str, int], max_len: int) -> Alignment:
    """Word pieces with the label on each word's first piece only.

        encode = Tokenizer.from_file(vocab).encode
        ids, label_ids, label_mask, word_index, cut = align_first_subtokens(
            ["Johanson", "lives"], ["B-PER", "O"], encode, {"O": 0, "B-PER": 1}, max_len=126)
        # ids [13093, 3385, 3268] (johan ##son lives, bert-base-uncased); label_ids [1, 0, 0];
        # label_mask [1, 0, 1]; word_index [0, -1, 1]; cut 0

    Whole words are kept while their pieces fit in `max_len` (the room left after [CLS]/[SEP]); the rest are
    cut and counted. A word that encodes to no piece at all (only control characters) gets no position: its
    prediction is filled in by `word_predictions`. `tags` None (unlabelled text) gives all-zero label_ids.
    An unknown tag is a ValueError naming it.
    """
    if tags is not None and len(tags) != len(words):
        raise ValueError(f"{len(tags)} tags for {len(words)} words; expected one per word")
    out = Alignment([], [], [], [], 0)
    for number, word in enumerate(words):
        pieces = encode(word)
        if len(out.ids) + len(pieces) > max_len:
            return out._replace(words_cut=len(words) - number)
        label = 0 if tags is None else _label_id(tags[number], label_index)
        for position, piece in enumerate(pieces):
            out.ids.append(piece)
            out.label_ids.append(label if position == 0 else 0)
            out.label_mask.append(1 if position == 0 else 0)
            out.word_index.append(number if position == 0 else -1)
    return out


def _label_id(tag: str, label_index: Mapping[str, int]) -> int:
    if tag not in label_index:
        raise ValueError(f"unknown tag {tag!r}; expected one of {', '.join(label_index)}")
    return label_index[tag]


def word_predictions(word_index: Sequence[int], token_labels: Sequence[str], num_words: int,
                     fill: str = "O") -> list[str]:
    """One label per word from per-piece labels: the first piece's label; `fill` for cut or empty words.

        word_predictions([0, -1, 1], ["B-PER", "I-PER", "O"], num_words=3)    # ["B-PER", "O", "O"]
    """
    labels = [fill] * num_words
    for word, label in zip(word_index, token_labels):
        if word >= 0:
            labels[word] = label
    return labels
