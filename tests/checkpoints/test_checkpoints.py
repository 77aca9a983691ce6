"""Checkpoint interoperability: original TF1 (core, FULL with generator and optimizer slots, finetuned heads),
the original PyTorch `model.pt`, Hugging Face (safetensors, pytorch_model.bin, task classes), and ours.

Outputs are compared numerically with transformers' independent implementation (<= 1e-5) wherever it has the
same part, and with a numpy reference or a separately assembled model where it does not (generator, SQuAD head).
Original-format inputs are written by a real TF1 `Saver` (tests/checkpoints/tf1_checkpoint.py), not by the code under test.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from funnel_tfm import checkpoints, convert  # noqa: E402
from funnel_tfm.checkpoints import original_format  # noqa: E402
from funnel_tfm import load_checkpoint  # noqa: E402
from funnel_tfm.checkpoints import CheckpointError, export  # noqa: E402
from funnel_tfm.layers.head_factories import (classification_head, discriminator_head, lm_head,  # noqa: E402
                                              squad_head)
from funnel_tfm.modeling import FunnelTFM  # noqa: E402
from helpers import make_inputs, randomize_weights, tiny_config  # noqa: E402
from tf1_checkpoint import write_tf1_checkpoint  # noqa: E402

TOLERANCE = 1e-5
SEQ_LEN = 16


# ------------------------------------------------------------------------------------------------ helpers
def hf_inputs(inputs: dict) -> dict:
    return {"input_ids": torch.tensor(inputs["token_ids"], dtype=torch.long),
            "attention_mask": torch.tensor(inputs["padding_mask"], dtype=torch.long),
            "token_type_ids": torch.tensor(inputs["segment_ids"], dtype=torch.long)}


def make_hf(config, hf_class, seed: int = 0, **extra):
    """A transformers model of `hf_class` with every parameter moved off its init."""
    torch.manual_seed(seed)
    hf_config = transformers.FunnelConfig(**config.to_hf_dict(), **extra)
    model = hf_class(hf_config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model


def optimizer_slots(state: dict) -> dict:
    """Adam slots of a FULL checkpoint for every weight (values distinct from the weights)."""
    slots = {}
    for name, value in state.items():
        slots[f"{name}/adam_m"] = (value * 0.5 + 0.25).astype(np.float32)
        slots[f"{name}/adam_v"] = np.abs(value).astype(np.float32)
    return slots


def original_dir(tmp_path, name: str, config, state: dict, **kwargs) -> str:
    directory = str(tmp_path / name)
    write_tf1_checkpoint(directory, state, **kwargs)
    config.to_json(os.path.join(directory, "net_config.json"), original=True)
    return directory


def full_inputs(rng, batch: int = 2) -> dict:
    return make_inputs(rng, SEQ_LEN, [SEQ_LEN] * batch)


def assert_close(a, b, what: str, atol: float = TOLERANCE) -> None:
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=atol, err_msg=what)


def run_convert(*args, **kwargs) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = convert.run(*args, out=out, err=err, **kwargs)
    return code, out.getvalue(), err.getvalue()


# Configs for the transformers comparisons: pooled blocks, repeats, factorized, and n_head * d_head != d_model.
HF_CONFIGS = {
    "rel_shift": dict(block_size="2_1x2_2"),
    "factorized": dict(block_size="2_2", rel_attn_type="factorized", pool_q_only=False),
    "heads_not_d_model": dict(block_size="2_2", n_head=3, d_head=5),
}


# ------------------------------------------------------------------------------- original core checkpoint
@pytest.mark.parametrize("name", sorted(HF_CONFIGS))
@pytest.mark.parametrize("use_decoder", [True, False])
def test_original_core_checkpoint_gives_transformers_numbers(tmp_path, rng, name, use_decoder):
    config = tiny_config(**HF_CONFIGS[name])
    hf_class = transformers.FunnelModel if use_decoder else transformers.FunnelBaseModel
    hf_model = make_hf(config, hf_class)
    hf_model.save_pretrained(tmp_path / "hf")
    state = load_checkpoint(str(tmp_path / "hf")).state()
    directory = original_dir(tmp_path, "orig", config, state)
    ckpt = load_checkpoint(directory)
    assert ckpt.source_format == "original" and ckpt.model.use_decoder == use_decoder
    assert ckpt.report.missing == ["model/sequnece_summary/summary/bias", "model/sequnece_summary/summary/kernel"]
    inputs = full_inputs(rng)
    ours = ckpt.model(inputs)
    with torch.no_grad():
        reference = hf_model(**hf_inputs(inputs)).last_hidden_state.numpy()
    assert_close(ours["decoder_output" if use_decoder else "sequence_output"], reference, name)
    # ... and FunnelTFM.from_pretrained reads the same directory.
    again = FunnelTFM.from_pretrained(directory)(inputs)
    np.testing.assert_array_equal(np.asarray(again["sequence_output"]), np.asarray(ours["sequence_output"]))


def test_legacy_names_bfloat16_and_checkpoint_prefix(tmp_path, rng):
    """modify_ckpt.py's legacy names load; bfloat16 tensors become float32; a prefix path works too."""
    config = tiny_config(block_size="2_2")
    model = FunnelTFM(config)
    randomize_weights(model, rng)
    ckpt = checkpoints.from_model(model)
    state = ckpt.state()
    legacy = {}
    for name, value in state.items():
        name = name.replace("model/encoder/", "model/transformer_xl/").replace("model/decoder/layer", "model/layer")
        legacy[name] = value
    bf16 = ("model/transformer_xl/layer_0/ff/layer_1/kernel",)
    directory = original_dir(tmp_path, "legacy", config, legacy, bfloat16=bf16)
    prefix = os.path.join(directory, "model.ckpt-1000")
    loaded = load_checkpoint(prefix)
    got = loaded.state()
    for name, value in state.items():
        if name.startswith("model/sequnece_summary"):
            continue
        if name == "model/encoder/layer_0/ff/layer_1/kernel":
            expected = value.astype(ml_dtypes.bfloat16).astype(np.float32)
            np.testing.assert_array_equal(got[name], expected)
        else:
            np.testing.assert_array_equal(got[name], value, err_msg=name)
    assert loaded.optimizer_state["global_step"] == 1000


