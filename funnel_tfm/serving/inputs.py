"""Input rows for batch inference, streamed from `.txt`, `.tsv` or `.jsonl`, with bad lines named, not guessed.

    for row in read_rows("texts.jsonl", max_chars=20000):
        row.line, row.texts, row.error      # (3, ("a fine film",), None) or (4, (), "empty")

* `.txt`: one text per line.
* `.tsv`: `text` or `text<TAB>text_pair` per line (no header, no quoting; a tab inside a text is not possible).
* `.jsonl`: one object per line with `text` (and `text_pair`); an optional `id` is carried to the output.

A bad line (empty, not UTF-8, over `max_chars` characters, not JSON, missing `text`, more columns than the model
takes) comes back with its `error` set, so the caller counts or rejects it; it is never silently dropped or
decoded with replacement characters (which would predict on text the user never wrote).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Iterator

from funnel_tfm import file_io

EXTENSIONS = (".txt", ".tsv", ".jsonl")


@dataclasses.dataclass(frozen=True)
class Row:
    line: int
    texts: tuple[str, ...]
    error: str | None = None
    id: Any = None
    end_byte: int = 0  # where the line ends in the file: progress without a counting pass


def input_kind(path: str) -> str:
    """"txt", "tsv" or "jsonl" from the extension; a ValueError names the accepted ones."""
    extension = os.path.splitext(path)[1].lower()
    if extension not in EXTENSIONS:
        raise ValueError(f"--input={path}: unknown extension {extension or '(none)'!r}; expected one of "
                         f"{', '.join(EXTENSIONS)}")
    return extension[1:]


def _parse(kind: str, text: str, number: int, n_texts: int) -> Row:
    if kind == "txt":
        return Row(number, (text,))
    if kind == "tsv":
        columns = tuple(text.split("\t"))
    else:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            return Row(number, (), f"not JSON ({error.msg})")
        if not isinstance(value, dict) or not isinstance(value.get("text"), str):
            return Row(number, (), 'no "text" string')
        columns = (value["text"],) + ((value["text_pair"],) if isinstance(value.get("text_pair"), str) else ())
        return _checked(Row(number, columns, id=value.get("id")), n_texts)
    return _checked(Row(number, columns), n_texts)


def _checked(row: Row, n_texts: int) -> Row:
    if len(row.texts) != n_texts:
        return dataclasses.replace(row, texts=(), error=f"{len(row.texts)} text(s), the model takes {n_texts}")
    if any(not text.strip() for text in row.texts):
        return dataclasses.replace(row, texts=(), error="empty")
    return row


def read_rows(path: str, n_texts: int = 1, max_chars: int = 100_000) -> Iterator[Row]:
    """Rows of `path` in order (see the module docstring); `n_texts`: 1, or 2 for a model of text pairs."""
    kind = input_kind(path)
    with file_io.open_file(path, "rb") as handle:
        offset = 0
        for number, raw in enumerate(handle, start=1):
            offset += len(raw)
            yield dataclasses.replace(_row(kind, raw.rstrip(b"\r\n"), number, n_texts, max_chars), end_byte=offset)


def _row(kind: str, raw: bytes, number: int, n_texts: int, max_chars: int) -> Row:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return Row(number, (), f"invalid UTF-8 (at byte {error.start})")
    if not text.strip():
        return Row(number, (), "empty")
    if len(text) > max_chars:
        return Row(number, (), f"too long ({len(text):,} characters, --max_chars={max_chars:,})")
    return _parse(kind, text, number, n_texts)
