"""A finetuned FNet leaves for transformers (fnet semantics N11): a tiny FNet CoLA run (real movie-review
sentences, 3 steps) exported with `--format=hf` is transformers' FNetForSequenceClassification, loads with no
missing or unexpected keys and gives `--do_predict`'s probabilities; `convert` of the run's export/ writes the same
tensors. A SQuAD FNet has no transformers class for its head: `--format=hf` is an error offering --backbone_only,
which writes FNetModel."""

from __future__ import annotations

import io
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from safetensors.numpy import load_file  # noqa: E402

from funnel_tfm import convert  # noqa: E402
from funnel_tfm.config import ModelConfig  # noqa: E402
from funnel_tfm.config_fnet import FNetConfig  # noqa: E402
from funnel_tfm.data import data_fetch  # noqa: E402
from funnel_tfm.data.preprocessing import Preprocessor  # noqa: E402
from funnel_tfm.serving.exporter import export_model  # noqa: E402
from funnel_tfm.serving.source import ExportError  # noqa: E402
from funnel_tfm.tasks.squad import SquadTask  # noqa: E402
from funnel_tfm.training.classifier_job import ClassifierRun, run_classifier  # noqa: E402
from funnel_tfm.training.finetune import NET_CONFIG  # noqa: E402
from funnel_tfm.training.run_record import write_run_record  # noqa: E402
from test_classifier import SEQ_LEN, movie_review_cola  # noqa: E402

FNET = FNetConfig(vocab_size=30522, d_embed=32, d_model=32, d_inner=64, n_layer=2, max_seq_length=SEQ_LEN,
                  dropout=0.0)


@pytest.fixture(scope="module")
def fnet_run(tmp_path_factory) -> dict:
    """classifier --do_train --do_eval --do_predict on an FNet config, in this process (no start-up to pay)."""
    root = tmp_path_factory.mktemp("fnet_export")
    cola, dev_texts = movie_review_cola(root / "CoLA")
    model_dir = str(root / "exp")
    run = ClassifierRun(task_name="cola", data_dir=cola, output_dir=str(root / "proc"), model_dir=model_dir,
                        tokenizer_path=data_fetch.bert_uncased_vocab(), model_config=FNET, max_seq_length=SEQ_LEN,
                        do_train=True, do_eval=True, do_predict=True, retain_best=True, train_batch_size=8,
                        train_steps=3, learning_rate=3e-3, predict_batch_size=4, jit_compile=False)
    run_classifier(run, log=lambda line: None)
    predictions = [json.loads(line) for line in open(os.path.join(model_dir, "predict", "dev.jsonl"))]
    return {"root": root, "model_dir": model_dir, "texts": dev_texts, "predictions": predictions}


def hf_probabilities(directory: str, texts: list[str]) -> tuple[np.ndarray, object]:
    """(softmax of transformers' logits, its config)."""
    model, info = transformers.FNetForSequenceClassification.from_pretrained(directory, output_loading_info=True)
    assert not (info["missing_keys"] or info["unexpected_keys"] or info["mismatched_keys"]), info
    features = Preprocessor.from_file(data_fetch.bert_uncased_vocab(), seq_len=SEQ_LEN)(tf.constant(texts))
    segments = features["segment_ids"].numpy()
    type_ids = np.where(segments == 2, 0, segments)  # transformers' FNet takes FNet's type ids: [CLS] 0 (N7)
    with torch.no_grad():  # no attention mask: FNet mixes the pads, as the run did at this padded length
        logits = model.eval()(input_ids=torch.tensor(features["token_ids"].numpy()).long(),
                              token_type_ids=torch.tensor(type_ids).long()).logits
    return torch.softmax(logits, -1).numpy(), model.config


@pytest.mark.slow  # a 3-step FNet classifier run (~15 s) shared by two tests; the task-class parity is fast
def test_hf_export_of_an_fnet_classifier_run_gives_its_predictions(fnet_run, tmp_path):
    lines = []
    directory = export_model(fnet_run["model_dir"], "hf", str(tmp_path / "hf"), log=lines.append)
    metadata = json.load(open(os.path.join(directory, "funnel_export.json")))
    assert metadata["transformers_class"] == "FNetForSequenceClassification", metadata
    probabilities, config = hf_probabilities(directory, fnet_run["texts"])
    assert config.id2label == {0: "0", 1: "1"} and config.finetuning_task == "cola"
    reference = np.array([[p["probabilities"][k] for k in ("0", "1")] for p in fnet_run["predictions"]])
    np.testing.assert_allclose(probabilities, reference, rtol=0, atol=1e-5)
    assert not any("written as zeros" in line for line in lines)  # a classifier trains its pooler


