"""Pretraining and finetuning FNet and hybrid configs (issue 13 point 5): FNet's MLM + NSP on real records, the
Funnel-Fourier hybrid's MLM, every finetuning task on an FNet backbone, the training-length rule; the CLI runs
(pretrain, resume, export, finetune from it) are marked slow."""

from __future__ import annotations

import dataclasses
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from funnel_tfm.config import ModelConfig
from funnel_tfm.config_fnet import FNetConfig, load_any_config
from funnel_tfm.data import data_fetch
from funnel_tfm.data.input_func_builder import (MaskingIds, pretrain_input_fn, record_files,
                                                records_have_next_sentence_label)
from funnel_tfm.modeling_fnet import FNet, FNetPreTrainingModel
from funnel_tfm.tasks import build_pretraining_task
from funnel_tfm.tasks.backbones import FNetBackbone, load_fnet_checkpoint
from funnel_tfm.training.finetune import FinetuneRun, check_training_length, load_init_checkpoint
from funnel_tfm.training.run_record import write_run_record
from pretrain_helpers import NUM_PREDICT, SEQ_LEN, run_pretrain, tiny_pretrain_config, train_in_process

VOCAB = 30522
FNET = FNetConfig(vocab_size=VOCAB, d_embed=32, d_model=32, d_inner=64, n_layer=2, max_seq_length=SEQ_LEN,
                  dropout=0.0)


# ------------------------------------------------------------------------------------------ pretraining
def test_next_sentence_labels_come_from_the_records_split(records, tokenizer):
    """NSP class 0 = B continues A (transformers' convention) = the record's label 1; both classes occur; the
    segment ids keep the records' [CLS] 2, which the FNet task reads as type id 0."""
    files, _ = record_files([records], "train", SEQ_LEN, True)
    assert records_have_next_sentence_label(files)
    dataset = pretrain_input_fn([records], SEQ_LEN, 64, NUM_PREDICT, MaskingIds.from_tokenizer(tokenizer),
                                repeat=False, shuffle_buffer=1, next_sentence=True)(None)
    batch = next(iter(dataset))
    raw = [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(files[:1]).take(2000)]
    stored = {tuple(e.features.feature["input"].int64_list.value): e.features.feature["label"].int64_list.value[0]
              for e in raw}
    labels = batch["next_sentence_label"].numpy()
    assert set(labels) == {0, 1} and 0.2 < labels.mean() < 0.8
    for origin, label in zip(batch["origin_ids"].numpy(), labels):
        if tuple(origin) in stored:
            assert label == 1 - stored[tuple(origin)]
    assert (batch["segment_ids"].numpy()[:, 0] == 2).all()


def test_fnet_mlm_nsp_loss_falls_on_real_text(records, tokenizer):
    config = FNET
    keras.utils.set_random_seed(0)
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    from funnel_tfm.training.optimization import AdamW, WarmupDecay
    from funnel_tfm.training.trainer import Trainer
    with strategy.scope():
        task = build_pretraining_task(config, "mlm_nsp")
        optimizer = AdamW(task.trainable_variables(), WarmupDecay(3e-3, 5, 200))
        trainer = Trainer(strategy, task, optimizer, 16, jit_compile=False)
    dataset_fn = pretrain_input_fn([records], SEQ_LEN, 16, NUM_PREDICT, MaskingIds.from_tokenizer(tokenizer),
                                   shuffle_buffer=1000, next_sentence=True)
    iterator = trainer.distribute(dataset_fn)
    history = [trainer.run_steps(iterator, 10) for _ in range(4)]
    losses = [h["loss"] for h in history]
    assert all(np.isfinite(losses)) and history[0]["mlm_loss"] > 9.5  # ln(30522) = 10.3 at random init
    assert losses[-1] < losses[0] - 1.0, losses
    assert abs(history[-1]["loss"] - history[-1]["mlm_loss"] - history[-1]["nsp_loss"]) < 1e-4
    assert set(task.trainable_variables()) >= {"model/classification/output_kernel", "model/encoder/pooler/kernel"}


