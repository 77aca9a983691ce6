"""`tf.train.Example` records built in the graph, a batch at a time (`tf.io.encode_proto`), not row by row in Python.

    records = serialize_examples({"input_ids": ids_int64, "input_mask": mask_float32})   # tf.string [B]
    tf.train.Example.FromString(records[0].numpy())                                     # the usual message

Each feature is a `[B, n]` tensor: integers become an `Int64List`, floats a `FloatList`. The message is built
from the inside out (list, `Feature`, map entry, `Features`, `Example`), each level one vectorised op over the
batch, so serialization runs in TensorFlow's threads instead of the Python loop that made record writing the
slow part of feature conversion.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable

import numpy as np
import tensorflow as tf

from funnel_tfm import file_io


def _encode(message_type: str, fields: dict[str, tf.Tensor]) -> tf.Tensor:
    """One `message_type` per row from `fields` (name -> [B, count] values; every row uses every value)."""
    values = list(fields.values())
    sizes = tf.stack([tf.fill([tf.shape(values[0])[0]], tf.shape(v)[1]) for v in values], axis=1)
    return tf.io.encode_proto(sizes, values, list(fields), message_type)


def serialize_examples(features: dict[str, tf.Tensor]) -> tf.Tensor:
    """Serialized `tf.train.Example`s `[B]` from `[B, n]` integer or float tensors (n may differ by feature)."""
    entries = []
    for name, values in features.items():
        values = tf.convert_to_tensor(values)
        if values.dtype.is_floating:
            listed = _encode("tensorflow.FloatList", {"value": tf.cast(values, tf.float32)})
            kind = "float_list"
        else:
            listed = _encode("tensorflow.Int64List", {"value": tf.cast(values, tf.int64)})
            kind = "int64_list"
        feature = _encode("tensorflow.Feature", {kind: listed[:, None]})
        key = tf.fill(tf.shape(feature)[:1], name)
        entries.append(_encode("tensorflow.Features.FeatureEntry", {"key": key[:, None], "value": feature[:, None]}))
    mapping = _encode("tensorflow.Features", {"feature": tf.stack(entries, axis=1)})
    return _encode("tensorflow.Example", {"features": mapping[:, None]})


def write_records(path: str, batches: Iterable[dict[str, np.ndarray]], meta: dict[str, Any]) -> None:
    """Writes every batch of `[B, n]` fields as `tf.train.Example`s to `path`, and `meta` as json beside it
    (`*.meta.json`); the records appear under their name only when all are written (no half files).

        write_records("out/train.tfrecord", ({"input_ids": ids} for ids in chunks), {"num_examples": 10})
    """
    file_io.makedirs(os.path.dirname(path) or ".")
    temporary = file_io.temporary_sibling(path)
    try:
        with tf.io.TFRecordWriter(temporary) as writer:
            for arrays in batches:
                for record in serialize_examples(arrays).numpy():
                    writer.write(record)
        file_io.atomic_write_text(path.replace("tfrecord", "meta.json"), json.dumps(meta, indent=4) + "\n")
        file_io.rename(temporary, path)
    finally:
        if file_io.exists(temporary):
            file_io.remove(temporary)
