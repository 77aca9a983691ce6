"""Readers for the classifier's tasks: GLUE TSVs, text-classification CSVs, IMDB folders, and the user's own files.

    task = get_task("mrpc", "glue_data/MRPC")
    task.spec.labels, task.spec.main_metric        # ("0", "1"), "f1+accuracy"
    task.examples("train")[0]                      # Example(guid="train-1", text_a=..., text_b=..., label="1")
    get_task("custom", "my_data", CustomFormat(text_column="review", label_column="stars")).examples("dev")

The columns, header rows and label lists follow the original (docs: original spec 6.1.1). Deliberate differences:

* No row is dropped silently. An unknown label, a non-numeric regression label or invalid UTF-8 is a
  `ClassifierDataError` naming the file and line; so is a GLUE row with too few columns, except that the train and
  dev files may hold a few (at most 0.1% of their rows): those are skipped with a warning naming their lines, as
  the original skipped them (GLUE's QQP train.tsv has a handful of rows broken by a newline inside a question).
  In the user's own files every row must have every column, a text and a label. Blank lines are passed over.
* Unlabelled test rows get `label=None` (the original put `labels[0]` there), and a GLUE test file whose header
  starts with an `index` (or QQP's `id`) column gives each example that value as its guid, for the submission file.
* SNLI reads columns 7 and 8 (`sentence1`, `sentence2` of GLUE's SNLI files). The original used MNLI's columns
  8 and 9, which in those files are `sentence2` and `label1`: the annotator's label leaked into the input.
* SST-2 reads the standard `train.tsv` (`dev.tsv`, `test.tsv`) and falls back to the original's `*.detok.tsv`.
* The diagnostic set (AX) is `diagnostic.tsv` or `AX.tsv`, in `data_dir` or in its sibling `diagnostic/`.
* IMDB files are read in sorted name order (the original used unsorted `listdir` order) and get running guids.
* The text-classification CSVs give `test.csv` for both the dev and the test split (the original had no test split);
  guids carry the split asked for.
* A UTF-8 byte-order mark at the start of a file is dropped.

GLUE TSVs are read like the original: tab-separated, no quoting (quote characters stay part of the text). CSVs use
`"` quoting. Both go through `file_io`, so `gs://` paths work (IMDB folders must be local: listing needs `os`).
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import json
import math
import os
from typing import Any, Callable, Iterable, NamedTuple

from absl import logging

from funnel_tfm import file_io

SPLITS = ("train", "dev", "test")
MNLI_LABELS = ("contradiction", "entailment", "neutral")
NLI2_LABELS = ("entailment", "not_entailment")
BINARY_LABELS = ("0", "1")
CUSTOM_FORMATS = ("tsv", "csv", "jsonl")
# More distinct numeric training labels than this make an unspecified custom task a regression.
REGRESSION_MIN_DISTINCT = 10
# A GLUE train / dev file may have this fraction of its rows too short: they are skipped with a warning (the
# original skipped any number silently). More means the wrong file or task: an error.
GLUE_MAX_SHORT_FRACTION = 0.001
_BOM = "\ufeff"
FIELD_SIZE_LIMIT = 2 ** 31 - 1  # characters in one TSV / CSV field (csv's default: 131072)


class ClassifierDataError(ValueError):
    """Input that cannot be used; the message is `<file>:<line>: <what was wrong and what was expected>`."""


@dataclasses.dataclass(frozen=True)
class Example:
    """One row: `guid` is `"{split}-{row}"` (or a GLUE test file's own index), `label` None for unlabelled rows."""
    guid: str
    text_a: str
    text_b: str | None
    label: str | float | None


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """What a task is: label strings in the original's index order (`()` for regression), GLUE metrics, and how
    the best checkpoint is chosen (`main_metric`: "mcc", "pearson", "f1+accuracy" or "accuracy")."""
    name: str
    labels: tuple[str, ...]
    is_regression: bool
    metrics: tuple[str, ...]
    main_metric: str
    submit_name: str | None


@dataclasses.dataclass(frozen=True)
class CustomFormat:
    """The layout of the user's own files for `--task_name=custom`: `train.<ext>`, `dev.<ext>`, `test.<ext>`.

        CustomFormat(text_column="sentence", label_column="score", regression=True)     # a TSV/CSV with a header
        CustomFormat(text_column="1", label_column="0", has_header=False)               # columns by 0-based index

    Columns are header names (JSON keys for JSONL) or 0-based indices written as strings. `label_list` empty: the
    sorted distinct training labels (numerically when all are integers). `regression` None: regression iff no
    `label_list` is given, every training label is a finite number and there are more than 10 distinct values.
    `file_format` None: from the extension of the one `<split>.tsv|.csv|.jsonl` present. TSVs are read like
    GLUE's (no quoting); CSVs with `"` quoting. Test files may lack labels.
    """
    text_column: str = "text"
    text_b_column: str | None = None
    label_column: str = "label"
    label_list: tuple[str, ...] = ()
    regression: bool | None = None
    file_format: str | None = None
    has_header: bool = True


class _Row(NamedTuple):
    index: int       # 0-based row number in the file, header included (the original's guid counter)
    line: int        # 1-based line where the row starts
    fields: Any      # list[str] for TSV/CSV, dict for JSONL


# ---------------------------------------------------------------------------------------------------- cleaning
def clean_web_text(text: str) -> str:
    """The original's cleanup of scraped reviews: HTML breaks, quotes, links, escaped newlines, whitespace.

        clean_web_text('Great!<br />See <a href="x">here</a>\\\\n now')     # 'Great! See here now'

    Like the original, `</a>` is removed only from texts that held an `<a href=` tag, and a tag with no closing
    `>` cuts the text to what came before it plus the one character 8 positions after the tag's start (Q33; the
    original raised IndexError when there was no such character, here nothing is added).
    """
    text = text.replace("<br />", " ").replace("&quot;", '"').replace("<p>", " ")
    if "<a href=" in text:
        while "<a href=" in text:
            start = text.find("<a href=")
            end = text.find(">", start)
            if end != -1:
                text = text[:start] + text[end + 1:]
            else:
                text = text[:start] + text[start + 8:start + 9]
        text = text.replace("</a>", "")
    text = text.replace("\\n", " ").replace("\\", " ")
    return " ".join(text.split())


# ----------------------------------------------------------------------------------------------------- reading
def _decoded_lines(path: str) -> list[str]:
    """The file's lines with their line ends, strictly UTF-8; an empty file is an error."""
    with file_io.open_file(path, "rb") as handle:
        raw = handle.read()
    lines = []
    for number, line in enumerate(raw.splitlines(keepends=True), start=1):
        try:
            lines.append(line.decode("utf-8"))
        except UnicodeDecodeError as error:
            raise ClassifierDataError(f"{path}:{number}: invalid UTF-8 at byte {error.start} of the line; "
                                      f"expected a UTF-8 text file") from None
    if lines and lines[0].startswith(_BOM):
        lines[0] = lines[0][len(_BOM):]
    if not "".join(lines).strip():
        raise ClassifierDataError(f"{path}:1: the file is empty; expected one example per row")
    return lines


def read_rows(path: str, delimiter: str, quotechar: str | None) -> list[_Row]:
    """The non-blank rows of a TSV (`quotechar=None`: quotes are text, as GLUE's) or CSV file.

        read_rows("glue/CoLA/train.tsv", "\\t", None)[0]     # _Row(index=0, line=1, fields=["gj04", "1", ...])
    """
    lines = _decoded_lines(path)
    kind = "TSV" if delimiter == "\t" else "CSV"
    # csv's default limit of 128 Ki characters a field refused long documents (a whole report, a long email).
    csv.field_size_limit(max(csv.field_size_limit(), FIELD_SIZE_LIMIT))
    quoting = csv.QUOTE_NONE if quotechar is None else csv.QUOTE_MINIMAL
    # strict: a stray or unclosed quote is an error instead of silently swallowing the rows after it.
    reader = csv.reader(lines, delimiter=delimiter, quotechar=quotechar, quoting=quoting, strict=True)
    rows, start = [], 1
    try:
        for index, fields in enumerate(reader):
            if fields:  # a blank line holds no data: nothing is lost by passing over it
                rows.append(_Row(index, start, fields))
            start = reader.line_num + 1  # a quoted CSV field can span lines
    except csv.Error as error:
        raise ClassifierDataError(f"{path}:{start}: {error} in the row starting on this line; expected well-formed "
                                  f"{kind} (quotes closed, `\"\"` for a quote inside a quoted field)") from None
    return rows


def read_jsonl(path: str) -> list[_Row]:
    """One JSON object per non-blank line.

        read_jsonl("data/train.jsonl")[0].fields          # {"text": "...", "label": "pos"}
    """
    rows = []
    for number, line in enumerate(_decoded_lines(path), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise ClassifierDataError(f"{path}:{number}: not valid JSON ({error.msg} at column {error.colno}); "
                                      f"expected one JSON object per line") from None
        if not isinstance(value, dict):
            raise ClassifierDataError(f"{path}:{number}: a JSON {type(value).__name__}; expected one JSON object "
                                      f"per line")
        rows.append(_Row(len(rows), number, value))
    return rows


def _split_header(rows: list[_Row], path: str) -> tuple[_Row, list[_Row]]:
    if len(rows) < 2:
        raise ClassifierDataError(f"{path}:{rows[0].line}: only a header row; expected data rows after it")
    return rows[0], rows[1:]


def _first_existing(directory: str, names: Iterable[str], what: str) -> str:
    """The first of `names` that exists in `directory`; the error names every path looked for."""
    paths = [os.path.join(directory, name) for name in names]
    for path in paths:
        if file_io.exists(path):
            return path
    raise ClassifierDataError(f"{directory}: no {what}; looked for {', '.join(paths)}")


def _as_float(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _parse_label(value: str, spec: TaskSpec, path: str, line: int) -> str | float:
    value = value.strip()
    if spec.is_regression:
        number = _as_float(value)
        if number is None:
            raise ClassifierDataError(f"{path}:{line}: label {value!r} is not a number; task {spec.name!r} is a "
                                      f"regression and expects a finite number")
        return number
    if value not in spec.labels:
        raise ClassifierDataError(f"{path}:{line}: unknown label {value!r}; task {spec.name!r} expects one of "
                                  f"{list(spec.labels)}")
    return value


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split {split!r}; expected one of {', '.join(SPLITS)}")


# ------------------------------------------------------------------------------------------------------- tasks
class TaskData:
    """A task's spec and its examples per split ("train", "dev", "test").

        task = get_task("sts-b", "glue_data/STS-B")
        task.split_files("dev")      # ["glue_data/STS-B/dev.tsv"]
        task.examples("dev")         # [Example(guid="dev-1", text_a=..., text_b=..., label=5.0), ...]
    """

    def __init__(self, spec: TaskSpec, data_dir: str):
        self.spec = spec
        self.data_dir = data_dir

    def split_files(self, split: str) -> list[str]:
        """The file(s) or folders read for `split`; a ClassifierDataError names the paths looked for if absent."""
        raise NotImplementedError

    def examples(self, split: str) -> list[Example]:
        """Every example of `split`, in file order."""
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class _GlueLayout:
    """Where a GLUE task's fields are: files per split (first existing wins), columns, header rows."""
    files: dict[str, tuple[str, ...]]
    text_a: int
    text_b: int | None
    label: int | None  # -1: the last column
    test_text_a: int
    test_text_b: int | None
    header: bool = True
    test_header: bool = True


def _glue_files(dev: str = "dev", test: str = "test") -> dict[str, tuple[str, ...]]:
    return {"train": ("train.tsv",), "dev": (f"{dev}.tsv",), "test": (f"{test}.tsv",)}


def _pair_layout(text_a: int, text_b: int, label: int, files: dict | None = None) -> _GlueLayout:
    return _GlueLayout(files or _glue_files(), text_a, text_b, label, text_a, text_b)


_GLUE_LAYOUTS = {
    "cola": _GlueLayout(_glue_files(), 3, None, 1, 1, None, header=False),
    "sst-2": _GlueLayout({s: (f"{s}.tsv", f"{s}.detok.tsv") for s in SPLITS}, 0, None, 1, 1, None),
    "mrpc": _pair_layout(3, 4, 0),
    "qqp": _GlueLayout(_glue_files(), 3, 4, 5, 1, 2),
    "sts-b": _pair_layout(7, 8, 9),
    "mnli_matched": _pair_layout(8, 9, -1, _glue_files("dev_matched", "test_matched")),
    "mnli_mismatched": _pair_layout(8, 9, -1, _glue_files("dev_mismatched", "test_mismatched")),
    "snli": _pair_layout(7, 8, -1),
    "qnli": _pair_layout(1, 2, 3),
    "rte": _pair_layout(1, 2, 3),
    "wnli": _pair_layout(1, 2, 3),
    "diagnostic": _GlueLayout({"test": ("diagnostic.tsv", "AX.tsv")}, 1, 2, None, 1, 2),
}


def _glue_spec(name: str, labels: tuple[str, ...], submit_name: str | None) -> TaskSpec:
    metrics, main = {"cola": (("mcc",), "mcc"), "sts-b": (("pearson", "spearman"), "pearson"),
                     "mrpc": (("f1", "accuracy"), "f1+accuracy"), "qqp": (("f1", "accuracy"), "f1+accuracy"),
                     "diagnostic": (("mcc",), "mcc")}.get(name, (("accuracy",), "accuracy"))
    return TaskSpec(name, labels, name == "sts-b", metrics, main, submit_name)


_GLUE_SPECS = {spec.name: spec for spec in [
    _glue_spec("cola", BINARY_LABELS, "CoLA"), _glue_spec("sst-2", BINARY_LABELS, "SST-2"),
    _glue_spec("mrpc", BINARY_LABELS, "MRPC"), _glue_spec("qqp", BINARY_LABELS, "QQP"),
    _glue_spec("sts-b", (), "STS-B"), _glue_spec("mnli_matched", MNLI_LABELS, "MNLI-m"),
    _glue_spec("mnli_mismatched", MNLI_LABELS, "MNLI-mm"), _glue_spec("snli", MNLI_LABELS, None),
    _glue_spec("qnli", NLI2_LABELS, "QNLI"), _glue_spec("rte", NLI2_LABELS, "RTE"),
    _glue_spec("wnli", BINARY_LABELS, "WNLI"), _glue_spec("diagnostic", MNLI_LABELS, "AX")]}


class _GlueTask(TaskData):
    """A GLUE task: tab-separated, unquoted, fixed columns (original spec 6.1.1)."""

    def __init__(self, spec: TaskSpec, data_dir: str):
        super().__init__(spec, data_dir)
        self.layout = _GLUE_LAYOUTS[spec.name]

    def _directories(self) -> list[str]:
        if self.spec.name != "diagnostic":
            return [self.data_dir]
        # The original read AX from the sibling folder `diagnostic` of the MNLI data dir.
        parent = os.path.dirname(self.data_dir.rstrip("/")) or "."
        return [self.data_dir, os.path.join(parent, "diagnostic")]

    def split_files(self, split: str) -> list[str]:
        _check_split(split)
        names = self.layout.files.get(split)
        if names is None:
            raise ClassifierDataError(f"{self.data_dir}: task {self.spec.name!r} has no {split} split; it has "
                                      f"{', '.join(self.layout.files)}")
        paths = [os.path.join(d, n) for d in self._directories() for n in names]
        for path in paths:
            if file_io.exists(path):
                return [path]
        hint = ""
        if self.spec.name == "mrpc" and file_io.exists(os.path.join(self.data_dir, "msr_paraphrase_train.txt")):
            # The original read GLUE's split files; the Microsoft release's two files are not its three splits.
            hint = (" (msr_paraphrase_train.txt / msr_paraphrase_test.txt are the Microsoft release: GLUE's "
                    "download_glue_data.py --tasks=MRPC splits them into train.tsv, dev.tsv and test.tsv)")
        raise ClassifierDataError(f"{self.data_dir}: no {split} file for task {self.spec.name!r}; looked for "
                                  f"{', '.join(paths)}{hint}")

    def _columns(self, split: str) -> tuple[int, int | None, int | None]:
        if split == "test":
            return self.layout.test_text_a, self.layout.test_text_b, None
        return self.layout.text_a, self.layout.text_b, self.layout.label

    def examples(self, split: str) -> list[Example]:
        path = self.split_files(split)[0]
        rows = read_rows(path, "\t", None)
        text_a, text_b, label = self._columns(split)
        needed = 1 + max(c for c in (text_a, text_b, label) if c is not None)
        if label == -1:  # the last column: it must come after the texts
            needed = 2 + max(c for c in (text_a, text_b) if c is not None)
        indexed = False
        if self.layout.test_header if split == "test" else self.layout.header:
            header, rows = _split_header(rows, path)
            indexed = split == "test" and header.fields[0].strip().lower() in ("index", "id")
        out, short = [], []
        for row in rows:
            if len(row.fields) < needed:
                short.append(row)
                continue
            out.append(Example(
                guid=row.fields[0] if indexed else f"{split}-{row.index}",
                text_a=row.fields[text_a],
                text_b=(row.fields[text_b] or None) if text_b is not None else None,
                label=None if label is None else _parse_label(row.fields[label], self.spec, path, row.line)))
        if short:
            self._skip_short_rows(short, len(rows), path, split, needed, (text_a, text_b, label))
        return out

    def _skip_short_rows(self, short: list[_Row], total: int, path: str, split: str, needed: int,
                         columns: tuple[int, int | None, int | None]) -> None:
        """Warns about a few short rows of a train / dev file; raises on a test file (its predictions must cover
        every index) or on more than GLUE_MAX_SHORT_FRACTION of the rows."""
        text_a, text_b, label = columns
        first = short[0]
        problem = (f"{len(first.fields)} tab-separated columns, expected at least {needed} for {self.spec.name} "
                   f"{split} (text_a in column {text_a}"
                   + (f", text_b in column {text_b}" if text_b is not None else "")
                   + (f", label in column {label}" if label is not None else "") + ")")
        if split == "test" or len(short) > total * GLUE_MAX_SHORT_FRACTION:
            extra = "" if len(short) == 1 else (f"; {len(short)} of the {total} rows are that short (a train or dev "
                                                f"file may have at most {GLUE_MAX_SHORT_FRACTION:.1%} short rows, "
                                                f"skipped; a test file none)")
            raise ClassifierDataError(f"{path}:{first.line}: {problem}{extra}")
        lines = ", ".join(str(row.line) for row in short[:10]) + (", ..." if len(short) > 10 else "")
        logging.warning("%s: skipped %d of %d rows with too few columns, as the original did (lines %s); the first: "
                        "%s", path, len(short), total, lines, problem)


_TEXT_TASKS = {  # name: (labels, text_b column); the label is column 0 and text_a column 1
    "yelp5": (tuple("12345"), None), "yelp2": (("1", "2"), None),
    "amazon5": (tuple("12345"), 2), "amazon2": (("1", "2"), 2),
    "dbpedia": (tuple(str(i) for i in range(1, 15)), 2), "ag": (("1", "2", "3", "4"), 2),
}


class _TextClassificationTask(TaskData):
    """Yelp / Amazon / DBpedia / AG CSVs: `label,text_a[,text_b]`, no header, texts cleaned by clean_web_text."""

    def split_files(self, split: str) -> list[str]:
        _check_split(split)
        name = "train.csv" if split == "train" else "test.csv"  # the original evaluated on test.csv
        return [_first_existing(self.data_dir, [name], f"{split} file for task {self.spec.name!r}")]

    def examples(self, split: str) -> list[Example]:
        path = self.split_files(split)[0]
        text_b = _TEXT_TASKS[self.spec.name][1]
        needed = 3 if text_b is not None else 2
        out = []
        for row in read_rows(path, ",", '"'):
            if len(row.fields) < needed:
                raise ClassifierDataError(f"{path}:{row.line}: {len(row.fields)} comma-separated columns, expected "
                                          f"at least {needed} (label, text" + (", text_b)" if text_b else ")"))
            out.append(Example(
                guid=f"{split}-{row.index}",
                text_a=clean_web_text(row.fields[1]),
                text_b=(clean_web_text(row.fields[text_b]) or None) if text_b is not None else None,
                label=_parse_label(row.fields[0], self.spec, path, row.line)))
        return out


class _ImdbTask(TaskData):
    """`data_dir/train/{neg,pos}/*txt`; dev and test are `data_dir/test/{neg,pos}`. Local folders only."""

    def split_files(self, split: str) -> list[str]:
        _check_split(split)
        base = os.path.join(self.data_dir, "train" if split == "train" else "test")
        folders = [os.path.join(base, label) for label in self.spec.labels]
        missing = [f for f in folders if not os.path.isdir(f)]
        if missing:
            raise ClassifierDataError(f"{self.data_dir}: no {split} folders for task 'imdb'; looked for "
                                      f"{', '.join(missing)}")
        return folders

    def examples(self, split: str) -> list[Example]:
        out = []
        for label, folder in zip(self.spec.labels, self.split_files(split)):
            names = sorted(n for n in os.listdir(folder) if n.endswith("txt"))
            if not names:
                raise ClassifierDataError(f"{folder}: no *txt files; expected one review per file")
            for name in names:
                text = clean_web_text("".join(_decoded_lines(os.path.join(folder, name))).strip())
                out.append(Example(f"{split}-{len(out)}", text, None, label))
        return out


# ------------------------------------------------------------------------------------------------------ custom
_MISSING = object()


def _custom_file(data_dir: str, split: str, file_format: str | None) -> tuple[str, str]:
    """(path, format) of `<split>.<ext>`; without a format exactly one of the three extensions may be present."""
    formats = [file_format] if file_format else list(CUSTOM_FORMATS)
    paths = [os.path.join(data_dir, f"{split}.{f}") for f in formats]
    present = [(p, f) for p, f in zip(paths, formats) if file_io.exists(p)]
    if not present:
        raise ClassifierDataError(f"{data_dir}: no {split} file for the custom task; looked for {', '.join(paths)}")
    if len(present) > 1:
        raise ClassifierDataError(f"{data_dir}: {' and '.join(p for p, _ in present)} both exist; pass "
                                  f"file_format to choose")
    return present[0]


def _column_lookup(column: str, header: list[str] | None, path: str, line: int) -> Callable[[Any], Any]:
    """A function row fields -> the column's value (or _MISSING); `column` is a header name or a 0-based index."""
    if header is not None and column in header:
        index = header.index(column)
    elif column.isdigit():
        index = int(column)
    elif header is None:
        raise ClassifierDataError(f"{path}:{line}: column {column!r} is not a 0-based index and the file has no "
                                  f"header (has_header=False); expected an index such as '0'")
    else:
        raise ClassifierDataError(f"{path}:{line}: column {column!r} is not in the header {header}; expected a "
                                  f"header name or a 0-based index")
    return lambda fields: fields[index] if index < len(fields) else _MISSING


def _json_text(value: Any, key: str, path: str, line: int) -> Any:
    if value is _MISSING or value is None:
        return value
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ClassifierDataError(f"{path}:{line}: key {key!r} holds a JSON {type(value).__name__}; expected a "
                                  f"string or a number")
    return value if isinstance(value, str) else str(value)


class _CustomTask(TaskData):
    """The user's TSV / CSV / JSONL files (see CustomFormat)."""

    def __init__(self, data_dir: str, fmt: CustomFormat):
        if fmt.file_format not in (None,) + CUSTOM_FORMATS:
            raise ValueError(f"file_format {fmt.file_format!r}; expected one of {', '.join(CUSTOM_FORMATS)}")
        if fmt.regression and fmt.label_list:
            raise ValueError("custom task: a label_list was given with regression=True; a regression has no labels")
        self.fmt = fmt
        super().__init__(self._spec(data_dir), data_dir)

    def split_files(self, split: str) -> list[str]:
        _check_split(split)
        return [_custom_file(self.data_dir, split, self.fmt.file_format)[0]]

    def _records(self, split: str, data_dir: str | None = None) -> tuple[str, list[tuple[int, int, dict]]]:
        """(path, [(row index, line, {"text_a", "text_b", "label"} -> raw value or _MISSING)])."""
        path, file_format = _custom_file(data_dir or self.data_dir, split, self.fmt.file_format)
        columns = {"text_a": self.fmt.text_column, "text_b": self.fmt.text_b_column, "label": self.fmt.label_column}
        columns = {role: c for role, c in columns.items() if c is not None}
        if file_format == "jsonl":
            return path, [(r.index, r.line, {role: _json_text(r.fields.get(c, _MISSING), c, path, r.line)
                                             for role, c in columns.items()}) for r in read_jsonl(path)]
        rows = read_rows(path, "\t" if file_format == "tsv" else ",", None if file_format == "tsv" else '"')
        header, line, width = None, rows[0].line, len(rows[0].fields)
        if self.fmt.has_header:
            first, rows = _split_header(rows, path)
            header = [name.strip() for name in first.fields]
        _check_widths(rows, width, "the header" if header is not None else "the first row", file_format, path)
        # In a test file the label column may be absent altogether.
        lookups = {role: _column_lookup(c, header, path, line) for role, c in columns.items()
                   if not (role == "label" and split == "test" and header is not None and c not in header
                           and not c.isdigit())}
        return path, [(r.index, r.line, {role: get(r.fields) for role, get in lookups.items()}) for r in rows]

    def _spec(self, data_dir: str) -> TaskSpec:
        fmt = self.fmt
        labels, regression = tuple(fmt.label_list), bool(fmt.regression)
        if not labels and fmt.regression is not True:
            path, records = self._records("train", data_dir)
            raw = [self._required(values, "label", path, line).strip() for _, line, values in records]
            numbers = [_as_float(value) for value in raw]
            if fmt.regression is None:
                regression = None not in numbers and len(set(numbers)) > REGRESSION_MIN_DISTINCT
            if not regression:
                _check_label_spellings(raw, [line for _, line, _ in records], path)
                labels = _sorted_labels(set(raw))
        if regression:
            return TaskSpec("custom", (), True, ("pearson", "spearman"), "pearson", None)
        metrics = ("accuracy", "f1", "mcc") if len(labels) == 2 else ("accuracy",)
        return TaskSpec("custom", labels, False, metrics, "accuracy", None)

    def _required(self, values: dict, role: str, path: str, line: int) -> str:
        """The row's value for `role`; a missing, null or blank value is an error (a blank label would become a
        class of its own, a blank text an example of nothing)."""
        value = values.get(role, _MISSING)
        column = {"text_a": self.fmt.text_column, "text_b": self.fmt.text_b_column, "label": self.fmt.label_column}
        what = "key" if path.endswith(".jsonl") else "column"
        if value is _MISSING or value is None:
            raise ClassifierDataError(f"{path}:{line}: no value for the {role} {what} {column[role]!r}; expected "
                                      f"every row to have it")
        if not value.strip():
            raise ClassifierDataError(f"{path}:{line}: the {role} {what} {column[role]!r} is empty; expected "
                                      + ("a label" if role == "label" else "a text") + " in every row")
        return value

    def examples(self, split: str) -> list[Example]:
        _check_split(split)
        path, records = self._records(split)
        out = []
        for index, line, values in records:
            text_b = values.get("text_b") if self.fmt.text_b_column is not None else None
            if text_b is _MISSING:
                text_b = self._required(values, "text_b", path, line)
            label = values.get("label", _MISSING)
            if split == "test" and isinstance(label, str) and not label.strip():
                label = None  # an empty label cell in a test file: unlabelled
            if split != "test" or label not in (_MISSING, None):
                label = _parse_label(self._required(values, "label", path, line), self.spec, path, line)
            out.append(Example(f"{split}-{index}", self._required(values, "text_a", path, line), text_b or None,
                               None if label in (_MISSING, None) else label))
        return out


def _check_widths(rows: list[_Row], width: int, reference: str, file_format: str, path: str) -> None:
    """Every row of the user's TSV / CSV has `width` columns: a row with more or fewer has its values in the
    wrong columns (a CSV text with an unquoted comma would otherwise give its second half as the label)."""
    for row in rows:
        if len(row.fields) != width:
            kind = "tab-separated" if file_format == "tsv" else "comma-separated"
            hint = " (quote a text that holds a comma: \"a, b\")" if file_format == "csv" else ""
            raise ClassifierDataError(f"{path}:{row.line}: {len(row.fields)} {kind} columns, expected {width} as "
                                      f"{reference} has{hint}")


def _check_label_spellings(raw: list[str], lines: list[int], path: str) -> None:
    """Two spellings of one number ("1" and "1.0", JSON's 1 and 1.0) would become two classes: an error naming
    both and where each first occurs."""
    first: dict[float, tuple[str, int]] = {}
    for value, line in zip(raw, lines):
        number = _as_float(value)
        if number is None:
            continue
        seen = first.setdefault(number, (value, line))
        if seen[0] != value:
            raise ClassifierDataError(f"{path}:{line}: label {value!r} is the number of label {seen[0]!r} (line "
                                      f"{seen[1]}) spelled another way; they would be two classes: write each label "
                                      f"one way (or give --label_list)")


def check_training_labels(examples: list[Example], spec: TaskSpec, files: list[str]) -> None:
    """A classifier's training split must hold at least two classes: with one, the model learns a constant and
    scores that class's share (1.0 where dev has the same one class). Regression is not checked."""
    if spec.is_regression:
        return
    counts = collections.Counter(example.label for example in examples if example.label is not None)
    if len(counts) < 2:
        found = ", ".join(f"{label!r} ({count} rows)" for label, count in counts.items()) or "no labelled rows"
        raise ClassifierDataError(f"{', '.join(files)}: the training split has one class only: {found}; a "
                                  f"classifier needs examples of at least two of {list(spec.labels)}")


def _sorted_labels(labels: set[str]) -> tuple[str, ...]:
    """Numerically when every label is an integer (so "10" follows "9"), else as strings."""
    try:
        return tuple(sorted(labels, key=int))
    except ValueError:
        return tuple(sorted(labels))


# ----------------------------------------------------------------------------------------------------- lookup
_ALIASES = {"sst2": "sst-2", "stsb": "sts-b", "sts": "sts-b", "mnli": "mnli_matched", "mnli-m": "mnli_matched",
            "mnli_m": "mnli_matched", "mnli-matched": "mnli_matched", "mnli-mm": "mnli_mismatched",
            "mnli_mm": "mnli_mismatched", "mnli-mismatched": "mnli_mismatched", "ax": "diagnostic",
            "yelp-2": "yelp2", "yelp-5": "yelp5", "amazon-2": "amazon2", "amazon-5": "amazon5",
            "ag_news": "ag", "ag-news": "ag", "dbpedia-14": "dbpedia"}


def task_names() -> tuple[str, ...]:
    """The canonical task names: GLUE, text classification, imdb, custom."""
    return tuple(_GLUE_SPECS) + tuple(_TEXT_TASKS) + ("imdb", "custom")


def canonical_task_name(task_name: str) -> str:
    """Lower-cased, aliases resolved: "MNLI" -> "mnli_matched", "SST2" -> "sst-2"; unknown names are errors."""
    name = task_name.strip().lower()
    name = _ALIASES.get(name, name)
    if name not in task_names():
        raise ValueError(f"unknown task {task_name!r}; known tasks: {', '.join(task_names())} "
                         f"(aliases: {', '.join(sorted(_ALIASES))})")
    return name


def get_task(task_name: str, data_dir: str, custom: CustomFormat | None = None) -> TaskData:
    """The task's reader for `data_dir`.

        get_task("MNLI", "glue_data/MNLI").examples("dev")         # dev_matched.tsv
        get_task("custom", "data", CustomFormat(regression=True))   # train/dev/test.{tsv,csv,jsonl}
    """
    name = canonical_task_name(task_name)
    if name in _GLUE_SPECS:
        return _GlueTask(_GLUE_SPECS[name], data_dir)
    if name in _TEXT_TASKS:
        labels = _TEXT_TASKS[name][0]
        return _TextClassificationTask(TaskSpec(name, labels, False, ("accuracy",), "accuracy", None), data_dir)
    if name == "imdb":
        return _ImdbTask(TaskSpec("imdb", ("neg", "pos"), False, ("accuracy",), "accuracy", None), data_dir)
    return _CustomTask(data_dir, custom or CustomFormat())
