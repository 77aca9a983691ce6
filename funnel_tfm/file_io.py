"""File helpers that work for local and `gs://` paths and never leave a half-written file behind.

    atomic_write_text("out/net_config.json", text)   # written to a temporary name, then renamed
"""

from __future__ import annotations

import contextlib
import os
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
