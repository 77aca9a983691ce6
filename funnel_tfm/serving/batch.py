"""Batch inference with an exported raw-text SavedModel: a file in, one JSON line per input line out.

    summary = predict_file("serving/cola/1", "texts.txt", "predictions.jsonl", batch_size=64, bad_lines="skip")
    summary["predicted"], summary["bad"], summary["examples_per_second"]

Every task's export works (classification, RACE, SQuAD, tagger): the task comes from the export's
`funnel_export.json`, the input fields from its signature (inputs.py reads them by name from `.jsonl` and `.tsv`,
or one text per line from `.txt`), and results.py shapes the outputs. The input is streamed, so its size is
bounded by disk, not memory. Output rows keep the input's order and line numbers (and `id`):
`{"line": 3, "label": "1", "probabilities": {"0": 0.2, "1": 0.8}}`, `{"line": 2, "prediction": "B", ...}`, and a
bad line gives `{"line": 4, "error": "empty"}` with `bad_lines="skip"`; with `bad_lines="fail"` the first bad
line stops the run with its file and line. The output appears only once complete (temporary name, renamed).
Progress goes to `progress(line)` about every `progress_secs` seconds.
"""

from __future__ import annotations

import collections
import json
import os
import time
from typing import Any, Callable, Iterable

import tensorflow as tf

from funnel_tfm import file_io
from funnel_tfm.serving.exporter import EXPORT_RECORD
from funnel_tfm.serving.inputs import Field, Row, read_rows
from funnel_tfm.serving.results import result_rows
from funnel_tfm.serving.source import ExportError

BAD_LINE_MODES = ("skip", "fail")


def read_export_record(export_dir: str) -> dict[str, Any]:
    """The export's funnel_export.json, checked to describe a raw-text SavedModel."""
    record_path = os.path.join(export_dir, EXPORT_RECORD)
    if not file_io.exists(record_path):
        raise ExportError(f"--model={export_dir}: no {EXPORT_RECORD}; expected a directory written by "
                          f"`python -m funnel_tfm.export --format=saved_model`")
    with file_io.open_file(record_path) as handle:
        try:
            metadata = json.load(handle)
        except json.JSONDecodeError as error:
            raise ExportError(f"{record_path}: not JSON ({error})") from None
    if not isinstance(metadata, dict) or not metadata.get("task"):
        raise ExportError(f"{record_path}: names no task; expected the funnel_export.json that "
                          f"`python -m funnel_tfm.export --format=saved_model` writes")
    if metadata.get("format") != "saved_model":
        raise ExportError(f"--model={export_dir}: a {metadata.get('format')!r} export; batch inference reads the "
                          f"raw-text SavedModel (export with --format=saved_model)")
    return metadata


def signature_fields(serve: Callable, metadata: dict[str, Any]) -> tuple[Field, ...]:
    """The signature's inputs as Fields, in the order the export recorded them: a [B] string input is one
    string, a [B, n] one (RACE's `options`) a list of n, whose TSV columns are the option names ("A".."D")."""
    specs = serve.structured_input_signature[1]
    order = [name for name in metadata.get("inputs", []) if name in specs] or sorted(specs)
    fields = []
    for name in order:
        shape = specs[name].shape
        if shape.rank == 1:
            fields.append(Field(name))
            continue
        count = shape[1]
        if shape.rank != 2 or count is None:
            raise ExportError(f"signature input {name!r} has shape {shape}; batch inference feeds [batch] strings "
                              f"or [batch, n] lists of strings")
        labels = list(metadata.get("labels") or [])
        columns = labels if len(labels) == count else [chr(ord("A") + i) for i in range(count)]
        fields.append(Field(name, count, tuple(columns)))
    return tuple(fields)