# --------------------------------------------------------------------------------- FULL: generator, slots
def full_electra_state(config, rng, width_shrink: float = 0.5):
    """Discriminator + LM head + generator (own width, shared embedding) with random values, by original name."""
    model = FunnelTFM(config)
    generator = FunnelTFM(config.generator_config(width_shrink), shared_embedding=model.embedding)
    heads = {"binary": discriminator_head(config), "lm": lm_head(config, model.embedding)}
    gen_head = lm_head(generator.config, model.embedding)
    for part in [model, generator, gen_head, *heads.values()]:
        randomize_weights(part, rng)
    return checkpoints.from_model(model, heads, generator, gen_head).state()


def test_full_checkpoint_gives_generator_and_optimizer_state(tmp_path, rng):
    config = tiny_config(block_size="2_2")
    state = full_electra_state(config, rng)
    assert "generator/encoder/input_projection/kernel" in state  # d_embed 16 != generator d_model 8
    assert not any(n.startswith("generator/input/") for n in state)  # the generator has no own embedding
    slots = optimizer_slots(state)
    directory = original_dir(tmp_path, "full", config, {**state, **slots})

    ckpt = load_checkpoint(directory)
    assert sorted(ckpt.heads) == ["binary", "lm"]
    gen = ckpt.generator
    assert (gen.config.d_model, gen.config.n_head, gen.config.d_inner, gen.config.d_head) == (8, 2, 16, 4)
    assert gen.embedding is ckpt.model.embedding and ckpt.generator_head.embedding is ckpt.model.embedding
    # Optimizer state: every slot and global_step kept, and reported as skipped.
    assert set(ckpt.optimizer_state) == set(slots) | {"global_step"}
    for name, value in slots.items():
        np.testing.assert_array_equal(ckpt.optimizer_state[name], value)
    assert all("optimizer state" in ckpt.report.skipped[name] for name in slots)
    assert not ckpt.report.missing

    # The generator as a separately assembled model from the same values gives the same outputs.
    standalone = FunnelTFM(gen.config)
    for name, variable in standalone.weight_names().items():
        if name.startswith("sequnece_summary"):
            continue
        variable.assign(state[("model/" if name.startswith("input/") else "generator/") + name])
    standalone_head = lm_head(gen.config, standalone.embedding)
    for name, variable in standalone_head.weight_names().items():
        variable.assign(state["generator/" + name])
    inputs = full_inputs(rng)
    positions = np.array([[1, 5, 9], [2, 3, 15]], np.int32)
    ours = gen(inputs)
    ref = standalone(inputs)
    assert_close(ours["decoder_output"], ref["decoder_output"], "generator decoder output", atol=0)
    assert_close(ckpt.generator_head(ours["decoder_output"], positions),
                 standalone_head(ref["decoder_output"], positions), "generator logits", atol=0)

    # Discriminator head against its numpy formula: gelu(h·W + b)·w + c.
    hidden = np.asarray(ckpt.model(inputs)["decoder_output"], np.float64)
    w = {k: state[f"model/{k}"].astype(np.float64) for k in
         ("binary_proj/dense/kernel", "binary_proj/dense/bias", "binary_loss/weight", "binary_loss/bias")}
    x = hidden @ w["binary_proj/dense/kernel"] + w["binary_proj/dense/bias"]
    gelu = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    expected = gelu @ w["binary_loss/weight"] + w["binary_loss/bias"]
    assert_close(ckpt.heads["binary"](ckpt.model(inputs)["decoder_output"]), expected, "discriminator", atol=1e-4)

    # FULL -> original keeps everything, optimizer state included, bit for bit.
    report = export(ckpt, str(tmp_path / "again"), to="original")
    assert report.written == len(state)
    again = original_format.read_tf_checkpoint(original_format.find_tf_checkpoint(str(tmp_path / "again")))
    assert set(again.state) == set(state) and set(again.optimizer_state) == set(ckpt.optimizer_state)
    for name, value in state.items():
        np.testing.assert_array_equal(again.state[name], value)
    for name, value in ckpt.optimizer_state.items():
        np.testing.assert_array_equal(again.optimizer_state[name], value)
    # FULL -> keras keeps the generator and heads, and says the optimizer state was not written.
    report = export(ckpt, str(tmp_path / "keras"), to="keras")
    assert set(report.skipped) == set(ckpt.optimizer_state)
    keras_ckpt = load_checkpoint(str(tmp_path / "keras"))
    assert keras_ckpt.generator is not None and sorted(keras_ckpt.heads) == ["binary", "lm"]
    for name, value in keras_ckpt.state().items():
        np.testing.assert_array_equal(value, state[name])


