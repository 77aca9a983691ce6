"""The backbone and the pretraining task models through the shared harness (build, call, summary, config,
`.keras`, one fit step). Those marked `backend_slice` (the backbone and the classifier model) are rerun by
`test_backends.py` on JAX and PyTorch (both positional forms are compared with transformers on every backend by
test_parity_hf); the rest use the same layers and run on TensorFlow only, to keep the suite's time (a JAX fit
step compiles for 10-40 s)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from funnel_tfm.modeling import FunnelTFM
from helpers import make_inputs, tiny_config
from model_test_case import run_model_test, to_numpy

SLICE = pytest.mark.backend_slice


@pytest.mark.parametrize("attention", [pytest.param("rel_shift", marks=SLICE), "factorized", "null"])
def test_backbone(tmp_path, rng, attention):
    config = tiny_config(rel_attn_type=attention, dropout=0.1, dropatt=0.1)
    inputs = make_inputs(rng, 16, [16, 11])
    model = run_model_test(FunnelTFM, {"config": config}, inputs, tmp_path,
                           expected_shapes={"sequence_output": (2, 4, 16), "decoder_output": (2, 16, 16),
                                            "pooled_output": (2, 16)},
                           train_output=lambda out: out["decoder_output"])
    assert np.isfinite(to_numpy(model(inputs)["decoder_output"])).all()


def test_backbone_without_decoder_mixed_precision(tmp_path, rng):
    inputs = make_inputs(rng, 16, [16, 9])
    model = run_model_test(FunnelTFM, {"config": tiny_config(), "use_decoder": False, "dtype": "mixed_bfloat16"},
                           inputs, tmp_path, expected_shapes={"sequence_output": (2, 4, 16)},
                           train_output=lambda out: out["pooled_output"])
    assert "decoder_output" not in model(inputs)
    assert model.dtype_policy.name == "mixed_bfloat16"


def _mlm_inputs(rng, batch_inputs, num_predict=3):
    seq_len = batch_inputs["token_ids"].shape[1]
    mapping = np.zeros((len(batch_inputs["token_ids"]), num_predict, seq_len), np.float32)
    for row in range(len(mapping)):
        for slot, position in enumerate(rng.choice(np.arange(1, 9), num_predict, replace=False)):
            mapping[row, slot, position] = 1.0
    return {**batch_inputs, "target_mapping": mapping}


def test_masked_lm_model(tmp_path, rng):
    from funnel_tfm.tasks.masked_lm import MaskedLMModel
    inputs = _mlm_inputs(rng, make_inputs(rng, 16, [16, 12]))
    run_model_test(MaskedLMModel, {"config": tiny_config()}, inputs, tmp_path, expected_shapes={"": (2, 3, 50)},
                   train_output=lambda logits: logits)


def both_logits(out):
    """The discriminator's and the generator's logits side by side: a loss that trains both models."""
    generator = keras.ops.reshape(out["generator_logits"], (keras.ops.shape(out["generator_logits"])[0], -1))
    return keras.ops.concatenate([out["discriminator_logits"], generator], axis=1)


def test_electra_model(tmp_path, rng):
    from funnel_tfm.tasks.electra import ElectraModel
    config = tiny_config(d_model=32, d_embed=32, d_inner=64, n_head=4, d_head=8)
    inputs = _mlm_inputs(rng, make_inputs(rng, 16, [16, 12]))
    model = run_model_test(ElectraModel, {"config": config, "width_shrink": 0.5}, inputs, tmp_path,
                           expected_shapes={"discriminator_logits": (2, 16), "generator_logits": (2, 3, 50)},
                           train_output=both_logits)
    assert model.generator.config.d_model == 16
    assert model.generator.embedding is model.discriminator.embedding  # one `input` layer, shared


@pytest.mark.parametrize("n_class", [pytest.param(3, marks=SLICE), 1])
def test_classifier_model(tmp_path, rng, n_class):
    """Encoder + pooled summary + classification (or regression) head; float32 logits under mixed precision."""
    from funnel_tfm.tasks.classification import ClassifierModel
    inputs = make_inputs(rng, 16, [16, 10])
    model = run_model_test(ClassifierModel, {"config": tiny_config(), "n_class": n_class, "scope": "mnli_matched",
                                             "dtype": "mixed_bfloat16"},
                           inputs, tmp_path, expected_shapes={"": (2, n_class)}, train_output=lambda logits: logits)
    assert keras.backend.standardize_dtype(model(inputs).dtype) == "float32"
    assert not model.backbone.use_decoder
    assert sorted(model.head.weight_names()) == ["mnli_matched/logit/bias", "mnli_matched/logit/kernel"]