@pytest.mark.slow  # a 3-step FNet classifier run (~15 s) shared by two tests; the task-class parity is fast
def test_convert_of_the_runs_export_writes_the_same_transformers_model(fnet_run, tmp_path):
    out, err = io.StringIO(), io.StringIO()
    source = os.path.join(fnet_run["model_dir"], "export")
    assert convert.run(source, str(tmp_path / "hf"), "hf", out=out, err=err) == 0, err.getvalue()
    assert "(transformers class FNetForSequenceClassification)" in out.getvalue(), out.getvalue()
    exported = export_model(fnet_run["model_dir"], "hf", str(tmp_path / "exported"), log=lambda line: None)
    converted = load_file(str(tmp_path / "hf" / "model.safetensors"))
    reference = load_file(os.path.join(exported, "model.safetensors"))
    assert sorted(converted) == sorted(reference)
    for key, value in reference.items():
        np.testing.assert_array_equal(converted[key], value, err_msg=key)


def test_squad_fnet_to_hf_is_an_error_offering_backbone_only(tmp_path):
    """A SQuAD FNet model_dir (record, config, one checkpoint): hf refuses the head, --backbone_only writes the
    finetuned backbone as transformers' FNetModel."""
    model_dir = str(tmp_path / "squad")
    os.makedirs(model_dir)
    config = FNET.replace(vocab_size=200)
    config.to_json(os.path.join(model_dir, NET_CONFIG))
    write_run_record(model_dir, "squad", data_fetch.bert_uncased_vocab(), True, SEQ_LEN)
    task = SquadTask.build(config)
    tf.train.Checkpoint(**task.trackables()).write(os.path.join(model_dir, "ckpt-1"))
    out = str(tmp_path / "out")
    with pytest.raises(ExportError, match="pass --backbone_only to export the finetuned backbone as FunnelModel "
                                          r"\(FNetModel for an FNet run\)"):
        export_model(model_dir, "hf", out, log=lambda line: None)
    assert not os.path.exists(out)
    export_model(model_dir, "hf", out, backbone_only=True, log=lambda line: None)
    assert json.load(open(os.path.join(out, "funnel_export.json")))["transformers_class"] == "FNetModel"
    _, info = transformers.FNetModel.from_pretrained(out, output_loading_info=True)
    assert not (info["missing_keys"] or info["unexpected_keys"]), info
    word = load_file(os.path.join(out, "model.safetensors"))["embeddings.word_embeddings.weight"]
    ours = task.model.backbone.weight_names()["encoder/embedder/word/embedding"]
    np.testing.assert_array_equal(word, keras.ops.convert_to_numpy(ours))


@pytest.mark.parametrize("config", [
    FNET.replace(vocab_size=200, num_attention_layers=1, n_head=2), FNET.replace(vocab_size=200, d_embed=16),
    ModelConfig(block_size="1_1", decoder_size="1", d_embed=32, d_model=32, n_head=2, d_head=16, d_inner=64,
                vocab_size=200, block_mixers="fourier_attention")], ids=["fnet_attention", "d_embed", "funnel_fourier"])
def test_hf_export_of_what_transformers_cannot_hold_is_one_error_naming_the_run(config, tmp_path):
    """An FNet hybrid (N9), d_embed != d_model (N6) or Funnel-Fourier hybrid (N8) classifier run: `export
    --format=hf` said so naming its temporary directory and a library argument (`to='keras'`,
    `save_pretrained(path, format='keras')`); now the model_dir and the flag, before anything is written."""
    from funnel_tfm.tasks.classification import ClassificationTask
    model_dir = str(tmp_path / "run")
    os.makedirs(model_dir)
    config.to_json(os.path.join(model_dir, NET_CONFIG))
    write_run_record(model_dir, "classification", data_fetch.bert_uncased_vocab(), True, SEQ_LEN, task_name="cola",
                     labels=["0", "1"], regression=False, head_scope="cola", text_pair=False)
    task = ClassificationTask.build(config, 2, scope="cola")
    tf.train.Checkpoint(**task.trackables()).write(os.path.join(model_dir, "ckpt-1"))
    out = str(tmp_path / "out")
    with pytest.raises(ExportError) as error:
        export_model(model_dir, "hf", out, log=lambda line: None)
    message = str(error.value)
    assert message.startswith(f"--format=hf: {model_dir}: ") and "--format=keras" in message, message
    assert ".tmp" not in message and "to='keras'" not in message and not os.path.exists(out)
    export_model(model_dir, "keras", out, log=lambda line: None)  # the format that holds it