def test_fnet_mlm_trains_no_pooler_and_loss_types_are_checked():
    task = build_pretraining_task(FNET, "mlm")
    names = set(task.trainable_variables())
    assert "model/encoder/embedder/word/embedding" in names and "model/predictions_dense/kernel" in names
    assert not any(n.startswith(("model/encoder/pooler/", "model/classification/")) for n in names)
    with pytest.raises(ValueError, match="FNet config; expected one of mlm, mlm_nsp"):
        build_pretraining_task(FNET, "electra")
    with pytest.raises(ValueError, match="mlm_nsp' is FNet's objective"):
        build_pretraining_task(tiny_pretrain_config(), "mlm_nsp")


HYBRID = dict(block_mixers="fourier_attention", d_model=32, d_embed=32, n_head=4, d_head=8, d_inner=64)


@pytest.mark.parametrize("loss_type", ["mlm", pytest.param("electra", marks=pytest.mark.slow)])
def test_hybrid_funnel_pretrains(records, tokenizer, loss_type):
    """A Funnel with a Fourier block (fnet semantics N8) is a ModelConfig: both Funnel objectives run on it."""
    _, history, _ = train_in_process(records, tokenizer, loss_type, steps=4, config=tiny_pretrain_config(**HYBRID),
                                     jit_compile=False, steps_per_call=2, batch_size=8, learning_rate=3e-3)
    assert all(np.isfinite(h["loss"]) and h["skipped_steps"] == 0 for h in history), history


def test_fnet_configs_load_by_name_json_and_directory(tmp_path):
    FNET.to_json(str(tmp_path / "fnet_config.json"))
    assert load_any_config(str(tmp_path / "fnet_config.json")) == FNET
    assert load_any_config(str(tmp_path)) == FNET
    assert isinstance(load_any_config("FNet-Base"), FNetConfig)
    assert isinstance(load_any_config("B4F-4-4H768"), ModelConfig)
    from funnel_tfm.config import ConfigError
    from funnel_tfm.config_flags import custom_config
    assert custom_config(str(tmp_path), {"d_inner": 48}).d_inner == 48
    with pytest.raises(ConfigError, match="FNet config, which has no key.*block_size"):
        custom_config("FNet-Base", {"block_size": "2_2"})


def test_fnet_only_keys_are_flags(tmp_path):
    """`--model_config=FNet-Base --n_layer=2` (README: "--d_model etc. override its keys") was 'Unknown command
    line flag n_layer': only the keys FNet shares with the Funnel were flags. A Funnel config refuses them."""
    from absl import flags
    from absl.testing import flagsaver

    from funnel_tfm.config import ConfigError
    from funnel_tfm.config_flags import config_from_flags
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()  # defaults, as an entry point without arguments
    with flagsaver.flagsaver(n_layer=2, num_attention_layers=1, attention_layout="bottom", d_model=32, d_embed=32,
                             n_head=2):
        config = config_from_flags("FNet-Base")
    assert (config.n_layer, config.attention_layers(), config.d_model) == (2, (0,), 32)
    with flagsaver.flagsaver(n_layer=2), pytest.raises(ConfigError, match="unknown key.*n_layer"):
        config_from_flags("B4-4-4H768")


# ------------------------------------------------------------------------------------------ finetuning
def _one_step(task, batch) -> float:
    names, variables = zip(*task.trainable_variables().items())
    with tf.GradientTape() as tape:
        loss, _ = task.loss(batch, {}, global_batch_size=2, training=True)
    grads = tape.gradient(loss, variables)
    # Every weight on the task's path learns; SQuAD trains the pooler as it trains the Funnel's summary (a zero
    # gradient in the optimizer), the tagger leaves both out.
    unreached = [n for n, g in zip(names, grads) if g is None and not n.startswith("model/encoder/pooler/")]
    assert not unreached, unreached
    grads = [tf.zeros_like(v) if g is None else g for v, g in zip(variables, grads)]
    for variable, grad in zip(variables, grads):
        variable.assign_sub(0.01 * tf.convert_to_tensor(grad))
    return float(loss)


