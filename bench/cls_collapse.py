r"""How much the first token ([CLS]) says about a sentence, layer by layer, checkpoint by checkpoint.

    python bench/cls_collapse.py --vocab=V --data_dir=GLUE/SST-2 --checkpoints=PRE/ckpt-300,FT/ckpt-100,FT/ckpt-200
    python bench/cls_collapse.py --vocab=V --data_dir=GLUE/SST-2 --checkpoints=FT       # every ckpt-<step> of a run

The measurement behind docs/pretraining_collapse.md. A checkpoint is a pretraining run's `ckpt-<step>` prefix
(or its directory: the latest), a `classifier` run's prefix or directory (all of its checkpoints), or
`random:<config.json>` (fresh weights, seed 0). For
`--examples` train and dev sentences it runs the encoder and reports, per encoder layer, for the [CLS] vector:

* spread: the standard deviation across sentences (mean over features) over the vector's RMS: 0 when every
  sentence gets the same vector;
* probe: the dev accuracy of a logistic regression (scikit-learn) fitted on the train sentences' vectors, i.e.
  what a linear head could read from that layer;
* mean probe: the same on the mean of the layer's real-token vectors (what the tokens know, wherever it sits);
* for a classifier checkpoint also its own dev accuracy and the spread of its logits.
"""

from __future__ import annotations

import json
import os

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("vocab", None, "WordPiece vocabulary the runs were trained with.", required=True)
flags.DEFINE_string("data_dir", None, "A GLUE SST-2 folder (train.tsv, dev.tsv).", required=True)
flags.DEFINE_list("checkpoints", None, "Checkpoint prefixes or run directories.", required=True)
flags.DEFINE_integer("examples", 1000, "Train and dev sentences each.")
flags.DEFINE_integer("seq_len", 64, "Padded length.")
flags.DEFINE_string("task_scope", "sst-2", "A classifier run's head scope (the lower-cased task name).")


def read_split(data_dir: str, split: str, count: int) -> tuple[list[str], np.ndarray]:
    """`count` rows drawn at random (seed 0; the files may be sorted by label): (texts, labels)."""
    with open(os.path.join(data_dir, f"{split}.tsv"), encoding="utf-8") as handle:
        rows = [line.rstrip("\n").rsplit("\t", 1) for line in handle][1:]
    chosen = np.random.default_rng(0).permutation(len(rows))[:count]
    return [rows[i][0] for i in chosen], np.array([int(rows[i][1]) for i in chosen])


def spread(vectors: np.ndarray) -> float:
    """Across-sentence standard deviation (mean over features) / RMS of the vectors."""
    return float(np.mean(np.std(vectors, axis=0)) / np.sqrt(np.mean(np.square(vectors))))


