"""`python -m funnel_tfm.export` and `python -m funnel_tfm.predict` on one tiny finetuned classifier: the raw-text
SavedModel in a process without project code gives `classifier --do_predict`'s predictions; Keras and Hugging Face
exports give the same logits; bad lines and bad exports are explicit errors with nothing left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from funnel_tfm.config import ModelConfig
from funnel_tfm.serving.batch import predict_file
from funnel_tfm.serving.exporter import export_model
from funnel_tfm.serving.formats import ExportFormatError
from funnel_tfm.serving.saved_model import classification_outputs
from funnel_tfm.serving.source import ExportError
from funnel_tfm.training.run_record import RUN_RECORD, RunRecordError
from test_classifier import SEQ_LEN, TINY, movie_review_cola, run_classifier, run_entry_point

FRESH_PROCESS = """
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (the tokenizer ops)
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
texts = json.load(open(sys.argv[2]))
out = serve(text=tf.constant(texts))
print(json.dumps({"label": [x.decode() for x in out["label"].numpy()],
                  "probabilities": out["probabilities"].numpy().tolist(),
                  "project_modules": [m for m in sys.modules if m.startswith("funnel_tfm")]}))
"""


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory) -> dict:
    """A tiny CoLA run (real movie-review sentences) trained 3 steps, with `--do_predict` on dev."""
    from funnel_tfm.data import data_fetch
    root = tmp_path_factory.mktemp("export")
    cola, dev_texts = movie_review_cola(root / "CoLA")
    ModelConfig(**TINY).to_json(str(root / "tiny.json"))
    model_dir = str(root / "exp")
    run_classifier("--task_name=cola", f"--data_dir={cola}", f"--output_dir={root / 'proc'}", f"--model_dir={model_dir}",
                   f"--tokenizer_path={data_fetch.bert_uncased_vocab()}", f"--model_config={root / 'tiny.json'}",
                   f"--max_seq_length={SEQ_LEN}", "--do_train=True", "--do_predict=True", "--train_batch_size=8",
                   "--train_steps=3", "--learning_rate=3e-3", "--predict_batch_size=4", "--jit_compile=False")
    predictions = [json.loads(line) for line in open(os.path.join(model_dir, "predict", "dev.jsonl"))]
    return {"root": root, "model_dir": model_dir, "texts": dev_texts, "predictions": predictions}


@pytest.fixture(scope="module")
def saved_model(finetuned) -> str:
    return export_model(finetuned["model_dir"], "saved_model", str(finetuned["root"] / "serving" / "1"),
                        log=lambda line: None)


def test_run_record_names_task_labels_and_tokenizer(finetuned):
    record = json.load(open(os.path.join(finetuned["model_dir"], RUN_RECORD)))
    assert record["task"] == "classification" and record["labels"] == ["0", "1"] and record["head_scope"] == "cola"
    assert record["max_seq_length"] == SEQ_LEN and record["text_pair"] is False
    assert os.path.exists(record["tokenizer_path"])


def assert_served_like_do_predict(saved_model: str, texts: list[str], expected: list[dict], tmp_path) -> np.ndarray:
    """Serves `texts` from `saved_model` in a fresh process with only TensorFlow and tensorflow-text imported and
    checks the labels and (within 1e-6) the probabilities of `--do_predict`'s rows; returns those probabilities."""
    path = tmp_path / "texts.json"
    path.write_text(json.dumps(texts))
    result = subprocess.run([sys.executable, "-c", FRESH_PROCESS, saved_model, str(path)], capture_output=True,
                            text=True, timeout=300, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert served["project_modules"] == []
    assert served["label"] == [p["prediction"] for p in expected]
    reference = np.array([[p["probabilities"][k] for k in ("0", "1")] for p in expected])
    np.testing.assert_allclose(served["probabilities"], reference, atol=1e-6)
    return reference


def test_saved_model_in_a_fresh_process_equals_do_predict(finetuned, saved_model, tmp_path):
    """Only TensorFlow and tensorflow-text imported: same labels, probabilities within 1e-6."""
    reference = assert_served_like_do_predict(saved_model, finetuned["texts"], finetuned["predictions"], tmp_path)
    assert np.ptp(reference[:, 1]) > 0  # the texts do get different answers: the comparison can fail


def test_predict_cli_counts_bad_lines_and_matches_do_predict(finetuned, saved_model, tmp_path):
    lines = [t.encode() for t in finetuned["texts"][:5]]
    lines[1:1] = [b"", b"\xff\xfe not utf-8", b"x" * 300]
    source = tmp_path / "texts.txt"
    source.write_bytes(b"\n".join(lines) + b"\n")
    output = tmp_path / "out.jsonl"
    summary = predict_file(saved_model, str(source), str(output), batch_size=2, max_chars=200, progress=print)
    assert summary["predicted"] == 5 and summary["bad"] == {"empty": 1, "invalid UTF-8": 1, "too long": 1}
    rows = [json.loads(line) for line in open(output)]
    assert [r["line"] for r in rows] == list(range(1, 9)) and rows[1] == {"line": 2, "error": "empty"}
    good = [r for r in rows if "error" not in r]
    for row, expected in zip(good, finetuned["predictions"][:5]):
        assert row["label"] == expected["prediction"]
        assert row["probabilities"]["1"] == pytest.approx(expected["probabilities"]["1"], abs=1e-6)
    with pytest.raises(ExportError, match=r"texts.txt:2: empty"):
        predict_file(saved_model, str(source), str(tmp_path / "rejected.jsonl"), bad_lines="fail")
    assert not os.path.exists(tmp_path / "rejected.jsonl") and len(os.listdir(tmp_path)) == 2  # no temporary left
    jsonl = tmp_path / "texts.jsonl"
    jsonl.write_text('{"id": "a", "text": "a fine film"}\n{"txt": "no text key"}\n')
    predict_file(saved_model, str(jsonl), str(output), progress=print)
    rows = [json.loads(line) for line in open(output)]
    assert rows[0]["id"] == "a" and rows[1] == {"line": 2, "error": 'no "text" string'}


def test_keras_export_gives_the_same_logits(finetuned, tmp_path):
    import keras
    import funnel_tfm.tasks.classification  # noqa: F401  (registers ClassifierModel for loading)
    from funnel_tfm.data.preprocessing import Preprocessor
    directory = export_model(finetuned["model_dir"], "keras", str(tmp_path / "keras"), log=lambda line: None)
    metadata = json.load(open(os.path.join(directory, "funnel_export.json")))
    model = keras.saving.load_model(os.path.join(directory, "model.keras"))
    features = Preprocessor.from_file(os.path.join(directory, metadata["tokenizer_file"]), seq_len=SEQ_LEN)(
        tf.constant(finetuned["texts"]))
    probabilities = tf.nn.softmax(model(features)).numpy()
    reference = np.array([[p["probabilities"][k] for k in ("0", "1")] for p in finetuned["predictions"]])
    np.testing.assert_allclose(probabilities, reference, atol=1e-6)


@pytest.mark.slow  # imports torch and transformers
def test_hf_export_loads_with_no_missing_keys_and_same_logits(finetuned, tmp_path):
    import torch
    from transformers import AutoTokenizer, FunnelForSequenceClassification
    from funnel_tfm.data.preprocessing import Preprocessor
    directory = export_model(finetuned["model_dir"], "hf", str(tmp_path / "hf"), log=lambda line: None)
    model, info = FunnelForSequenceClassification.from_pretrained(directory, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert model.config.id2label == {0: "0", 1: "1"}
    # The export's own tokenizer files, as a transformers user would load them (Funnel's [CLS] type id 2 included).
    tokenizer = AutoTokenizer.from_pretrained(directory)
    features = tokenizer(finetuned["texts"], padding="max_length", truncation=True, max_length=SEQ_LEN,
                         return_tensors="pt")
    ours = Preprocessor.from_file(os.path.join(directory, "tokenizer", "vocab.txt"), seq_len=SEQ_LEN)(
        tf.constant(finetuned["texts"]))
    np.testing.assert_array_equal(features["input_ids"].numpy(), ours["token_ids"].numpy())
    np.testing.assert_array_equal(features["token_type_ids"].numpy(), ours["segment_ids"].numpy())
    with torch.no_grad():
        logits = model(**features).logits.numpy()
    reference = np.array([[p["probabilities"][k] for k in ("0", "1")] for p in finetuned["predictions"]])
    np.testing.assert_allclose(torch.softmax(torch.tensor(logits), -1).numpy(), reference, atol=1e-6)


def hf_logits(model, features: dict[str, np.ndarray]) -> np.ndarray:
    """transformers' logits for our features (token ids, segments with [CLS] = 2, 1 = real), dropout off."""
    import torch
    with torch.no_grad():
        return model.eval()(input_ids=torch.tensor(features["token_ids"]).long(),
                            token_type_ids=torch.tensor(features["segment_ids"]).long(),
                            attention_mask=torch.tensor(features["padding_mask"]).long()).logits.numpy()


def unpadded(features: dict[str, np.ndarray], length: int) -> dict[str, np.ndarray]:
    """The first `length` positions of [..., L] features, batch axis added. transformers pools the padding mask
    otherwise than the original (README: a pooled token is real only if all its sources are), so logits are
    compared on rows without padding."""
    return {name: features[name][np.newaxis, ..., :length] for name in ("token_ids", "segment_ids", "padding_mask")}


@pytest.mark.slow  # the shared RACE run, torch and transformers
def test_hf_export_of_race_is_funnel_for_multiple_choice_with_the_same_logits(race_run, tmp_path):
    from transformers import AutoModelForMultipleChoice
    from funnel_tfm.data.race_data import pack_race, qa_texts
    from funnel_tfm.serving.source import load_finetuned
    directory = export_model(race_run["model_dir"], "hf", str(tmp_path / "hf"), log=lambda line: None)
    assert json.load(open(os.path.join(directory, "funnel_export.json")))["transformers_class"] == \
        "FunnelForMultipleChoice"
    model, info = AutoModelForMultipleChoice.from_pretrained(directory, output_loading_info=True)
    assert type(model).__name__ == "FunnelForMultipleChoice"
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    finetuned = load_finetuned(race_run["model_dir"])
    tokenizer, record = finetuned.preprocessor().tokenizer, finetuned.record
    packed = [pack_race(tokenizer.encode(e.article), tokenizer.encode_batch(qa_texts(e)), tokenizer,
                        record["max_seq_length"], record["max_qa_length"]) for e in race_run["examples"]]
    ours_padded = finetuned.task.model({name: np.stack([p[name] for p in packed]) for name in packed[0]}).numpy()
    expected = np.array([[p["probabilities"][k] for k in "ABCD"] for p in race_run["predictions"]])
    np.testing.assert_allclose(tf.nn.softmax(ours_padded).numpy(), expected, atol=1e-6)  # the predicted model
    for features in packed:
        lengths = features["padding_mask"].sum(-1)
        assert len(set(lengths)) == 1  # one-word options: the four rows of a question end together
        rows = unpadded(features, int(lengths[0]))
        np.testing.assert_allclose(hf_logits(model, rows), finetuned.task.model(rows).numpy(), rtol=0, atol=1e-5)
    assert len({int(p["padding_mask"].sum(-1)[0]) for p in packed}) > 1  # real texts of several lengths


@pytest.mark.slow  # the shared tagger run, torch and transformers
def test_hf_export_of_the_tagger_is_funnel_for_token_classification_with_tag_names(tagger_run, tmp_path):
    from transformers import AutoModelForTokenClassification
    from funnel_tfm.data.tagging_records import pack_sentence
    from funnel_tfm.serving.source import load_finetuned
    directory = export_model(tagger_run["model_dir"], "hf", str(tmp_path / "hf"), log=lambda line: None)
    model, info = AutoModelForTokenClassification.from_pretrained(directory, output_loading_info=True)
    assert type(model).__name__ == "FunnelForTokenClassification"
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    finetuned = load_finetuned(tagger_run["model_dir"])
    labels = finetuned.record["labels"]
    assert model.config.id2label == dict(enumerate(labels)) and model.config.label2id == {n: i for i, n in
                                                                                          enumerate(labels)}
    tokenizer, seq_len = finetuned.preprocessor().tokenizer, finetuned.record["max_seq_length"]
    lengths = []
    for sentence in tagger_run["predicted"]:
        table = {word: tokenizer.encode(word) for word in sentence.words}
        features, _ = pack_sentence(sentence, table, tokenizer, {tag: 0 for tag in sentence.tags}, seq_len)
        lengths.append(int(features["padding_mask"].sum()))
        rows = unpadded(features, lengths[-1])
        theirs, ours = hf_logits(model, rows), finetuned.task.model(rows).numpy()
        np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-5)
        assert [model.config.id2label[i] for i in theirs[0].argmax(-1)] == [labels[i] for i in ours[0].argmax(-1)]
    assert len(set(lengths)) > 1


def test_regression_outputs_the_score():
    outputs = classification_outputs(tf.constant([[2.5], [-1.0]]), [], regression=True)
    assert sorted(outputs) == ["logits", "score"] and outputs["score"].numpy().tolist() == [2.5, -1.0]


def test_bad_exports_are_one_error_and_leave_nothing(finetuned, tmp_path):
    out = str(tmp_path / "out")
    with pytest.raises(ExportFormatError, match="tflite"):
        export_model(finetuned["model_dir"], "tflite", out)
    empty = tmp_path / "empty_run"
    empty.mkdir()
    with pytest.raises(ExportError, match="no finetuned checkpoint"):
        export_model(str(empty), "saved_model", out)
    no_record = tmp_path / "no_record"
    no_record.mkdir()
    for name in os.listdir(finetuned["model_dir"]):
        if name.startswith(("ckpt-", "checkpoint", "net_config")):
            os.link(os.path.join(finetuned["model_dir"], name), no_record / name)
    with pytest.raises(RunRecordError, match="no run record"):
        export_model(str(no_record), "saved_model", out)
    assert not os.path.exists(out) and sorted(os.listdir(tmp_path)) == ["empty_run", "no_record"]
    result = run_entry_point("export", f"--model_dir={finetuned['model_dir']}", "--format=tflite",
                             f"--export_dir={out}", check=False)
    assert result.returncode == 1 and result.stderr.strip().splitlines() == [
        "export: error: --format=tflite: unknown format; expected one of saved_model, keras, hf, onnx"]
    assert not os.path.exists(out)
