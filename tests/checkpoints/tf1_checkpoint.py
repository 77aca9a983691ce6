"""Writes checkpoints the way the original release did: TF1 variables saved by `tf.compat.v1.train.Saver`.

This is test scaffolding only, an independent writer for the reader under test (the library itself reads with
`tf.train.load_checkpoint` and never builds a TF1 graph).
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf


def write_tf1_checkpoint(directory: str, tensors: dict[str, np.ndarray], step: int = 1000,
                         bfloat16: tuple[str, ...] = ()) -> str:
    """Saves `tensors` under their names (plus `global_step`) as `model.ckpt-<step>`; names in `bfloat16` are
    stored as bfloat16, as a TPU run with `--use_bfloat16` could have. Returns the checkpoint prefix."""
    os.makedirs(directory, exist_ok=True)
    graph = tf.Graph()
    with graph.as_default():
        variables = {}
        for name, value in tensors.items():
            dtype = tf.bfloat16 if name in bfloat16 else tf.as_dtype(value.dtype)
            variables[name] = tf.compat.v1.Variable(tf.constant(value, dtype=dtype), name=name)
        global_step = tf.compat.v1.train.get_or_create_global_step()
        variables["global_step"] = global_step
        saver = tf.compat.v1.train.Saver(var_list=variables)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            session.run(global_step.assign(step))
            return saver.save(session, os.path.join(directory, "model.ckpt"), global_step=step,
                              write_meta_graph=False)
