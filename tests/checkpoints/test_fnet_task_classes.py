"""transformers' FNet task classes <-> this project's task heads on an FNet backbone (fnet semantics N11).

Weights written by transformers' PyTorch FNetForSequenceClassification / FNetForMultipleChoice /
FNetForTokenClassification (save_pretrained) are read as `--init_checkpoint` is (`load_init_checkpoint`,
`initialize_from`): the backbone and the head arrive, and the task gives transformers' logits, max abs diff <= 1e-5 in
float32, on padded and unpadded rows, with both of our Fourier paths. The other way, a task model exported to
`hf` loads in transformers with no missing or unexpected keys and the same logits. Our rows carry this project's
segment ids ([CLS] 2), transformers' FNet's type ids ([CLS] 0): the FNet backbone converts at its input (N7).

Pinned departure (N11): the original f_net classifier projects the pooled output with no dropout before it;
transformers' FNetForSequenceClassification drops out there. Ours follows the original.
"""

from __future__ import annotations

import functools
import io
import json
import os

import keras
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from safetensors.numpy import load_file  # noqa: E402
from transformers.models.fnet import modeling_fnet  # noqa: E402

from funnel_tfm import convert  # noqa: E402
from funnel_tfm.checkpoints import export  # noqa: E402
from funnel_tfm.config_fnet import FNetConfig  # noqa: E402
from funnel_tfm.errors import CheckpointError  # noqa: E402
from funnel_tfm.tasks.backbones import export_view  # noqa: E402
from funnel_tfm.tasks.classification import ClassificationTask  # noqa: E402
from funnel_tfm.tasks.multiple_choice import MultipleChoiceTask  # noqa: E402
from funnel_tfm.tasks.squad import SquadTask  # noqa: E402
from funnel_tfm.tasks.tagging import TaggingTask  # noqa: E402
from funnel_tfm.training.finetune import load_init_checkpoint  # noqa: E402
from funnel_tfm.training.loop import initialize_from  # noqa: E402
from helpers import tiny_config as tiny_funnel_config  # noqa: E402

TOLERANCE = 1e-5
VOCAB, MAX_LEN, WIDTH, LAYERS, CHOICES = 120, 16, 32, 2, 3
SEQUENCE, CHOICE, TOKEN = "FNetForSequenceClassification", "FNetForMultipleChoice", "FNetForTokenClassification"


def tiny_config(**changes) -> FNetConfig:
    values = dict(vocab_size=VOCAB, d_embed=WIDTH, d_model=WIDTH, d_inner=64, n_layer=LAYERS, max_seq_length=MAX_LEN,
                  dropout=0.0)
    return FNetConfig(**{**values, **changes})


def build_hf(class_name: str, directory, tpu: bool = False, seed: int = 0, **changes):
    """A transformers task model with perturbed random weights, saved to `directory`."""
    values = dict(vocab_size=VOCAB, hidden_size=WIDTH, num_hidden_layers=LAYERS, intermediate_size=64,
                  max_position_embeddings=MAX_LEN, hidden_dropout_prob=0.0, use_tpu_fourier_optimizations=tpu,
                  tpu_short_seq_length=MAX_LEN)
    torch.manual_seed(seed)
    model = getattr(transformers, class_name)(transformers.FNetConfig(**{**values, **changes})).eval()
    with torch.no_grad():  # LayerNorm scales, biases and the zero pad row off their trivial init
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    model.save_pretrained(str(directory))
    return model


def rebind_dft_buffers(hf_model) -> None:
    """transformers binds its DFT buffers into a partial before from_pretrained loads them (the bug
    tests/modeling/test_fnet.py pins): point the partials at the loaded buffers."""
    for module in hf_model.modules():
        if isinstance(module, modeling_fnet.FNetBasicFourierTransform) and hasattr(module, "dft_mat_seq"):
            module.fourier_transform = functools.partial(
                modeling_fnet.two_dim_matmul, matrix_dim_one=module.dft_mat_seq, matrix_dim_two=module.dft_mat_hidden)


