"""Input rows for batch inference, streamed from `.txt`, `.tsv` or `.jsonl`, with bad lines named, not guessed.

    fields = (Field("article"), Field("question"), Field("options", count=4, columns=("A", "B", "C", "D")))
    for row in read_rows("race.jsonl", fields, max_chars=20000):
        row.line, row.values, row.error    # (3, ("The storm ...", "Why _ ?", ("a", "b", "c", "d")), None)
                                           # or (4, (), "empty")

The fields are the serving signature's inputs (batch.py reads them from the export): single strings (`text`,
`question`, ...) or lists of a fixed length (RACE's `options`).

* `.jsonl`: one object per line holding every field by name (`{"question": ..., "context": ...}`; `options` a
  list of strings); an optional `id` is carried to the output; other keys are ignored.
* `.tsv`: a header line naming the columns (`article<TAB>question<TAB>A<TAB>B<TAB>C<TAB>D`; a list field is one
  column per item, named as its `columns`; an optional `id` column; other columns are ignored). Only the
  classifier's layout, `text` or `text<TAB>text_pair`, may omit the header (then the columns are read in that
  order). No quoting: a text cannot hold a tab.
* `.txt`: one text per line, for a model of one string field (a classifier of single texts, the tagger).

A bad line (empty, not UTF-8, over `max_chars` characters, not JSON, a missing field, the wrong number of
columns or options) comes back with its `error` set, "reason (detail)" (batch.py counts by the reason), so the
caller counts or rejects it; it is never silently dropped or decoded with replacement characters (which would
predict on text the user never wrote). A file that cannot be read at all (unknown extension, `.txt` for a model
of several fields, a `.tsv` without the header the model needs) is a ValueError before the first row.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Iterator, Sequence

from funnel_tfm import file_io

EXTENSIONS = (".txt", ".tsv", ".jsonl")
ID = "id"
HEADERLESS = (("text",), ("text", "text_pair"))  # a classifier's (or the tagger's) TSV may omit the header


@dataclasses.dataclass(frozen=True)
class Field:
    """One input of the serving signature: a string, or (`count` > 0) a list of `count` strings whose TSV columns
    are named `columns`."""

    name: str
    count: int = 0
    columns: tuple[str, ...] = ()

    def tsv_columns(self) -> tuple[str, ...]:
        return self.columns if self.count else (self.name,)


@dataclasses.dataclass(frozen=True)
class Row:
    line: int
    values: tuple[Any, ...]  # one per field: a string, or a tuple of strings for a list field
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


def _describe(fields: Sequence[Field]) -> str:
    return ", ".join(f"{field.name} ({field.count} strings)" if field.count else field.name for field in fields)


def _checked(row: Row) -> Row:
    """Blank fields (or options) make the row "empty": the model would answer about nothing."""
    strings = [item for value in row.values for item in (value if isinstance(value, tuple) else (value,))]
    if any(not text.strip() for text in strings):
        return dataclasses.replace(row, values=(), error="empty")
    return row


def parse_json(text: str, number: int, fields: Sequence[Field]) -> Row:
    """One `.jsonl` line -> Row (see the module docstring)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        return Row(number, (), f"not JSON ({error.msg})")
    if not isinstance(value, dict):
        return Row(number, (), f"not a JSON object (expected {_describe(fields)})")
    values = []
    for field in fields:
        item = value.get(field.name)
        if not field.count:
            if not isinstance(item, str):
                return Row(number, (), f'no "{field.name}" string')
            values.append(item)
        elif not isinstance(item, list) or not all(isinstance(x, str) for x in item):
            return Row(number, (), f'no "{field.name}" list of strings')
        elif len(item) != field.count:
            return Row(number, (), f"wrong {field.name} count ({len(item)}, the model takes {field.count})")
        else:
            values.append(tuple(item))
    if len(fields) == 1 and not fields[0].count and isinstance(value.get("text_pair"), str):
        return Row(number, (), 'unexpected "text_pair" (the model takes single texts)')  # a pair task's file
    return _checked(Row(number, tuple(values), id=value.get(ID)))


@dataclasses.dataclass(frozen=True)
class TsvLayout:
    """Where each field's columns sit in a TSV line; `header` says whether line 1 named them."""

    positions: tuple[tuple[int, ...], ...]  # per field: its column indices
    width: int                              # the number of columns a line must have
    header: bool
    id_column: int | None = None


def tsv_layout(first_line: str, fields: Sequence[Field], path: str) -> TsvLayout:
    """The layout a TSV file's first line gives: a header naming every field's columns, or (for `text` and
    `text_pair` only) no header and the fields in order; a ValueError says which header the model needs."""
    names = first_line.split("\t")
    wanted = [column for field in fields for column in field.tsv_columns()]
    if all(column in names for column in wanted) and len(set(names)) == len(names):
        positions = tuple(tuple(names.index(column) for column in field.tsv_columns()) for field in fields)
        return TsvLayout(positions, len(names), True, names.index(ID) if ID in names else None)
    if tuple(field.name for field in fields) in HEADERLESS:
        return TsvLayout(tuple((i,) for i in range(len(fields))), len(fields), False)
    raise ValueError(f"{path}:1: expected a header line naming the columns {', '.join(wanted)} (tab-separated, in "
                     f"any order; an optional {ID} column), found {first_line[:200]!r}")


def parse_tsv(text: str, number: int, fields: Sequence[Field], layout: TsvLayout) -> Row:
    """One `.tsv` line -> Row, by the file's layout."""
    columns = text.split("\t")
    if len(columns) != layout.width:
        expected = f"the header has {layout.width}" if layout.header else f"the model takes {layout.width}"
        return Row(number, (), f"wrong column count ({len(columns)}, {expected})")
    values = tuple(tuple(columns[i] for i in at) if field.count else columns[at[0]]
                   for field, at in zip(fields, layout.positions))
    row_id = columns[layout.id_column] if layout.id_column is not None else None
    return _checked(Row(number, values, id=row_id))


def read_rows(path: str, fields: Sequence[Field], max_chars: int = 100_000) -> Iterator[Row]:
    """Rows of `path` in order (see the module docstring); a TSV header line yields no row."""
    kind = input_kind(path)
    if kind == "txt" and (len(fields) != 1 or fields[0].count):
        raise ValueError(f"--input={path}: a .txt file holds one text per line, and this model takes "
                         f"{_describe(fields)}; write .jsonl (one object per line) or .tsv with a header")
    layout = None
    with file_io.open_file(path, "rb") as handle:
        offset = 0
        for number, raw in enumerate(handle, start=1):
            offset += len(raw)
            raw = raw.rstrip(b"\r\n")
            if number == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark, as spreadsheets write one
            if kind == "tsv" and layout is None:
                layout = tsv_layout(raw.decode("utf-8", errors="replace"), fields, path)
                if layout.header:
                    continue
            row = _row(kind, raw, number, fields, max_chars, layout)
            yield dataclasses.replace(row, end_byte=offset)


def _row(kind: str, raw: bytes, number: int, fields: Sequence[Field], max_chars: int,
         layout: TsvLayout | None) -> Row:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return Row(number, (), f"invalid UTF-8 (at byte {error.start})")
    if not text.strip():
        return Row(number, (), "empty")
    if len(text) > max_chars:
        return Row(number, (), f"too long ({len(text):,} characters, --max_chars={max_chars:,})")
    if kind == "txt":
        return Row(number, (text,))
    if kind == "tsv":
        return parse_tsv(text, number, fields, layout)
    return parse_json(text, number, fields)
