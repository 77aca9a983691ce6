"""Real-text sample features for a finetuned model: what the ONNX export traces and checks onnxruntime against.

    features = sample_features(finetuned)          # {"token_ids": int32 [4, L], "segment_ids": ..., ...}
    features = sample_features(finetuned, backbone_only=True)

Packed by the run's own tokenizer and `Preprocessor`, so the check runs on the ids the model will see in use
(short and long texts: rows with padding and a row truncated to the full length), in the layout of each task:
text pairs, `[B, choices, L]` for multiple choice, and `p_mask` / `cls_index` for SQuAD (1 on the question,
separators and padding, as `data.squad_data` writes them).
"""

from __future__ import annotations

import numpy as np

from funnel_tfm.serving.source import FinetunedModel

TEXTS = (
    "The committee approved the new budget after a long debate on Tuesday.",
    "A quiet, beautifully shot film that never quite finds its story.",
    "Rivers in the northern valleys freeze for most of the winter, and the villages along them depend on the "
    "roads that the army keeps open; when a storm closes the passes, supplies arrive by helicopter, if at all, "
    "and the schools close until the snow ploughs come through again, sometimes for weeks at a time.",
    "Why?",
)
QUESTIONS = ("Who approved the budget?", "What does the film lack?", "How do supplies arrive?", "Why?")


def _numpy(features) -> dict[str, np.ndarray]:
    return {name: value.numpy() for name, value in features.items()}


def sample_features(finetuned: FinetunedModel, backbone_only: bool = False) -> dict[str, np.ndarray]:
    """See the module docstring: 4 rows (4 questions x num_choices for multiple choice)."""
    import tensorflow as tf
    record, preprocessor = finetuned.record, finetuned.preprocessor()
    task = "backbone" if backbone_only else record["task"]
    if task == "multiple_choice":
        choices = record.get("num_choices", 4)
        articles = [text for text in TEXTS for _ in range(choices)]
        options = [f"{question} {TEXTS[(i + j) % len(TEXTS)][:40]}" for i, question in enumerate(QUESTIONS)
                   for j in range(choices)]
        flat = _numpy(preprocessor(tf.constant(options), tf.constant(articles)))
        return {name: value.reshape(len(TEXTS), choices, -1) for name, value in flat.items()}
    if task == "squad":
        features = _numpy(preprocessor(tf.constant(QUESTIONS), tf.constant(TEXTS)))
        in_context = (features["segment_ids"] == 1) & (features["padding_mask"] == 1)
        p_mask = 1.0 - in_context.astype(np.float32)
        p_mask[:, 0] = 0.0  # [CLS]: the no-answer position
        p_mask[np.arange(len(TEXTS)), features["padding_mask"].sum(1) - 1] = 1.0  # the final [SEP]
        return {**features, "p_mask": p_mask, "cls_index": np.zeros(len(TEXTS), np.int32)}
    if task == "classification" and record.get("text_pair"):
        return _numpy(preprocessor(tf.constant(TEXTS), tf.constant(QUESTIONS)))
    return _numpy(preprocessor(tf.constant(TEXTS)))