def probe(train: np.ndarray, train_labels: np.ndarray, dev: np.ndarray, dev_labels: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    scaler = StandardScaler().fit(train)
    classifier = LogisticRegression(max_iter=2000).fit(scaler.transform(train), train_labels)
    return float(classifier.score(scaler.transform(dev), dev_labels))


def mean_of_tokens(hidden: np.ndarray, padding_mask) -> np.ndarray:
    """The mean over the real tokens of [B, L', D] hidden states (L' may be pooled: the mask is pooled alike)."""
    mask = np.asarray(padding_mask, dtype=np.float32)
    while mask.shape[1] > hidden.shape[1]:  # Funnel pools [CLS] apart, the rest in pairs (separate_cls)
        rest = mask[:, 1:]
        rest = rest[:, : rest.shape[1] // 2 * 2].reshape(len(mask), -1, 2).max(-1)
        mask = np.concatenate([mask[:, :1], rest], axis=1)
    mask = mask[:, : hidden.shape[1], None]
    return (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1.0)


def expand(path: str) -> list[tuple[str, str]]:
    """(kind, prefix) for every checkpoint `path` names: kind "pretraining" or "classifier"."""
    from funnel_tfm.training.pretrain_dir import is_pretraining_run
    from funnel_tfm.training.run_dir import saved_checkpoints
    if path.startswith("random:"):
        return [("random", path[len("random:"):])]
    run_dir, prefixes = (os.path.dirname(path), [path]) if os.path.exists(path + ".index") else (path, None)
    kind = "pretraining" if is_pretraining_run(run_dir) else "classifier"
    if prefixes is None:
        found = [prefix for _, prefix in saved_checkpoints(run_dir)]
        prefixes = found[-1:] if kind == "pretraining" else found
    return [(kind, prefix) for prefix in prefixes]


def load(kind: str, prefix: str):
    """(backbone, classifier model or None) with the weights of `prefix`."""
    import tensorflow as tf
    from funnel_tfm.config_fnet import load_any_config
    from funnel_tfm.tasks.classification import ClassificationTask
    from funnel_tfm.training.pretrain_dir import restore_pretraining_task
    from funnel_tfm.training.run_dir import NET_CONFIG
    run_dir = os.path.dirname(prefix)
    if kind == "random":
        import keras
        keras.utils.set_random_seed(0)
        return ClassificationTask.build(load_any_config(prefix), 2, FLAGS.task_scope).model.backbone, None
    if kind == "pretraining":
        return restore_pretraining_task(run_dir, prefix)[0].checkpoint_view().model, None
    task = ClassificationTask.build(load_any_config(os.path.join(run_dir, NET_CONFIG)), 2, FLAGS.task_scope)
    tf.train.Checkpoint(**task.trackables()).read(prefix).expect_partial()
    return task.model.backbone, task.model


def measure(kind: str, prefix: str, inputs: dict, labels: dict) -> dict:
    backbone, classifier = load(kind, prefix)
    outputs = {split: backbone(features, training=False) for split, features in inputs.items()}
    layers = []
    for index in range(len(outputs["train"]["encoder_hiddens"])):
        hidden = {split: np.asarray(out["encoder_hiddens"][index]) for split, out in outputs.items()}
        cls = {split: value[:, 0, :] for split, value in hidden.items()}
        mean = {split: mean_of_tokens(value, inputs[split]["padding_mask"]) for split, value in hidden.items()}
        layers.append({"layer": index + 1, "spread": spread(cls["dev"]),
                       "probe": probe(cls["train"], labels["train"], cls["dev"], labels["dev"]),
                       "mean_probe": probe(mean["train"], labels["train"], mean["dev"], labels["dev"])})
    pooled = np.asarray(outputs["dev"]["pooled_output"])
    row = {"checkpoint": prefix, "layers": layers, "pooled_spread": spread(pooled)}
    if classifier is not None:
        logits = np.asarray(classifier(inputs["dev"], training=False))
        row.update(dev_accuracy=float(np.mean(np.argmax(logits, -1) == labels["dev"])),
                   logit_std=float(np.std(logits[:, 1] - logits[:, 0])))
    return row


def main(argv: list[str]) -> None:
    del argv
    import tensorflow as tf
    from funnel_tfm.data.preprocessing import Preprocessor
    preprocessor = Preprocessor.from_file(FLAGS.vocab, uncased=True, seq_len=FLAGS.seq_len)
    inputs, labels = {}, {}
    for split in ("train", "dev"):
        texts, labels[split] = read_split(FLAGS.data_dir, split, FLAGS.examples)
        inputs[split] = preprocessor(tf.constant(texts))
    for path in FLAGS.checkpoints:
        for kind, prefix in expand(path):
            row = measure(kind, prefix, inputs, labels)
            layers = "  ".join(f"L{layer['layer']} spread {layer['spread']:.3f} probe {layer['probe']:.3f} "
                               f"mean {layer['mean_probe']:.3f}" for layer in row["layers"])
            own = (f"  | dev acc {row['dev_accuracy']:.3f}, logit-difference std {row['logit_std']:.3f}"
                   if "dev_accuracy" in row else "")
            print(f"{prefix}: {layers}  pooled spread {row['pooled_spread']:.3f}{own}", flush=True)
            print(json.dumps(row))


if __name__ == "__main__":
    app.run(main)
