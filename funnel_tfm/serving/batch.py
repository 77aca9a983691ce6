"""Batch inference with an exported raw-text SavedModel: a file in, one JSON line per input line out.

    summary = predict_file("serving/cola/1", "texts.txt", "predictions.jsonl", batch_size=64, bad_lines="skip")
    summary["predicted"], summary["bad"], summary["examples_per_second"]

The input is streamed (see inputs.py), so its size is bounded by disk, not memory. Output rows keep the input's
order and line numbers: `{"line": 3, "label": "1", "probabilities": {"0": 0.2, "1": 0.8}}` (or `"score"`), and a
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

import numpy as np
import tensorflow as tf

from funnel_tfm import file_io
from funnel_tfm.serving.exporter import EXPORT_RECORD
from funnel_tfm.serving.inputs import Row, read_rows
from funnel_tfm.serving.source import ExportError

BAD_LINE_MODES = ("skip", "fail")


def load_served(export_dir: str) -> tuple[Callable, dict[str, Any]]:
    """(serving signature, export metadata) of a `--format=saved_model` export."""
    record_path = os.path.join(export_dir, EXPORT_RECORD)
    if not file_io.exists(record_path):
        raise ExportError(f"--model={export_dir}: no {EXPORT_RECORD}; expected a directory written by "
                          f"`python -m funnel_tfm.export --format=saved_model`")
    with file_io.open_file(record_path) as handle:
        metadata = json.load(handle)
    if metadata.get("format") != "saved_model":
        raise ExportError(f"--model={export_dir}: a {metadata.get('format')!r} export; batch inference reads the "
                          f"raw-text SavedModel (export with --format=saved_model)")
    if metadata.get("task") != "classification":
        raise ExportError(f"--model={export_dir}: a {metadata.get('task')!r} export; batch inference reads text "
                          f"classification and regression exports (serve the others' signatures directly)")
    return tf.saved_model.load(export_dir).signatures[metadata.get("signature", "serving_default")], metadata


def _rows_out(rows: list[Row], outputs: dict[str, np.ndarray], metadata: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for i, row in enumerate(rows):
        result: dict[str, Any] = {"line": row.line} if row.id is None else {"line": row.line, "id": row.id}
        if "score" in outputs:
            result["score"] = float(outputs["score"][i])
        else:
            result["label"] = outputs["label"][i].decode("utf-8")
            result["probabilities"] = {name: float(p) for name, p in zip(metadata["labels"], outputs["probabilities"][i])}
        out.append(result)
    return out


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


def predict_file(export_dir: str, input_path: str, output_path: str, batch_size: int = 64, bad_lines: str = "skip",
                 max_chars: int = 100_000, progress: Callable[[str], None] = print,
                 progress_secs: float = 5.0) -> dict[str, Any]:
    """See the module docstring; returns {"predicted", "bad": {reason: count}, "seconds", "examples_per_second"}."""
    if bad_lines not in BAD_LINE_MODES:
        raise ExportError(f"--bad_lines={bad_lines}: expected one of {', '.join(BAD_LINE_MODES)}")
    if not file_io.exists(input_path):
        raise FileNotFoundError(f"--input={input_path}: no such file")
    serve, metadata = load_served(export_dir)
    n_texts = 2 if metadata.get("text_pair") else 1
    names = ("text", "text_pair")[:n_texts]
    total_bytes, bad, predicted = max(1, os.path.getsize(input_path)), collections.Counter(), 0
    start = last = time.perf_counter()
    with file_io.atomic_output(output_path) as handle:
        for good, seen in _batches(read_rows(input_path, n_texts, max_chars), batch_size):
            for row in seen:
                if row.error is not None and bad_lines == "fail":
                    raise ExportError(f"{input_path}:{row.line}: {row.error} (--bad_lines=fail)")
            outputs = {}
            if good:
                inputs = {name: tf.constant([row.texts[i] for row in good]) for i, name in enumerate(names)}
                outputs = {key: value.numpy() for key, value in serve(**inputs).items()}
            results = iter(_rows_out(good, outputs, metadata))
            for row in seen:
                if row.error is None:
                    handle.write(json.dumps(next(results)) + "\n")
                else:
                    bad[row.error.split(" (")[0]] += 1
                    handle.write(json.dumps({"line": row.line, "error": row.error}) + "\n")
            predicted += len(good)
            now = time.perf_counter()
            if now - last >= progress_secs:
                last = now
                done = seen[-1].end_byte / total_bytes
                progress(f"line {seen[-1].line:,} ({done:.0%}): {predicted:,} predicted, {sum(bad.values()):,} "
                         f"bad, {predicted / (now - start):,.1f} examples/s")
    seconds = time.perf_counter() - start
    return {"predicted": predicted, "bad": dict(bad), "seconds": seconds,
            "examples_per_second": predicted / seconds if seconds > 0 else 0.0, "output": output_path}

