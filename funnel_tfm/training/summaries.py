"""TensorBoard scalars without the tensorboard package.

    write_scalars(tf.summary.create_file_writer("run/train"), step=100, values={"loss": 2.5})
"""

from __future__ import annotations

import tensorflow as tf


def write_scalars(writer, step: int, values: dict[str, float], group: str = "train") -> None:
    """TensorBoard scalars `<group>/<name>` without the tensorboard package (TensorFlow 2.21 no longer pulls it
    in): the summary op with the `scalars` plugin metadata that TensorBoard's own `scalar()` writes."""
    from tensorflow.core.framework import summary_pb2  # TensorFlow's proto, no tensorboard dependency
    metadata = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
    with writer.as_default():
        for name, value in values.items():
            tf.summary.write(f"{group}/{name}", tf.constant(value, tf.float32), step=step, metadata=metadata)
    writer.flush()
