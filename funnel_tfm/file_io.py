"""File helpers that work for local and `gs://` paths and never leave a half-written file behind.

    atomic_write_text("out/net_config.json", text)   # written to a temporary name, then renamed

Local paths use Python's own file functions; paths with a scheme (`gs://`, `ram://`, ...) go through
`tf.io.gfile`, imported only then, so the model and checkpoint layers run where TensorFlow is not installed
(the JAX and PyTorch backends).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import uuid
from typing import IO, Iterator



def is_remote(path: str) -> bool:
    """True for a path with a file-system scheme (gs://, ram://, ...), which needs TensorFlow's gfile."""
    return "://" in path


def _gfile():
    import tensorflow as tf  # only for remote paths: the model layer must import without TensorFlow
    return tf.io.gfile


def open_file(path: str, mode: str = "r") -> IO:
    """Opens a local or remote (gs://, ...) file."""
    if is_remote(path):
        return _gfile().GFile(path, mode)
    return open(path, mode, encoding=None if "b" in mode else "utf-8")


def exists(path: str) -> bool:
    return _gfile().exists(path) if is_remote(path) else os.path.exists(path)


def sha256_file(path: str) -> str:
    """The hex sha256 of a file's bytes, e.g. a vocabulary's: what cached records are keyed by (an edited
    vocabulary at the same path must not reuse them)."""
    digest = hashlib.sha256()
    with open_file(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def makedirs(path: str) -> None:
    _gfile().makedirs(path) if is_remote(path) else os.makedirs(path, exist_ok=True)


def rename(source: str, target: str) -> None:
    """Renames `source` to `target`, replacing it (atomic on local file systems)."""
    _gfile().rename(source, target, overwrite=True) if is_remote(source) else os.replace(source, target)


def remove(path: str) -> None:
    _gfile().remove(path) if is_remote(path) else os.remove(path)


def temporary_sibling(path: str) -> str:
    """A unique name next to `path`, so that the final rename stays on one file system."""
    directory, name = os.path.split(path)
    return os.path.join(directory, f".{name}.tmp-{uuid.uuid4().hex[:8]}")


@contextlib.contextmanager
def atomic_output(path: str, mode: str = "w") -> Iterator[IO]:
    """Yields a handle on a temporary file that replaces `path` only when the block succeeds."""
    directory = os.path.dirname(path)
    if directory:
        makedirs(directory)
    temporary = temporary_sibling(path)
    try:
        with open_file(temporary, mode) as handle:
            yield handle
        rename(temporary, path)
    finally:
        if exists(temporary):
            remove(temporary)


def atomic_write_text(path: str, text: str) -> None:
    with atomic_output(path, "w") as handle:
        handle.write(text)


def atomic_write_bytes(path: str, data: bytes) -> None:
    with atomic_output(path, "wb") as handle:
        handle.write(data)


class OutputExistsError(FileExistsError):
    """The output path already holds something and overwriting was not asked for (or may never be replaced)."""


# Files only a training run's directory holds (not an export, whatever its format): such a directory is never
# replaced by an output, whatever overwrite says. training/run_dir.py owns these names (LOCK_FILE, RUN_RECORD,
# PRETRAIN_OBJECTIVE, METRICS); this lowest layer cannot import it, and tests/robustness checks they agree.
RUN_MARKERS = (".lock", "run_record.json", "pretrain_objective.json", "metrics.jsonl")


def holds_a_run(path: str) -> str | None:
    """The first run marker in `path` or one level below it, else None."""
    if not os.path.isdir(path):
        return None
    below = [path] + [os.path.join(path, name) for name in sorted(os.listdir(path))
                      if os.path.isdir(os.path.join(path, name))]
    for directory in below:
        for marker in RUN_MARKERS:
            if os.path.exists(os.path.join(directory, marker)):
                return os.path.join(directory, marker)
    return None


def check_output_spares(output: str, inputs: tuple[str, ...], flag: str) -> None:
    """An OutputExistsError when writing (or replacing) `output` would replace one of `inputs` (the same path,
    or a directory that contains it, e.g. `export --export_dir=<its own --model_dir>`) or a training run."""
    if is_remote(output):
        return
    target = os.path.realpath(output)
    for source in inputs:
        if not source or is_remote(source):
            continue
        source = os.path.realpath(source)
        if source == target or source.startswith(target.rstrip(os.sep) + os.sep):
            raise OutputExistsError(f"{flag}={output} would replace {source}, which this command reads: name "
                                    f"another output (nothing was written)")
    marker = holds_a_run(target)
    if marker is not None:
        raise OutputExistsError(f"{flag}={output} holds a training run ({marker}); an output never replaces one, "
                                f"whatever --overwrite says: name another directory (nothing was written)")


@contextlib.contextmanager
def atomic_directory(path: str, overwrite: bool = False) -> Iterator[str]:
    """Yields an empty staging directory that becomes `path` only when the block succeeds.

        with atomic_directory("out/model") as staging:
            write_files(staging)            # an exception here leaves "out/model" exactly as it was

    An existing `path` is an error unless `overwrite`; then it is replaced only after the new one is complete
    (moved aside, the new one renamed in, the old one deleted), so a crash never leaves neither.
    """
    path = os.path.abspath(path)
    if os.path.exists(path) and not overwrite and (not os.path.isdir(path) or os.listdir(path)):
        raise OutputExistsError(f"{path}: already exists (pass overwrite to replace it)")
    marker = holds_a_run(path)
    if marker is not None:
        raise OutputExistsError(f"{path} holds a training run ({marker}); an output never replaces one, whatever "
                                f"overwrite says: name another directory (nothing was written)")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    staging = temporary_sibling(path)
    os.makedirs(staging)
    try:
        yield staging
        if os.path.exists(path):
            old = temporary_sibling(path)
            os.rename(path, old)
            os.rename(staging, path)
            shutil.rmtree(old) if os.path.isdir(old) else os.remove(old)
        else:
            os.rename(staging, path)
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging)