# ----------------------------------------------------------------------------------- finetuned task heads
@pytest.mark.parametrize("hf_class_name, extra", [
    ("FunnelForSequenceClassification", {"num_labels": 3, "finetuning_task": "mnli_matched"}),
    ("FunnelForSequenceClassification", {"num_labels": 1, "finetuning_task": "sts-b"}),
    ("FunnelForMultipleChoice", {}),
    ("FunnelForPreTraining", {}),
])
def test_task_heads_through_original_and_back_to_transformers(tmp_path, rng, hf_class_name, extra):
    """HF task model -> ours -> original TF1 checkpoint (with Adam slots) -> ours: head outputs equal HF's;
    then ours -> HF export that transformers loads with no missing/unexpected keys and identical outputs."""
    config = tiny_config(block_size="2_2", n_head=3, d_head=5)
    hf_class = getattr(transformers, hf_class_name)
    hf_model = make_hf(config, hf_class, **extra)
    hf_model.save_pretrained(tmp_path / "hf")
    from_hf = load_checkpoint(str(tmp_path / "hf"))
    assert not from_hf.report.skipped
    # FunnelForPreTraining is built on FunnelModel, which has no pooled summary; the other two use it.
    summary = ["model/sequnece_summary/summary/bias", "model/sequnece_summary/summary/kernel"]
    assert from_hf.report.missing == (summary if hf_class_name == "FunnelForPreTraining" else [])
    state = from_hf.state()
    directory = original_dir(tmp_path, "orig", config, {**state, **optimizer_slots(state)})
    ckpt = load_checkpoint(directory)
    (scope, head), = ckpt.heads.items()

    choices = 4
    inputs = full_inputs(rng, batch=2 * choices if hf_class_name == "FunnelForMultipleChoice" else 3)
    out = ckpt.model(inputs)
    if hf_class_name == "FunnelForSequenceClassification":
        assert scope == extra["finetuning_task"] and head.n_class == extra["num_labels"]
        ours = head(out["pooled_output"])
        hf_out = hf_model(**hf_inputs(inputs)).logits
    elif hf_class_name == "FunnelForMultipleChoice":
        assert scope == "race"
        ours = head(out["pooled_output"], num_choices=choices)
        hf_out = hf_model(**{k: v.reshape(2, choices, SEQ_LEN) for k, v in hf_inputs(inputs).items()}).logits
    else:
        assert scope == "binary"
        ours = head(out["decoder_output"])
        hf_out = hf_model(**hf_inputs(inputs)).logits
    with torch.no_grad():
        reference = hf_out.detach().numpy()
    assert_close(ours if reference.ndim == np.asarray(ours).ndim else np.asarray(ours)[..., 0], reference,
                 hf_class_name)

    report = export(ckpt, str(tmp_path / "back"), to="hf")
    assert report.detail == f"transformers class {hf_class_name}"
    assert all("optimizer" in why for why in report.skipped.values())
    back, info = hf_class.from_pretrained(tmp_path / "back", output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    back_state = back.state_dict()
    for key, value in hf_model.state_dict().items():
        np.testing.assert_array_equal(back_state[key].numpy(), value.numpy(), err_msg=key)


def squad_reference(hidden, p_mask, cls_index, start_positions, w) -> dict:
    """Semantics F5 in numpy float64 (training mode: end conditioned on the given start)."""
    def log_softmax(x):
        x = x - x.max(-1, keepdims=True)
        return x - np.log(np.exp(x).sum(-1, keepdims=True))

    def masked(x):
        return x * (1 - p_mask) - 1e30 * p_mask

    def layer_norm(x, gamma, beta):
        mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + 1e-8) * gamma + beta

    batch = np.arange(hidden.shape[0])
    start_logits = masked(hidden @ w["start_logits/dense/kernel"][:, 0] + w["start_logits/dense/bias"][0])
    start_feature = np.broadcast_to(hidden[batch, start_positions][:, None], hidden.shape)
    end_in = np.tanh(np.concatenate([hidden, start_feature], -1) @ w["end_logits/dense_0/kernel"]
                     + w["end_logits/dense_0/bias"])
    end_in = layer_norm(end_in, w["end_logits/layer_norm/gamma"], w["end_logits/layer_norm/beta"])
    end_logits = masked(end_in @ w["end_logits/dense_1/kernel"][:, 0] + w["end_logits/dense_1/bias"][0])
    start_p = np.exp(log_softmax(start_logits))
    answer_in = np.concatenate([np.einsum("bl,bld->bd", start_p, hidden), hidden[batch, cls_index]], -1)
    cls_logits = (np.tanh(answer_in @ w["answer_class/dense_0/kernel"] + w["answer_class/dense_0/bias"])
                  @ w["answer_class/dense_1/kernel"][:, 0])
    return {"start_log_probs": log_softmax(start_logits), "end_log_probs": log_softmax(end_logits),
            "cls_logits": cls_logits}


