"""WordPiece and SentencePiece tokenizers on tensorflow-text, usable inside tf.data / a model and from Python.

    tok = Tokenizer.from_file("vocab.txt", uncased=True)          # WordPiece (BERT vocab) or a .model (SentencePiece)
    ids = tok.tokenize(tf.constant(["Hello world!"]))             # in-graph: RaggedTensor [batch, (tokens)] int32
    tok.encode("Hello world!")                                    # [7592, 2088, 999]
    ids, starts, ends = tok.encode_with_offsets("Héllo world!")   # character offsets into the original text
    tok.cls_id, tok.sep_id, tok.pad_id, tok.mask_id, tok.unk_id   # the original's <cls> ... mapped onto [CLS] ...

WordPiece ids equal transformers' BertTokenizerFast (uncased and cased): the normalisation is done here exactly
as its BertNormalizer does it (drop control characters, NFD, drop accents, per-character lower case, space out
CJK ideographs) and tensorflow-text's FastBertTokenizer does the splitting and WordPiece. (FastBertTokenizer's
own normalisation is NFKC case folding, which differs on characters such as U+2011 or final sigma.)

A SentencePiece model lives in a TensorFlow resource made under a name of its own (see `_SharedSentencepieceModel`),
so seeding (`keras.utils.set_random_seed`, which clears TensorFlow's kernel cache) cannot delete it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import unicodedata

import numpy as np
import tensorflow as tf
import tensorflow_text as text
from tensorflow_text.python.ops import sentencepiece_tokenizer as _sentencepiece_ops

from funnel_tfm import file_io

# The original's special symbols and the BERT-style entries they map onto when the vocab has those instead.
SPECIAL_SYMBOLS = {"cls": ("<cls>", "[CLS]"), "sep": ("<sep>", "[SEP]"), "pad": ("<pad>", "[PAD]"),
                   "mask": ("<mask>", "[MASK]"), "unk": ("<unk>", "[UNK]"), "bos": ("<s>",), "eos": ("</s>",),
                   "eod": ("<eod>",), "eop": ("<eop>",)}
REQUIRED_FOR_PRETRAINING = ("cls", "sep", "pad", "mask")

_CONTROL = r"[\x00\x{FFFD}]|[^\P{Cc}\t\n\r]|\p{Cf}"
_CJK = (r"([\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2B73F}\x{2B740}-\x{2B81F}"
        r"\x{2B820}-\x{2CEAF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}])")
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # Cc but \t \n \r: dropped by the normaliser
_CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
               (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


class TokenizerError(ValueError):
    """A vocabulary or model file that cannot be used (names the file and line)."""


def read_vocab(path: str) -> list[str]:
    """One token per line, UTF-8. Errors name the file and line; duplicates are an error (they would shift ids)."""
    try:
        with file_io.open_file(path, "rb") as handle:
            raw = handle.read()
    except (OSError, tf.errors.OpError) as error:
        raise TokenizerError(f"{path}: cannot read the vocabulary ({error})") from None
    tokens, seen = [], {}
    for number, line in enumerate(raw.split(b"\n"), start=1):
        try:
            token = line.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as error:
            raise TokenizerError(f"{path}:{number}: vocabulary line is not UTF-8 ({error.reason})") from None
        if not token.strip():
            if number == len(raw.split(b"\n")):
                continue  # the final newline
            raise TokenizerError(f"{path}:{number}: empty vocabulary line (a token per line is expected)")
        if token in seen:
            raise TokenizerError(f"{path}:{number}: duplicate token {token!r} (first on line {seen[token]})")
        seen[token] = number
        tokens.append(token)
    if not tokens:
        raise TokenizerError(f"{path}: empty vocabulary")
    return tokens


def _find_special(vocab_index: dict[str, int], unk_id: int | None) -> dict[str, int | None]:
    ids = {}
    for name, symbols in SPECIAL_SYMBOLS.items():
        ids[name] = next((vocab_index[s] for s in symbols if s in vocab_index), None)
    return ids


@dataclasses.dataclass
class _Normalised:
    text: str
    source: list[int]  # for each normalised character, the index of the original character it came from
    source_end: list[int] | None = None  # where that source ends, when it is longer than one character


def _is_cjk(code: int) -> bool:
    return any(lo <= code <= hi for lo, hi in _CJK_RANGES)


def normalise_with_sources(text_: str, lower: bool) -> _Normalised:
    """The BertNormalizer steps per character in Python, keeping where each output character came from."""
    if text_.isascii() and not _ASCII_CONTROL.search(text_):
        # Nothing to drop, no accents, no CJK: lower-casing is the only step, one character for one.
        return _Normalised(text_.lower() if lower else text_, list(range(len(text_))))
    out, source = [], []
    for index, char in enumerate(text_):
        code = ord(char)
        if code < 128 and not _ASCII_CONTROL.match(char):  # the common case of mixed text, without unicodedata
            out.append(char.lower() if lower else char)
            source.append(index)
            continue
        if code == 0 or code == 0xFFFD or (unicodedata.category(char) in ("Cc", "Cf") and char not in "\t\n\r"):
            continue
        pieces = char
        if lower:
            pieces = "".join(c for c in unicodedata.normalize("NFD", char) if unicodedata.category(c) != "Mn")
            pieces = "".join("σ" if c == "Σ" else c.lower() for c in pieces)
        if _is_cjk(code):
            pieces = f" {pieces} "
        out.append(pieces)
        source.extend([index] * len(pieces))
    return _Normalised("".join(out), source)


_SP_QUOTES = {"”": '"', "“": '"', "‘": "'", "’": "'"}


def sp_preprocess_with_sources(text_: str, lower: bool) -> _Normalised:
    """The original's SentencePiece `preprocess_text` per character (whitespace runs collapsed and stripped,
    curly quotes straightened, NFKD without combining marks, lower case), keeping source indices. The two-character
    ``/'' -> " replacement is the one step that is not per character: its '"' covers both source characters."""
    out, source, source_end, index = [], [], [], 0
    while index < len(text_):
        char, width = text_[index], 1
        if text_[index:index + 2] in ("``", "''"):
            char, width = '"', 2
        if char.isspace():
            if out and out[-1] != " ":
                out.append(" ")
                source.append(index)
                source_end.append(index + 1)
            index += width
            continue
        pieces = _SP_QUOTES.get(char, char)
        pieces = "".join(c for c in unicodedata.normalize("NFKD", pieces) if not unicodedata.combining(c))
        if lower:
            pieces = pieces.lower()
        out.extend(pieces)
        source.extend([index] * len(pieces))
        source_end.extend([index + width] * len(pieces))
        index += width
    if out and out[-1] == " ":
        out.pop()
        source.pop()
        source_end.pop()
    return _Normalised("".join(out), source, source_end)


