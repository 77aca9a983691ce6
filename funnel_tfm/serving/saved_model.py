"""SavedModels that take raw strings: tokenize in-graph (tensorflow-text), run the model, return what a person
wants (label names and probabilities, or the regression score; for RACE the chosen option, race_signature.py; word
tags, tagger_signature.py; the SQuAD answer and its offsets, squad_signature.py).

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
from funnel_tfm.serving.source import FinetunedModel

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


def _endpoint(finetuned: FinetunedModel, preprocessor: Preprocessor
              ) -> tuple[Callable, list[tf.TensorSpec], list[str]]:
    """(function, input signature, output names) of the task's raw-text signature."""
    record, model = finetuned.record, finetuned.task.model
    if record["task"] == "classification":
        function, signature = classification_endpoint(model, preprocessor, record)
        outputs = ["score", "logits"] if record.get("regression") else ["label", "probabilities", "logits",
                                                                          "label_names"]
        return function, signature, outputs
    if record["task"] == "multiple_choice":
        from funnel_tfm.serving.race_signature import multiple_choice_endpoint
        function, signature = multiple_choice_endpoint(model, preprocessor.tokenizer, record)
        return function, signature, ["prediction", "choice", "probabilities", "logits", "option_names"]
    if record["task"] == "tagging":
        from funnel_tfm.serving.tagger_signature import tagging_endpoint
        function, signature = tagging_endpoint(model, preprocessor.tokenizer, record)
        return function, signature, ["tags", "words", "num_words"]
    from funnel_tfm.serving.squad_signature import OUTPUTS, squad_endpoint
    function, signature = squad_endpoint(model, preprocessor.tokenizer, record)
    return function, signature, list(OUTPUTS)


def write_saved_model(finetuned: FinetunedModel, directory: str) -> dict[str, Any]:
    """Writes the raw-text SavedModel of `finetuned` into the (staging) `directory`; returns its signature's
    description (inputs, outputs) for the export's metadata."""
    # one tokenizer, tracked and used: a SentencePiece model is a resource the archive must hold
    preprocessor = finetuned.preprocessor()
    function, signature, outputs = _endpoint(finetuned, preprocessor)
    archive = keras.export.ExportArchive()
    archive.track(finetuned.task.model)
    for trackable in preprocessor.tokenizer.trackables().values():
        archive.track(trackable)
    archive.add_endpoint("serving_default", function, input_signature=signature)
    archive.write_out(directory, verbose=False)
    return {"signature": "serving_default", "inputs": [spec.name for spec in signature], "outputs": outputs}