def test_squad_and_mlm_heads_of_an_original_checkpoint(tmp_path, rng):
    config = tiny_config(block_size="2_2")
    model = FunnelTFM(config)
    heads = {"squad": squad_head(config), "lm": lm_head(config, model.embedding)}
    for part in [model, *heads.values()]:
        randomize_weights(part, rng)
    state = checkpoints.from_model(model, heads).state()
    directory = original_dir(tmp_path, "squad", config, state)
    ckpt = load_checkpoint(directory)
    squad = ckpt.heads["squad"]
    assert squad.conditional_end and squad.use_answer_class
    assert ckpt.heads["lm"].embedding is ckpt.model.embedding
    inputs = full_inputs(rng)
    hidden = ckpt.model(inputs)["decoder_output"]
    p_mask = np.zeros((2, SEQ_LEN), np.float32)
    p_mask[:, 1:4] = 1.0  # question tokens
    p_mask[:, -1] = 1.0
    cls_index = np.zeros(2, np.int32)
    starts = np.array([5, 9], np.int32)
    ours = squad(hidden, p_mask, cls_index, start_positions=starts)
    weights = {k[len("model/"):]: v.astype(np.float64) for k, v in state.items()}
    expected = squad_reference(np.asarray(hidden, np.float64), p_mask, cls_index, starts, weights)
    real = p_mask == 0
    for key in ("start_log_probs", "end_log_probs"):
        assert_close(np.asarray(ours[key])[real], expected[key][real], key, atol=1e-4)
    assert_close(ours["cls_logits"], expected["cls_logits"], "cls_logits", atol=1e-4)
    # Inference: the top start is the best start, and its end scores equal the training-mode ones for it.
    beams = squad(hidden, p_mask, cls_index)
    best_start = np.asarray(beams["start_top_index"])[:, 0]
    np.testing.assert_array_equal(best_start, np.argmax(expected["start_log_probs"], -1))
    conditioned = squad(hidden, p_mask, cls_index, start_positions=best_start)["end_log_probs"]
    top_end = np.sort(np.asarray(conditioned), -1)[:, ::-1][:, :squad.end_n_top]
    assert_close(np.asarray(beams["end_top_log_probs"])[:, :squad.end_n_top], top_end, "end beams", atol=1e-5)
    assert np.asarray(beams["end_top_index"]).shape == (2, squad.start_n_top * squad.end_n_top)


