"""The export formats, apart from the code that writes them: the entry point checks `--format` before it
imports TensorFlow, so a typo costs a second, not a TensorFlow start-up.

    check_format("saved_model")      # returns; "tflite" raises an ExportFormatError that lists the choices
"""

from __future__ import annotations

FORMATS = ("saved_model", "keras", "hf", "onnx")
PLANNED: dict[str, str] = {}  # format -> why not yet (named in the error)


class ExportFormatError(ValueError):
    """An unknown or not yet available `--format`."""


def check_format(fmt: str) -> None:
    if fmt in PLANNED:
        raise ExportFormatError(f"--format={fmt}: {PLANNED[fmt]}; available: {', '.join(FORMATS)}")
    if fmt not in FORMATS:
        raise ExportFormatError(f"--format={fmt}: unknown format; expected one of {', '.join(FORMATS)}")