def rows(rng, real_lengths: list[int]) -> dict[str, np.ndarray]:
    """This project's rows: [CLS] segment 2, A 0, B 1, pads (id 0, segment 0, mask 0) after `real` tokens."""
    batch = len(real_lengths)
    token_ids = rng.integers(5, VOCAB, size=(batch, MAX_LEN)).astype(np.int32)
    segment_ids = np.zeros((batch, MAX_LEN), np.int32)
    padding_mask = np.zeros((batch, MAX_LEN), np.int32)
    for row, real in enumerate(real_lengths):
        segment_ids[row, real // 2:real] = 1
        segment_ids[row, 0] = 2
        token_ids[row, real:] = 0
        padding_mask[row, :real] = 1
    return {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask}


def inputs_for(class_name: str, rng) -> dict[str, np.ndarray]:
    """Unpadded and padded rows; multiple choice as [2, CHOICES, L]."""
    if class_name != CHOICE:
        return rows(rng, [MAX_LEN, 9, 12])
    flat = rows(rng, [MAX_LEN, 9, 12, 5, MAX_LEN, 11])
    return {key: value.reshape(2, CHOICES, MAX_LEN) for key, value in flat.items()}


def hf_logits(hf_model, inputs: dict[str, np.ndarray]) -> np.ndarray:
    type_ids = np.where(inputs["segment_ids"] == 2, 0, inputs["segment_ids"])  # FNet's [CLS] is type 0 (N7)
    with torch.no_grad():
        return hf_model(input_ids=torch.tensor(inputs["token_ids"]).long(),
                        token_type_ids=torch.tensor(type_ids).long()).logits.numpy()


def our_task(class_name: str, config: FNetConfig, n_labels: int):
    if class_name == SEQUENCE:
        return ClassificationTask.build(config, n_labels, scope="cola")
    if class_name == CHOICE:
        return MultipleChoiceTask.build(config, num_choices=CHOICES)
    return TaggingTask.build(config, n_tags=n_labels)


def our_logits(task, inputs) -> np.ndarray:
    return keras.ops.convert_to_numpy(task.model(inputs))


def init_task(source: str, class_name: str, n_labels: int, use_fft: bool | None = None):
    """What a finetuning job does with --init_checkpoint=source: (task, the summary line it logs)."""
    init = load_init_checkpoint(source)
    config = init.config if use_fft is None else init.config.replace(use_fft=use_fft)
    task = our_task(class_name, config, n_labels)
    return task, initialize_from(init, task, None, None, source, init_global_vars=False)


# ------------------------------------------------------------------------------------ transformers -> ours
CASES = [(SEQUENCE, 3, {"finetuning_task": "MNLI"}), (SEQUENCE, 1, {}), (CHOICE, 1, {}), (TOKEN, 5, {})]


@pytest.mark.parametrize("class_name,n_labels,extra", CASES)
@pytest.mark.parametrize("ours_fft", [True, False])
def test_transformers_task_class_brings_its_head_and_gives_its_logits(tmp_path, rng, class_name, n_labels, extra,
                                                                      ours_fft):
    hf_model = build_hf(class_name, tmp_path / "hf", num_labels=n_labels, **extra)
    task, summary = init_task(str(tmp_path / "hf"), class_name, n_labels, use_fft=ours_fft)
    inputs = inputs_for(class_name, rng)
    np.testing.assert_allclose(our_logits(task, inputs), hf_logits(hf_model, inputs), rtol=0, atol=TOLERANCE)
    source_scope = {SEQUENCE: extra.get("finetuning_task", "cls").lower(), CHOICE: "race", TOKEN: "tagger"}
    kind = task.model.head.kind
    labels = {1: " (1 class)"}.get(n_labels, f" ({n_labels} classes)") if class_name != CHOICE else ""
    expected = f"brought the checkpoint's {kind} head '{source_scope[class_name]}'{labels}"
    expected += " as 'cola'" if class_name == SEQUENCE else ""
    assert expected in summary, summary
    unused = "; 2 unused (e.g. model/encoder/pooler/bias, model/encoder/pooler/kernel)"  # the tagger has no pooler
    assert "left at init" not in summary and ("unused" not in summary or class_name == TOKEN and unused in summary)


def test_transformers_dft_path_directory_reads_with_its_buffers_skipped(tmp_path, rng):
    """transformers' TPU (DFT-matrix) setting: its buffers are skipped with a reason, the numbers agree."""
    hf_model = build_hf(SEQUENCE, tmp_path / "hf", tpu=True, num_labels=2)
    reloaded = transformers.FNetForSequenceClassification.from_pretrained(str(tmp_path / "hf")).eval()
    rebind_dft_buffers(reloaded)
    task, _ = init_task(str(tmp_path / "hf"), SEQUENCE, 2)
    assert task.model.config.use_fft is False
    inputs = inputs_for(SEQUENCE, rng)
    np.testing.assert_allclose(our_logits(task, inputs), hf_logits(reloaded, inputs), rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(hf_logits(hf_model, inputs), hf_logits(reloaded, inputs), rtol=0, atol=1e-6)
    skipped = load_init_checkpoint(str(tmp_path / "hf")).report.skipped
    assert skipped["encoder.layer.0.fourier.self.dft_mat_seq"].startswith("transformers' precomputed DFT")


def test_a_head_with_another_label_count_stays_at_init_and_the_summary_says_so(tmp_path):
    build_hf(SEQUENCE, tmp_path / "hf", num_labels=3, finetuning_task="mnli")
    keras.utils.set_random_seed(0)
    task, summary = init_task(str(tmp_path / "hf"), SEQUENCE, 2)
    assert ("the classification head 'cola' (2 classes) starts at init: the checkpoint's classification head "
            "'mnli' (3 classes) does not fit") in summary, summary
    assert "2 left at init (e.g. model/cola/logit/kernel, model/cola/logit/bias)" in summary, summary
    hf_word = load_file(str(tmp_path / "hf" / "model.safetensors"))["fnet.embeddings.word_embeddings.weight"]
    word = task.model.backbone.weight_names()["encoder/embedder/word/embedding"]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(word), hf_word)  # the backbone came


def test_our_checkpoint_brings_a_head_only_to_its_own_task(tmp_path, rng):
    """As the original's `<task>/logit` scopes: a finetuned SST-2 run gives its head to another SST-2 run, not to
    CoLA (same label count, other labels); only a transformers task class lends its one head across scopes."""
    sst2 = randomized(ClassificationTask.build(tiny_config(), 2, scope="sst-2"), rng)
    export_view(sst2.checkpoint_view(), str(tmp_path / "ours"))
    _, summary = init_task(str(tmp_path / "ours"), SEQUENCE, 2)  # our_task builds a 'cola' head
    assert ("the classification head 'cola' starts at init (its classification heads are another task's: sst-2)"
            in summary), summary
    again = ClassificationTask.build(tiny_config(), 2, scope="sst-2")
    summary = initialize_from(load_init_checkpoint(str(tmp_path / "ours")), again, None, None, "ours",
                              init_global_vars=False)
    assert "brought the checkpoint's classification head 'sst-2' (2 classes)" in summary, summary
    inputs = inputs_for(SEQUENCE, rng)
    np.testing.assert_allclose(our_logits(again, inputs), our_logits(sst2, inputs), rtol=0, atol=1e-6)


def test_question_answering_brings_the_backbone_and_names_the_span_head(tmp_path):
    """transformers' span head is not the original SQuAD head: the backbone comes, the head stays at init, and
    both are said."""
    build_hf("FNetForQuestionAnswering", tmp_path / "qa")
    init = load_init_checkpoint(str(tmp_path / "qa"))
    assert init.report.skipped["qa_outputs.weight"].startswith("transformers' span head (one Linear for start")
    task = SquadTask.build(init.config)
    summary = initialize_from(init, task, None, None, "qa", init_global_vars=False)
    backbone = len(task.model.backbone.weight_names())
    assert f"initialized {backbone} weights from qa" in summary, summary
    assert "11 left at init (e.g. model/start_logits/dense/kernel" in summary, summary  # the whole SQuAD head
    assert "not read: qa_outputs.bias, qa_outputs.weight (transformers' span head" in summary, summary


# ------------------------------------------------------------------------------------ ours -> transformers
def randomized(task, rng):
    for variable in task.checkpoint_view().named_variables().values():
        variable.assign(variable + rng.normal(0, 0.1, size=variable.shape))
    return task


@pytest.mark.parametrize("class_name,n_labels", [(SEQUENCE, 3), (SEQUENCE, 1), (CHOICE, 1), (TOKEN, 4)])
@pytest.mark.parametrize("use_fft", [True, False])
def test_task_exports_to_transformers_with_no_missing_keys_and_same_logits(tmp_path, rng, class_name, n_labels,
                                                                           use_fft):
    task = randomized(our_task(class_name, tiny_config(use_fft=use_fft), n_labels), rng)
    report = export(task.checkpoint_view(), str(tmp_path / "hf"), to="hf")
    assert report.detail == f"transformers class {class_name}"
    hf_model, info = getattr(transformers, class_name).from_pretrained(str(tmp_path / "hf"),
                                                                       output_loading_info=True)
    assert not (info["missing_keys"] or info["unexpected_keys"] or info["mismatched_keys"]), info
    rebind_dft_buffers(hf_model)
    assert hf_model.config.use_tpu_fourier_optimizations is (not use_fft)
    inputs = inputs_for(class_name, rng)
    ours = our_logits(task, inputs)
    np.testing.assert_allclose(ours, hf_logits(hf_model.eval(), inputs), rtol=0, atol=TOLERANCE)
    if class_name == SEQUENCE:
        assert hf_model.config.finetuning_task == "cola" and hf_model.config.num_labels == n_labels
        assert hf_model.config.problem_type == ("regression" if n_labels == 1 else "single_label_classification")
    if class_name == TOKEN:  # the tagger never trains the pooler: zeros, said so, not its random init
        assert report.notes and report.notes[0].startswith("encoder/pooler/kernel, encoder/pooler/bias written as "
                                                           "zeros"), report.notes
        assert not hf_model.fnet.pooler.dense.weight.abs().sum()
    again, summary = init_task(str(tmp_path / "hf"), class_name, n_labels)  # and back: the same numbers
    np.testing.assert_allclose(our_logits(again, inputs), ours, rtol=0, atol=1e-6)
    assert "left at init" not in summary, summary


def test_convert_writes_the_task_class_of_an_fnet_task_directory(tmp_path, rng):
    """`python -m funnel_tfm.convert` on a finetuned FNet's export (fnet_config.json + the tagger head)."""
    task = randomized(TaggingTask.build(tiny_config(), n_tags=4), rng)
    export_view(task.checkpoint_view(), str(tmp_path / "export"))
    out, err = io.StringIO(), io.StringIO()
    status = convert.run(str(tmp_path / "export"), str(tmp_path / "hf"), "hf", out=out, err=err)
    assert status == 0, err.getvalue()
    text = out.getvalue()
    assert "read fnet checkpoint" in text and "token_classification head 'tagger'" in text, text
    assert "(transformers class FNetForTokenClassification)" in text and "written as zeros" in text, text
    hf_model, info = transformers.FNetForTokenClassification.from_pretrained(str(tmp_path / "hf"),
                                                                             output_loading_info=True)
    assert not (info["missing_keys"] or info["unexpected_keys"]), info
    inputs = inputs_for(TOKEN, rng)
    np.testing.assert_allclose(our_logits(task, inputs), hf_logits(hf_model.eval(), inputs), rtol=0, atol=TOLERANCE)
    status = convert.run(str(tmp_path / "export"), str(tmp_path / "original"), "original", out=out, err=err)
    assert status == 1 and "the original Funnel format cannot hold FNet" in err.getvalue()
    assert not os.path.exists(tmp_path / "original")


def test_writer_names_what_a_task_class_lacks(tmp_path):
    from funnel_tfm.checkpoints.hf_fnet import SEQUENCE_CLASSIFICATION, write_hf_fnet
    task = ClassificationTask.build(tiny_config(), 2, scope="cola")
    state = {name[len("model/"):]: keras.ops.convert_to_numpy(v)
             for name, v in task.checkpoint_view().named_variables().items()}
    with pytest.raises(CheckpointError, match="cannot write FNetForSequenceClassification: missing 2 weight.*"
                                              "sst-2/logit/kernel"):
        write_hf_fnet(str(tmp_path), tiny_config(), state, SEQUENCE_CLASSIFICATION, scope="sst-2")
    assert not os.listdir(tmp_path)


# ------------------------------------------------------------------------------------ the pinned departure
def test_fnet_classifier_head_has_no_dropout_as_in_the_original(rng):
    """N11: f_net's SequenceClassificationModel projects `pooled_output` directly; transformers (and the original
    Funnel's head, kept for Funnel backbones) apply dropout first. The pooled output is the same in all three:
    tanh(dense(last layer[:, 0]))."""
    task = ClassificationTask.build(tiny_config(dropout=0.1), 2, scope="cola")
    pooled = rng.normal(size=(4, WIDTH)).astype(np.float32)
    head = task.model.head
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(head(pooled, training=True)),
                                  keras.ops.convert_to_numpy(head(pooled, training=False)))
    hf_model = transformers.FNetForSequenceClassification(transformers.FNetConfig(hidden_dropout_prob=0.1))
    assert hf_model.dropout.p == 0.1  # transformers' departure: if it drops this, this line says so
    assert head.dropout.rate == 0.0
    assert ClassificationTask.build(tiny_funnel_config(dropout=0.1), 2).model.head.dropout.rate == 0.1


def test_exported_labels_round_trip(tmp_path, rng):
    """config.json carries the label count (id2label) transformers sizes the classifier by."""
    task = randomized(TaggingTask.build(tiny_config(), n_tags=7), rng)
    export(task.checkpoint_view(), str(tmp_path / "hf"), to="hf")
    values = json.load(open(tmp_path / "hf" / "config.json"))
    assert values["architectures"] == [TOKEN] and len(values["id2label"]) == 7