# ---------------------------------------------------------------------------------- Hugging Face formats
@pytest.mark.parametrize("use_decoder", [True, False])
def test_hf_export_of_our_model_loads_in_transformers(tmp_path, rng, use_decoder):
    config = tiny_config(block_size="2_1x2", n_head=2, d_head=6, rel_attn_type="factorized")
    model = FunnelTFM(config, use_decoder=use_decoder)
    randomize_weights(model, rng)
    report = checkpoints.export(checkpoints.from_model(model), str(tmp_path / "hf"), to="hf")
    hf_class = transformers.FunnelModel if use_decoder else transformers.FunnelBaseModel
    why = f"{hf_class.__name__} has no place for it"  # transformers' backbone has no pooled summary
    assert report.skipped == {"model/sequnece_summary/summary/bias": why, "model/sequnece_summary/summary/kernel": why}
    hf_model, info = hf_class.from_pretrained(tmp_path / "hf", output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    inputs = full_inputs(rng)
    with torch.no_grad():
        reference = hf_model.eval()(**hf_inputs(inputs)).last_hidden_state.numpy()
    out = model(inputs)
    assert_close(out["decoder_output" if use_decoder else "sequence_output"], reference, "hf export")
    # ours -> hf -> ours is exact for everything transformers holds.
    back = load_checkpoint(str(tmp_path / "hf")).state()
    for name, value in checkpoints.from_model(model).state().items():
        if name in back:
            np.testing.assert_array_equal(back[name], value, err_msg=name)
    assert len(back) == len(model.weight_names()) - 2


def test_pytorch_model_bin_and_missing_torch(tmp_path, rng, monkeypatch):
    config = tiny_config(block_size="2_2")
    hf_model = make_hf(config, transformers.FunnelModel)
    hf_model.config.save_pretrained(tmp_path / "bin")
    torch.save(hf_model.state_dict(), tmp_path / "bin" / "pytorch_model.bin")  # the pre-safetensors hub layout
    inputs = full_inputs(rng)
    with torch.no_grad():
        reference = hf_model(**hf_inputs(inputs)).last_hidden_state.numpy()
    assert_close(FunnelTFM.from_pretrained(str(tmp_path / "bin"))(inputs)["decoder_output"], reference, "bin")
    monkeypatch.setitem(sys.modules, "torch", None)  # as on a machine without PyTorch
    with pytest.raises(CheckpointError, match="pytorch_model.bin needs PyTorch"):
        load_checkpoint(str(tmp_path / "bin"))


def test_foreign_transformers_heads_are_reported_not_loaded(tmp_path):
    config = tiny_config(block_size="2_2")
    make_hf(config, transformers.FunnelForQuestionAnswering).save_pretrained(tmp_path / "qa")
    ckpt = load_checkpoint(str(tmp_path / "qa"))
    assert not ckpt.heads and ckpt.model.use_decoder
    why = "transformers' span head (one Linear for start and end) is not the original SQuAD head"
    assert ckpt.report.skipped == {"qa_outputs.weight": why, "qa_outputs.bias": why}


def test_transformers_token_classification_brings_the_tagger_head(tmp_path):
    """FunnelForTokenClassification's `classifier` is the tagger's head (tests/test_tagger.py compares logits)."""
    config = tiny_config(block_size="2_2")
    make_hf(config, transformers.FunnelForTokenClassification, num_labels=5).save_pretrained(tmp_path / "tok")
    ckpt = load_checkpoint(str(tmp_path / "tok"))
    assert list(ckpt.heads) == ["tagger"] and ckpt.heads["tagger"].n_class == 5 and ckpt.model.use_decoder
    assert not ckpt.report.skipped and all(n.startswith("model/sequnece_summary/") for n in ckpt.report.missing)


def test_original_pytorch_release(tmp_path, rng):
    """`model.pt` + `net_config.pytorch.json` of the original PyTorch code (semantics C7 names, no transposes)."""
    config = tiny_config(block_size="2_2", decoder_size="0")
    hf_model = make_hf(config, transformers.FunnelBaseModel)
    hf_model.save_pretrained(tmp_path / "hf")
    state = load_checkpoint(str(tmp_path / "hf")).state()
    to_pt = {"model/input/word_embedding/lookup_table": "input_layer.0.lookup_table",
             "model/input/layer_norm/gamma": "input_layer.1.weight", "model/input/layer_norm/beta": "input_layer.1.bias"}
    attention = {v: k for k, v in original_format._PT_ATTENTION.items()}
    ffn = {v: k for k, v in original_format._PT_FFN.items()}
    pt_state = {}
    for name, value in state.items():
        if name in to_pt:
            key = to_pt[name]
        else:
            _, _, layer, scope, rest = name.split("/", 4)
            index = layer.split("_")[1]
            key = (f"attn_layers.{index}.{attention[rest]}" if scope == "rel_attn"
                   else f"pffn_layers.{index}.{ffn[rest]}")
        pt_state[key] = torch.tensor(value)
    pt_state["cls_head.0.weight"] = torch.zeros(16, 16)
    directory = tmp_path / "pt"
    directory.mkdir()
    torch.save(pt_state, directory / "model.pt")
    pt_json = {key: value for key, value in config.to_dict().items() if key in
               ("vocab_size", "d_embed", "d_model", "n_head", "d_head", "d_inner", "dropout", "dropatt", "dropact",
                "block_size", "pooling_type", "pooling_size", "separate_cls", "pool_q_only")}
    (directory / "net_config.pytorch.json").write_text(json.dumps(pt_json))
    ckpt = load_checkpoint(str(directory))
    assert ckpt.source_format == "original_pytorch" and not ckpt.model.use_decoder
    assert "cls_head.0.weight" in ckpt.report.skipped
    inputs = full_inputs(rng)
    with torch.no_grad():
        reference = hf_model(**hf_inputs(inputs)).last_hidden_state.numpy()
    assert_close(ckpt.model(inputs)["sequence_output"], reference, "original PyTorch")


# ------------------------------------------------------------------------------------------- round trips
def test_round_trips_through_every_format_are_exact(tmp_path, rng):
    config = tiny_config(block_size="2_2", n_head=3, d_head=5)
    model = FunnelTFM(config, use_decoder=False)
    heads = {"cola": classification_head(config, 2, "cola")}
    for part in [model, *heads.values()]:
        randomize_weights(part, rng)
    start = checkpoints.from_model(model, heads)
    reference = start.state()
    path = str(tmp_path / "start")
    export(start, path, to="keras")
    for step, to in enumerate(["original", "hf", "keras", "original", "keras"]):
        target = str(tmp_path / f"{step}-{to}")
        assert export(load_checkpoint(path), target, to=to).skipped == {}
        path = target
    final = load_checkpoint(path)
    assert sorted(final.heads) == ["cola"] and not final.model.use_decoder
    assert set(final.state()) == set(reference)
    for name, value in final.state().items():
        np.testing.assert_array_equal(value, reference[name], err_msg=name)
    inputs = full_inputs(rng)
    np.testing.assert_array_equal(np.asarray(final.heads["cola"](final.model(inputs)["pooled_output"])),
                                  np.asarray(heads["cola"](model(inputs)["pooled_output"])))


def test_use_decoder_false_drops_and_reports_the_decoder(tmp_path, rng):
    config = tiny_config(block_size="2_2")
    model = FunnelTFM(config)
    randomize_weights(model, rng)
    export(checkpoints.from_model(model), str(tmp_path / "full"), to="original")
    base = load_checkpoint(str(tmp_path / "full"), use_decoder=False)
    assert not base.model.use_decoder
    assert all("without the decoder" in base.report.skipped[n] for n in base.report.skipped if "/decoder/" in n)
    assert sum("/decoder/" in n for n in base.report.skipped) == sum(n.startswith("decoder/") for n in
                                                                     model.weight_names())


# ------------------------------------------------------------------------------------------------ errors
@pytest.fixture
def original_checkpoint(tmp_path, rng):
    config = tiny_config(block_size="2_2")
    model = FunnelTFM(config)
    randomize_weights(model, rng)
    state = checkpoints.from_model(model).state()
    return config, state, original_dir(tmp_path, "orig", config, state)


def assert_one_error_line(code: int, err: str, *fragments: str) -> None:
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convert: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_convert_reports_what_it_loaded_skipped_and_wrote(tmp_path, rng):
    config = tiny_config(block_size="2_2")
    state = full_electra_state(config, rng)
    directory = original_dir(tmp_path, "full", config, {**state, **optimizer_slots(state)})
    code, out, err = run_convert(directory, str(tmp_path / "hf"), "hf")
    assert code == 0, err
    assert f"read original checkpoint {directory}: loaded {len(state)} tensors" in out
    assert "generator (d_model 8)" in out and "discriminator head 'binary'" in out and "lm head 'lm'" in out
    assert f"{2 * len(state) + 1} x optimizer state" in out
    assert "wrote hf checkpoint" in out and "(transformers class FunnelForPreTraining)" in out
    assert "x FunnelForPreTraining has no place for it: generator/" in out


def test_convert_error_wrong_directory(tmp_path):
    output = tmp_path / "out"
    assert_one_error_line(*run_convert(str(tmp_path / "absent"), str(output), "hf")[::2], "absent: no such directory")
    (tmp_path / "empty").mkdir()
    assert_one_error_line(*run_convert(str(tmp_path / "empty"), str(output), "hf")[::2],
                          "not a checkpoint directory", "net_config.json")
    assert not output.exists()


def test_convert_error_config_does_not_match_weights(tmp_path, original_checkpoint):
    config, _, directory = original_checkpoint
    config.replace(d_inner=48).to_json(os.path.join(directory, "net_config.json"), original=True)
    output = tmp_path / "out"
    code, _, err = run_convert(directory, str(output), "keras")
    assert_one_error_line(code, err, "model/encoder/layer_0/ff/layer_1/kernel has shape (16, 32) in the checkpoint "
                                     "but (16, 48) in the model")
    assert not output.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    config.replace(block_size="2_2_2").to_json(os.path.join(directory, "net_config.json"), original=True)
    code, _, err = run_convert(directory, str(output), "keras")
    assert_one_error_line(code, err, "required weight(s) missing", "model/encoder/layer_4/",
                          "weight(s) that the config does not build", "model/decoder/layer_4/")
    config.replace(block_size="1_1").to_json(os.path.join(directory, "net_config.json"), original=True)
    code, _, err = run_convert(directory, str(output), "keras")
    assert_one_error_line(code, err, "that the config does not build", "model/encoder/layer_2/")


def test_convert_error_missing_variables_are_listed(tmp_path, original_checkpoint):
    config, state, _ = original_checkpoint
    removed = sorted(n for n in state if n.startswith("model/encoder/layer_1/ff/"))
    partial = {n: v for n, v in state.items() if n not in removed}
    directory = original_dir(tmp_path, "partial", config, partial)
    code, _, err = run_convert(directory, str(tmp_path / "out"), "hf")
    assert_one_error_line(code, err, f"{len(removed)} required weight(s) missing", *removed)


@pytest.mark.parametrize("damage", ["truncated_data", "garbage_index", "bad_json", "garbage_safetensors"])
def test_convert_error_unreadable_files(tmp_path, original_checkpoint, damage):
    config, _, directory = original_checkpoint
    if damage == "truncated_data":
        data = next(p for p in os.listdir(directory) if ".data-" in p)
        path = os.path.join(directory, data)
        with open(path, "r+b") as handle:
            handle.truncate(os.path.getsize(path) // 2)
        expected = "model.ckpt-1000"
    elif damage == "garbage_index":
        with open(os.path.join(directory, "model.ckpt-1000.index"), "wb") as handle:
            handle.write(b"\x00garbage" * 10)
        expected = "not a readable TF checkpoint"
    elif damage == "bad_json":
        with open(os.path.join(directory, "net_config.json"), "w") as handle:
            handle.write('{"d_model": 16,\n oops}')
        expected = "net_config.json: not valid json (line 2"
    else:
        directory = str(tmp_path / "keras")
        export(load_checkpoint(original_checkpoint[2]), directory, to="keras")
        with open(os.path.join(directory, "model.safetensors"), "wb") as handle:
            handle.write(b"not a safetensors file")
        expected = "model.safetensors: not a readable safetensors file"
    output = tmp_path / "out"
    code, _, err = run_convert(directory, str(output), "original")
    assert_one_error_line(code, err, expected)
    assert not output.exists()


def test_convert_keeps_an_existing_output_unless_overwrite(tmp_path, original_checkpoint):
    _, state, directory = original_checkpoint
    output = tmp_path / "out"
    output.mkdir()
    (output / "precious.txt").write_text("keep me")
    code, _, err = run_convert(directory, str(output), "keras")
    assert_one_error_line(code, err, "already exists")
    assert (output / "precious.txt").read_text() == "keep me"
    code, _, err = run_convert(directory, str(output), "keras", overwrite=True)
    assert code == 0, err
    assert sorted(os.listdir(output)) == ["funnel_config.json", "model.safetensors"]


def test_failed_export_leaves_no_output(tmp_path, rng):
    """A config transformers cannot express fails before anything is visible at the output path."""
    model = FunnelTFM(tiny_config(block_size="2_2", d_embed=8))
    randomize_weights(model, rng)
    export(checkpoints.from_model(model), str(tmp_path / "keras"), to="keras")
    code, _, err = run_convert(str(tmp_path / "keras"), str(tmp_path / "hf"), "hf")
    assert_one_error_line(code, err, "d_embed (8) != d_model (16)")
    assert sorted(os.listdir(tmp_path)) == ["keras"]


def test_convert_command_line(tmp_path, original_checkpoint):
    """The real entry point: exit status and a single error line on stderr after TensorFlow's own start-up lines."""
    _, _, directory = original_checkpoint
    command = [sys.executable, "-m", "funnel_tfm.convert", f"--input={directory}", f"--output={tmp_path / 'o'}",
               "--to=hf"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "wrote hf checkpoint" in done.stdout
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    ours = [line for line in done.stderr.splitlines() if line.startswith("convert:")]
    assert len(ours) == 1 and "already exists" in ours[0]