def _char_at_byte(text_: str) -> np.ndarray:
    """Character offset of every UTF-8 byte offset of `text_` (and of its end)."""
    if text_.isascii():
        return np.arange(len(text_) + 1, dtype=np.int64)
    widths = np.fromiter((len(char.encode("utf-8")) for char in text_), np.int64, len(text_))
    return np.append(np.repeat(np.arange(len(text_), dtype=np.int64), widths), len(text_))


class _SharedSentencepieceModel(tf.saved_model.experimental.TrackableResource):
    """A SentencePiece model resource that outlives TensorFlow's kernel cache.

    tensorflow-text makes its model with `SentencepieceOp` under no shared name: the resource is then private to
    that op's kernel and is deleted with the kernel, and `tf.random.set_seed` (so `keras.utils.set_random_seed`)
    clears the eager kernel cache, after which every tokenize fails ('Resource localhost/_0_SentencepieceOp/...
    does not exist'), in Python and inside tf.data alike. Under a shared name the resource manager owns the model
    instead. The name is the model's content hash: tokenizers (and loaded SavedModels, which rebuild the resource
    with the same attributes) of one model share one resource and two models never collide. Such a resource is
    never freed: one per distinct model per process.

        handle = _SharedSentencepieceModel(proto).resource_handle
    """

    def __init__(self, model_proto: bytes) -> None:
        super().__init__()
        self._model_proto = model_proto
        self._shared_name = "funnel_tfm_sentencepiece_" + hashlib.sha256(model_proto).hexdigest()[:32]
        _ = self.resource_handle  # made now, as tensorflow-text does: a bad model fails here, not mid-dataset

    def _create_resource(self) -> tf.Tensor:
        return _sentencepiece_ops.gen_sentencepiece_tokenizer.sentencepiece_op(
            model=self._model_proto, shared_name=self._shared_name)


