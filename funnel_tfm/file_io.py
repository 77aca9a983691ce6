"""File helpers that work for local and `gs://` paths and never leave a half-written file behind.

    atomic_write_text("out/net_config.json", text)   # written to a temporary name, then renamed
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from typing import IO, Iterator

import tensorflow as tf


def open_file(path: str, mode: str = "r") -> IO:
    """Opens a local or remote (gs://, ...) file."""
    return tf.io.gfile.GFile(path, mode)


def temporary_sibling(path: str) -> str:
    """A unique name next to `path`, so that the final rename stays on one file system."""
    directory, name = os.path.split(path)
    return os.path.join(directory, f".{name}.tmp-{uuid.uuid4().hex[:8]}")


@contextlib.contextmanager
def atomic_output(path: str, mode: str = "w") -> Iterator[IO]:
    """Yields a handle on a temporary file that replaces `path` only when the block succeeds."""
    directory = os.path.dirname(path)
    if directory:
        tf.io.gfile.makedirs(directory)
    temporary = temporary_sibling(path)
    try:
        with tf.io.gfile.GFile(temporary, mode) as handle:
            yield handle
        tf.io.gfile.rename(temporary, path, overwrite=True)
    finally:
        if tf.io.gfile.exists(temporary):
            tf.io.gfile.remove(temporary)


def atomic_write_text(path: str, text: str) -> None:
    with atomic_output(path, "w") as handle:
        handle.write(text)


def atomic_write_bytes(path: str, data: bytes) -> None:
    with atomic_output(path, "wb") as handle:
        handle.write(data)


class OutputExistsError(FileExistsError):
    """The output path already holds something and overwriting was not asked for."""


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