def load_served(export_dir: str) -> tuple[Callable, dict[str, Any], tuple[Field, ...]]:
    """(serving signature, export metadata, its input fields) of a `--format=saved_model` export."""
    metadata = read_export_record(export_dir)
    signature = metadata.get("signature", "serving_default")
    try:
        serve = tf.saved_model.load(export_dir).signatures[signature]
    except Exception as error:  # noqa: BLE001  a truncated or foreign saved_model.pb (protobuf's DecodeError too)
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        raise ExportError(f"--model={export_dir}: not a loadable SavedModel with signature {signature!r} "
                          f"({type(error).__name__}: {first}); export it again") from None
    return serve, metadata, signature_fields(serve, metadata)


def _batches(rows: Iterable[Row], batch_size: int) -> Iterable[tuple[list[Row], list[Row]]]:
    """(good rows of up to `batch_size`, bad rows met on the way) in input order."""
    good, seen = [], []
    for row in rows:
        seen.append(row)
        if row.error is None:
            good.append(row)
        if len(good) == batch_size:
            yield good, seen
            good, seen = [], []
    if seen:
        yield good, seen


def _predict(serve: Callable, fields: tuple[Field, ...], rows: list[Row], metadata: dict[str, Any]
             ) -> list[dict[str, Any]]:
    """The signature on a batch of good rows -> one result dict per row, its line (and id) first."""
    if not rows:
        return []
    inputs = {field.name: tf.constant([list(row.values[i]) if field.count else row.values[i] for row in rows])
              for i, field in enumerate(fields)}
    outputs = {name: value.numpy() for name, value in serve(**inputs).items()}
    results = result_rows(metadata["task"], outputs, metadata)
    return [{"line": row.line, **_id(row), **result} for row, result in zip(rows, results)]


def _id(row: Row) -> dict[str, Any]:
    return {} if row.id is None else {"id": row.id}


def predict_file(export_dir: str, input_path: str, output_path: str, batch_size: int = 64, bad_lines: str = "skip",
                 max_chars: int = 100_000, progress: Callable[[str], None] = print,
                 progress_secs: float = 5.0) -> dict[str, Any]:
    """See the module docstring; returns {"predicted", "bad": {reason: count}, "seconds", "examples_per_second",
    "output", "task"}."""
    if bad_lines not in BAD_LINE_MODES:
        raise ExportError(f"--bad_lines={bad_lines}: expected one of {', '.join(BAD_LINE_MODES)}")
    if not file_io.exists(input_path):
        raise FileNotFoundError(f"--input={input_path}: no such file")
    if os.path.realpath(output_path) == os.path.realpath(input_path):
        raise ExportError(f"--output={output_path} is the --input file; it would be replaced: name another file")
    if os.path.isdir(output_path):
        raise ExportError(f"--output={output_path} is a directory; name the file to write")
    serve, metadata, fields = load_served(export_dir)
    total_bytes, bad, predicted = max(1, os.path.getsize(input_path)), collections.Counter(), 0
    start = last = time.perf_counter()
    with file_io.atomic_output(output_path) as handle:
        for good, seen in _batches(read_rows(input_path, fields, max_chars), batch_size):
            for row in seen:
                if row.error is not None and bad_lines == "fail":
                    raise ExportError(f"{input_path}:{row.line}: {row.error} (--bad_lines=fail)")
            results = iter(_predict(serve, fields, good, metadata))
            for row in seen:
                if row.error is None:
                    handle.write(json.dumps(next(results)) + "\n")
                else:
                    bad[row.error.split(" (")[0]] += 1
                    handle.write(json.dumps({"line": row.line, **_id(row), "error": row.error}) + "\n")
            predicted += len(good)
            now = time.perf_counter()
            if now - last >= progress_secs:
                last = now
                done = seen[-1].end_byte / total_bytes
                progress(f"line {seen[-1].line:,} ({done:.0%}): {predicted:,} predicted, {sum(bad.values()):,} "
                         f"bad, {predicted / (now - start):,.1f} examples/s")
    seconds = time.perf_counter() - start
    return {"predicted": predicted, "bad": dict(bad), "seconds": seconds, "task": metadata["task"],
            "examples_per_second": predicted / seconds if seconds > 0 else 0.0, "output": output_path}