class _SentencepieceTokenizer(text.SentencepieceTokenizer):
    """tensorflow-text's SentencePiece tokenizer (ids as int32) on a `_SharedSentencepieceModel`.

        _SentencepieceTokenizer(proto).tokenize(tf.constant(["hello world"]))
    """

    def __init__(self, model_proto: bytes) -> None:
        super().__init__(model=model_proto, out_type=tf.int32)
        if not isinstance(getattr(self, "_model_resource", None), tf.saved_model.experimental.TrackableResource):
            raise RuntimeError("tensorflow-text's SentencepieceTokenizer no longer keeps its model in "
                               "`_model_resource`: update _SentencepieceTokenizer for this tensorflow-text version")
        # every op of the parent (tokenize, offsets, detokenize, vocab size) reads this resource's handle; the
        # parent's own, kernel-private one is dropped
        self._model_resource = _SharedSentencepieceModel(model_proto)


class Tokenizer:
    """See the module docstring. Build with `Tokenizer.from_file(path, uncased)`."""

    def __init__(self, kind: str, vocab: list[str], uncased: bool, model_proto: bytes | None = None,
                 source: str = "") -> None:
        self.kind, self.vocab, self.uncased, self.source = kind, vocab, uncased, source
        self.vocab_index = {token: i for i, token in enumerate(vocab)}
        if kind == "wordpiece":
            unk = "[UNK]" if "[UNK]" in self.vocab_index else "<unk>"
            if unk not in self.vocab_index:
                raise TokenizerError(f"{source}: the vocabulary has neither [UNK] nor <unk>")
            self._wordpiece = text.FastBertTokenizer(vocab=vocab, suffix_indicator="##", max_bytes_per_word=100,
                                                     token_out_type=tf.int32, unknown_token=unk,
                                                     lower_case_nfd_strip_accents=False)
        else:
            self._sentencepiece = _SentencepieceTokenizer(model_proto)
        special = _find_special(self.vocab_index, None)
        self.special_ids = special
        self.cls_id, self.sep_id, self.pad_id = special["cls"], special["sep"], special["pad"]
        self.mask_id, self.unk_id = special["mask"], special["unk"]

    # ------------------------------------------------------------------------------------------ building
    @classmethod
    def from_file(cls, path: str, uncased: bool = True) -> "Tokenizer":
        """A WordPiece vocab (one token per line) or a SentencePiece `.model` file."""
        if not tf.io.gfile.exists(path):
            raise TokenizerError(f"{path}: no such vocabulary or SentencePiece model file")
        if path.endswith(".model"):
            with file_io.open_file(path, "rb") as handle:
                proto = handle.read()
            import sentencepiece
            processor = sentencepiece.SentencePieceProcessor()
            try:
                processor.LoadFromSerializedProto(proto)
            except Exception as error:  # sentencepiece raises RuntimeError / OSError with its own text
                raise TokenizerError(f"{path}: not a SentencePiece model ({error})") from None
            vocab = [processor.IdToPiece(i) for i in range(processor.GetPieceSize())]
            return cls("sentencepiece", vocab, uncased, model_proto=proto, source=path)
        return cls("wordpiece", read_vocab(path), uncased, source=path)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def trackables(self) -> dict[str, tf.Module]:
        """The tensorflow-text objects behind `tokenize`: a SavedModel that tokenizes in-graph must track them
        (SentencePiece keeps its model in a resource that is saved only when tracked)."""
        return {"wordpiece": self._wordpiece} if self.kind == "wordpiece" else {"sentencepiece": self._sentencepiece}

    def require_special(self, names: tuple[str, ...] = REQUIRED_FOR_PRETRAINING) -> None:
        missing = [n for n in names if self.special_ids[n] is None]
        if missing:
            wanted = ", ".join(" or ".join(SPECIAL_SYMBOLS[n]) for n in missing)
            raise TokenizerError(f"{self.source}: the vocabulary lacks {wanted}")

    # ------------------------------------------------------------------------------------------ in-graph
    def normalize(self, strings: tf.Tensor) -> tf.Tensor:
        """In-graph normalisation (see the module docstring)."""
        if self.kind == "sentencepiece":
            return self._sp_preprocess(strings)
        x = tf.strings.regex_replace(strings, _CONTROL, "")
        if self.uncased:
            x = text.normalize_utf8(x, "NFD")
            x = tf.strings.regex_replace(x, r"\p{Mn}", "")
            x = tf.strings.regex_replace(x, "Σ", "σ")  # per-character lower case: no final-sigma rule
            x = tf.strings.lower(x, encoding="utf-8")
        return tf.strings.regex_replace(x, _CJK, r" \1 ")

    def _sp_preprocess(self, strings: tf.Tensor) -> tf.Tensor:
        """The original's `preprocess_text`: collapse spaces, normalise quotes, drop accents (NFKD), lower case."""
        x = tf.strings.strip(tf.strings.regex_replace(strings, r"\s+", " "))
        x = tf.strings.regex_replace(x, r"``|''|”|“", '"')
        x = tf.strings.regex_replace(x, r"‘|’", "'")
        x = text.normalize_utf8(x, "NFKD")
        x = tf.strings.regex_replace(x, r"\p{Mn}", "")
        return tf.strings.lower(x, encoding="utf-8") if self.uncased else x

    def tokenize(self, strings: tf.Tensor) -> tf.RaggedTensor:
        """Strings [batch] -> int32 ids RaggedTensor [batch, (tokens)]; works inside tf.function and tf.data."""
        strings = tf.convert_to_tensor(strings)
        normalised = self.normalize(strings)
        if self.kind == "wordpiece":
            return self._wordpiece.tokenize(normalised)
        return self._sentencepiece.tokenize(normalised)

    # ------------------------------------------------------------------------------------------ Python
    def encode(self, line: str) -> list[int]:
        return self.tokenize(tf.constant([line]))[0].numpy().tolist()

    def encode_batch(self, lines: list[str]) -> list[list[int]]:
        if not lines:
            return []
        ragged = self.tokenize(tf.constant(lines))
        values, splits = ragged.flat_values.numpy(), ragged.row_splits.numpy()
        return [values[splits[i]:splits[i + 1]].tolist() for i in range(len(lines))]

    def encode_with_offsets(self, line: str) -> tuple[list[int], list[int], list[int]]:
        """(ids, start, end): character offsets [start, end) of each token in `line` (for SQuAD)."""
        return self.encode_batch_with_offsets([line])[0]

    def encode_batch_with_offsets(self, lines: list[str]) -> list[tuple[list[int], list[int], list[int]]]:
        """`encode_with_offsets` of every line, tokenized in one call (a call per line costs more in Python
        around the op than the tokenizing itself)."""
        if not lines:
            return []
        prepare = normalise_with_sources if self.kind == "wordpiece" else sp_preprocess_with_sources
        normalised = [prepare(line, self.uncased) for line in lines]
        tokenizer = self._wordpiece if self.kind == "wordpiece" else self._sentencepiece
        ids, starts, ends = tokenizer.tokenize_with_offsets(tf.constant([n.text for n in normalised]))
        splits = ids.row_splits.numpy()
        ids, starts, ends = ids.flat_values.numpy(), starts.flat_values.numpy(), ends.flat_values.numpy()
        out = []
        for row, (line, norm) in enumerate(zip(lines, normalised)):
            part = slice(splits[row], splits[row + 1])
            char_at_byte = _char_at_byte(norm.text)
            source = np.asarray(norm.source + [len(line)], np.int64)
            source_end = (np.asarray(norm.source_end + [len(line)], np.int64) if norm.source_end is not None
                          else np.append(source[:-1] + 1, len(line)))
            first, last = char_at_byte[starts[part]], char_at_byte[ends[part]] - 1
            out.append((ids[part].tolist(), source[first].tolist(), source_end[np.maximum(last, first)].tolist()))
        return out

    def decode(self, ids: list[int]) -> str:
        """Tokens joined by spaces, `##` continuations glued (for reading, not an exact inverse)."""
        tokens = [self.vocab[i] for i in ids]
        if self.kind == "sentencepiece":
            return "".join(tokens).replace("▁", " ").strip()
        out = []
        for token in tokens:
            if token.startswith("##") and out:
                out[-1] += token[2:]
            else:
                out.append(token)
        return " ".join(out)

    # ---------------------------------------------------------------------------- token classes
    def is_func_token(self, token: str) -> bool:
        """The original's functional tokens (`<cls>`, ...), and the BERT-style `[CLS]` ... entries."""
        if token in ("<unk>", "[UNK]"):
            return False
        return (token.startswith("<") and token.endswith(">")) or (token.startswith("[") and token.endswith("]"))

    def start_id_table(self) -> np.ndarray:
        """bool [vocab]: token begins a word and is not functional (the original's `boundary` rule, semantics D1)."""
        if self.kind == "wordpiece":
            starts = [not t.startswith("##") for t in self.vocab]
        else:
            punctuation = set("!\"#$%&()*+,-./:;?@[\\]^_`{|}~")
            starts = [t.startswith("▁") or t in punctuation for t in self.vocab]
        return np.array([s and not self.is_func_token(t) for s, t in zip(starts, self.vocab)], bool)

    def func_id_table(self) -> np.ndarray:
        return np.array([self.is_func_token(t) for t in self.vocab], bool)


