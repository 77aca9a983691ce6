"""SavedModels that take raw strings: tokenize in-graph (tensorflow-text), run the model, return what a person
wants (label names and probabilities, or the regression score).

    write_saved_model(finetuned, "serving/cola/1")
    # in any process, with only TensorFlow and tensorflow-text imported:
    import tensorflow as tf, tensorflow_text  # noqa: F401  (registers the tokenizer ops)
    serve = tf.saved_model.load("serving/cola/1").signatures["serving_default"]
    serve(text=tf.constant(["a fine film"]))    # {"label": [b"1"], "probabilities": [[0.2, 0.8]], ...}

The tokenizer is the run's `Preprocessor` (the object that wrote the training records), so serving packs
`[CLS] A [SEP] B [SEP]` exactly as training did. Every output has the batch as its first axis (TensorFlow
Serving's row format needs that), so the label names come back per row (`label_names` [B, K]).
"""

from __future__ import annotations

from typing import Any, Callable

import keras
import tensorflow as tf

from funnel_tfm.data.preprocessing import Preprocessor
from funnel_tfm.serving.source import ExportError, FinetunedModel

TEXT = tf.TensorSpec([None], tf.string, name="text")
TEXT_PAIR = tf.TensorSpec([None], tf.string, name="text_pair")


def classification_outputs(logits: tf.Tensor, labels: list[str], regression: bool) -> dict[str, tf.Tensor]:
    """Logits [B, K] -> the serving outputs (shared by every signature of a classifier)."""
    logits = tf.cast(logits, tf.float32)
    if regression:
        return {"score": logits[:, 0], "logits": logits}
    probabilities = tf.nn.softmax(logits, axis=-1)
    names = tf.constant(labels, tf.string)
    batch = tf.shape(logits)[0]
    return {"label": tf.gather(names, tf.argmax(probabilities, axis=-1, output_type=tf.int32)),
            "probabilities": probabilities, "logits": logits,
            "label_names": tf.tile(names[tf.newaxis], [batch, 1])}


def classification_endpoint(model: keras.Model, preprocessor: Preprocessor, record: dict[str, Any]
                            ) -> tuple[Callable, list[tf.TensorSpec]]:
    """(function, input signature) of a classifier's raw-text signature: `text` (and `text_pair` for pairs)."""
    labels, regression = list(record.get("labels") or ()), bool(record.get("regression"))

    def serve_single(text: tf.Tensor) -> dict[str, tf.Tensor]:
        return classification_outputs(model(preprocessor(text), training=False), labels, regression)

    def serve_pair(text: tf.Tensor, text_pair: tf.Tensor) -> dict[str, tf.Tensor]:
        return classification_outputs(model(preprocessor(text, text_pair), training=False), labels, regression)

    if record.get("text_pair"):
        return serve_pair, [TEXT, TEXT_PAIR]
    return serve_single, [TEXT]


def write_saved_model(finetuned: FinetunedModel, directory: str) -> dict[str, Any]:
    """Writes the raw-text SavedModel of `finetuned` into the (staging) `directory`; returns its signature's
    description (inputs, outputs) for the export's metadata."""
    record = finetuned.record
    if record["task"] != "classification":
        raise ExportError(f"--format=saved_model: raw-text serving of task {record['task']!r} is not built yet "
                          f"(available: classification; use --format=keras or --format=hf)")
    preprocessor = finetuned.preprocessor()
    model = finetuned.task.model
    archive = keras.export.ExportArchive()
    archive.track(model)
    for trackable in preprocessor.tokenizer.trackables().values():
        archive.track(trackable)
    function, signature = classification_endpoint(model, preprocessor, record)
    archive.add_endpoint("serving_default", function, input_signature=signature)
    archive.write_out(directory, verbose=False)
    outputs = ["score", "logits"] if record.get("regression") else ["label", "probabilities", "logits", "label_names"]
    return {"signature": "serving_default", "inputs": [spec.name for spec in signature], "outputs": outputs}