def _inputs(rng, batch: int, length: int) -> dict:
    segments = np.zeros([batch, length], np.int32)
    segments[:, 0], segments[:, length // 2:] = 2, 1
    return {"token_ids": rng.integers(5, 500, [batch, length]).astype(np.int32), "segment_ids": segments,
            "padding_mask": np.ones([batch, length], np.int32)}


@pytest.mark.parametrize("kind", ["classification", "multiple_choice", "squad", "tagging"])
def test_every_finetuning_task_takes_an_fnet_backbone(kind):
    from funnel_tfm.tasks.classification import ClassificationTask
    from funnel_tfm.tasks.multiple_choice import MultipleChoiceTask
    from funnel_tfm.tasks.squad import SquadTask
    from funnel_tfm.tasks.tagging import TaggingTask
    rng, length = np.random.default_rng(0), 16
    config = FNET.replace(vocab_size=500)
    real = np.ones([2], np.int32)
    if kind == "classification":
        task = ClassificationTask.build(config, 3, scope="mnli")
        batch = {**_inputs(rng, 2, length), "label": np.array([0, 2], np.int32), "is_real_example": real}
    elif kind == "multiple_choice":
        task = MultipleChoiceTask.build(config, num_choices=4)
        flat = _inputs(rng, 8, length)
        batch = {**{k: v.reshape(2, 4, length) for k, v in flat.items()}, "label": np.array([1, 3], np.int32),
                 "is_real_example": real}
    elif kind == "squad":
        task = SquadTask.build(config)
        batch = {**_inputs(rng, 2, length), "p_mask": np.zeros([2, length], np.float32),
                 "cls_index": np.zeros([2], np.int32), "start_positions": np.array([3, 5], np.int32),
                 "end_positions": np.array([4, 9], np.int32), "is_impossible": np.array([0, 0], np.int32),
                 "is_real_example": real}
    else:
        task = TaggingTask.build(config, n_tags=5)
        labels = rng.integers(-1, 5, [2, length]).astype(np.int32)
        batch = {**_inputs(rng, 2, length), "label_ids": labels, "is_real_example": real}
    assert isinstance(task.model.backbone, FNetBackbone)
    first = _one_step(task, batch)
    assert np.isfinite(first) and _one_step(task, batch) < first  # one step on the batch lowers its loss
    assert json.loads(json.dumps(task.model.get_config()))["config"]["n_layer"] == 2  # serialisable config


def test_fnet_backbone_reads_cls_segment_2_as_type_id_0():
    backbone = FNetBackbone(FNET.replace(vocab_size=500))
    plain = FNet(FNET.replace(vocab_size=500))
    for name, variable in plain.weight_names().items():
        variable.assign(backbone.weight_names()[name])
    inputs = _inputs(np.random.default_rng(1), 2, 16)
    fnet_types = {**inputs, "segment_ids": np.where(inputs["segment_ids"] == 2, 0, inputs["segment_ids"])}
    np.testing.assert_allclose(backbone(inputs)["sequence_output"], plain(fnet_types)["sequence_output"], atol=1e-6)


def test_init_from_an_hf_fnet_directory_and_a_pretraining_dir(tmp_path):
    """--init_checkpoint from a transformers FNetForPreTraining directory, and from a pretraining model_dir
    whose export is ours: the backbone weights arrive under the names a task's FNet backbone has."""
    keras.utils.set_random_seed(4)
    model = FNetPreTrainingModel(FNET)
    model.save_pretrained(str(tmp_path / "hf"), format="hf")
    os.makedirs(tmp_path / "run")
    model.save_pretrained(str(tmp_path / "run" / "export"), format="keras")
    from funnel_tfm.tasks.classification import ClassificationTask
    for source in (str(tmp_path / "hf"), str(tmp_path / "run")):
        init = load_init_checkpoint(source)
        task = ClassificationTask.build(init.config, 2, scope="cola")
        state = init.state()
        targets = task.checkpoint_view().named_variables()
        shared = [name for name in targets if name in state]
        assert len(shared) == len(model.backbone.weight_names())  # every backbone weight, no head
        word = "model/encoder/embedder/word/embedding"
        np.testing.assert_array_equal(state[word], np.asarray(model.backbone.weight_names()[word[6:]]))
    assert load_fnet_checkpoint(str(tmp_path / "hf")).report.missing == []


def test_a_fourier_model_is_refused_at_another_length_than_trained(tmp_path):
    run = FinetuneRun(data_dir="d", output_dir="o", model_dir=str(tmp_path), tokenizer_path="v", max_seq_length=64)
    write_run_record(str(tmp_path), "classification", "vocab.txt", True, 128)
    with pytest.raises(ValueError, match="--max_seq_length=64, but .*run_record.json says this model was trained at "
                                         "max_seq_length 128.*pass --max_seq_length=128"):
        check_training_length(run, FNET)
    with pytest.raises(ValueError, match="trained at max_seq_length 128"):
        check_training_length(run, tiny_pretrain_config(block_mixers="fourier_attention"))
    check_training_length(run, tiny_pretrain_config())  # attention masks pads: any length
    check_training_length(dataclasses.replace(run, max_seq_length=128), FNET)


# ------------------------------------------------------------------------------------------ the CLI
@pytest.mark.slow
def test_pretrain_cli_fnet_resumes_exports_and_finetunes(tmp_path, records):
    """pretrain --loss_type=mlm_nsp on an FNet json: stop at 4, resume to 6 (step and input position), export
    transformers' FNetForPreTraining (finetuning from such directories: test_init_from_an_hf_fnet_directory...)."""
    config_path = str(tmp_path / "fnet_config.json")
    FNET.to_json(config_path)
    model_dir = str(tmp_path / "run")
    args = {"record_dir": records, "tokenizer_path": data_fetch.bert_uncased_vocab(), "model_dir": model_dir,
            "model_config": config_path, "loss_type": "mlm_nsp", "seq_len": SEQ_LEN, "num_predict": NUM_PREDICT,
            "train_batch_size": 8, "iterations": 2, "save_steps": 2, "learning_rate": 1e-3, "warmup_steps": 1,
            "shuffle_buffer": 200, "jit_compile": "false", "export_format": "hf"}
    first = run_pretrain({**args, "train_steps": 4})
    assert first.returncode == 0, first.stdout + first.stderr
    second = run_pretrain({**args, "train_steps": 6})
    assert second.returncode == 0 and "resumed from" in second.stdout and "ckpt-4" in second.stdout, second.stdout
    rows = [json.loads(line) for line in open(os.path.join(model_dir, "metrics.jsonl"))]
    assert [r["step"] for r in rows] == [2, 4, 6] and all(np.isfinite(r["loss"]) and "nsp_loss" in r for r in rows)
    exported = FNetPreTrainingModel.from_pretrained(os.path.join(model_dir, "export"))
    assert exported.load_report.missing == [] and exported.config == FNET
    tokenizer = json.load(open(os.path.join(model_dir, "export", "tokenizer_config.json")))  # AutoTokenizer's
    assert tokenizer["tokenizer_class"] == "BertTokenizer" and os.path.exists(os.path.join(model_dir, "export",
                                                                                            "vocab.txt"))
    assert json.load(open(os.path.join(model_dir, "pretrain_objective.json")))["seq_len"] == SEQ_LEN
    refused = run_pretrain({**args, "model_dir": str(tmp_path / "other"), "loss_type": "electra", "train_steps": 2})
    assert refused.returncode == 1 and "FNet config; expected one of mlm, mlm_nsp" in refused.stderr
