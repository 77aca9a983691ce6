"""Live parity with transformers' independent PyTorch Funnel implementation (FunnelModel / FunnelBaseModel).

The same random weights go into both (HF saves model.safetensors, `FunnelTFM.from_pretrained` reads it), and
every encoder hidden state, the encoder output and the decoder output are compared, max abs diff <= 1e-5.

Where transformers departs from the original (docs/original_semantics.md is the authority), the HF reference is patched to the
original behaviour in one named place, and a separate test shows that the departure is real:
  * mask pooling: the original pools its 1=pad mask with `min` (a pooled token is real if ANY source is real);
    transformers pools its 1=real mask with `min` (real only if ALL sources are real).
  * the decoder bridge adds the LAST layer output of block 0 (index P0*R0); transformers indexes
    `hidden_states[block_sizes[0]]`, which is wrong when block 0 has repeats ("2x2_...").
  * `separate_cls=False`: the original still zeroes row/column 0 of the positional and segment terms (semantics M6)
    and its rel_shift form places pooled tokens at (1 - S) + t·S (semantics M4); transformers does neither.
"""

from __future__ import annotations

import contextlib
import itertools

import keras
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from transformers.models.funnel import modeling_funnel  # noqa: E402

from funnel_tfm.modeling import FunnelTFM  # noqa: E402
from helpers import copy_weights, make_inputs, randomize_weights, tiny_config  # noqa: E402

TOLERANCE = 1e-5


def to_numpy(x):
    """A backend tensor (TensorFlow, JAX or PyTorch) or array as numpy."""
    return keras.ops.convert_to_numpy(x)


@contextlib.contextmanager
def original_mask_pooling():
    """Makes transformers pool its 1=real mask the way the original pools its 1=pad mask."""
    structure = modeling_funnel.FunnelAttentionStructure
    hf_pool = structure.pool_tensor

    def pool_tensor(self, tensor, mode="mean", stride=2):
        return hf_pool(self, tensor, mode="max" if mode == "min" else mode, stride=stride)

    structure.pool_tensor = pool_tensor
    try:
        yield
    finally:
        structure.pool_tensor = hf_pool


@contextlib.contextmanager
def original_without_separate_cls(rel_shift_positions: bool):
    """semantics M6: the cls mask always applies. semantics M4: rel_shift positions (1 - S) + t·S also without separate_cls."""
    structure = modeling_funnel.FunnelAttentionStructure
    hf_init, hf_pool_pos = structure.init_attention_inputs, structure.stride_pool_pos

    def init_attention_inputs(self, inputs_embeds, attention_mask=None, token_type_ids=None):
        position_embeds, token_type_mat, attention_mask, _ = hf_init(self, inputs_embeds, attention_mask,
                                                                     token_type_ids)
        seq_len = inputs_embeds.size(1)
        cls_mask = torch.nn.functional.pad(inputs_embeds.new_ones([seq_len - 1, seq_len - 1]), (1, 0, 1, 0))
        return position_embeds, token_type_mat, attention_mask, cls_mask

    def stride_pool_pos(self, pos_id, block_index):
        count = len(pos_id[::2])
        return [1 - 2 ** block_index + t * 2 ** block_index for t in range(count)]

    structure.init_attention_inputs = init_attention_inputs
    if rel_shift_positions:
        structure.stride_pool_pos = stride_pool_pos
    try:
        yield
    finally:
        structure.init_attention_inputs, structure.stride_pool_pos = hf_init, hf_pool_pos


def build_pair(config, use_decoder: bool, tmp_path, seed: int = 0):
    """A transformers model with perturbed random weights and our model loaded from its safetensors."""
    torch.manual_seed(seed)
    hf_config = modeling_funnel.FunnelConfig(**config.to_hf_dict())
    hf_class = modeling_funnel.FunnelModel if use_decoder else modeling_funnel.FunnelBaseModel
    hf_model = hf_class(hf_config).eval()
    with torch.no_grad():  # move LayerNorm scales/biases and zero biases off their trivial init
        for parameter in hf_model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    hf_model.save_pretrained(tmp_path)
    ours = FunnelTFM.from_pretrained(str(tmp_path))
    assert ours.use_decoder == use_decoder
    return hf_model, ours


def hf_forward(hf_model, config, inputs, use_decoder: bool) -> dict:
    """Encoder hiddens and outputs from transformers; the decoder is run from its parts (see module doc)."""
    ids = torch.tensor(inputs["token_ids"], dtype=torch.long)
    seg = torch.tensor(inputs["segment_ids"], dtype=torch.long)
    mask = torch.tensor(inputs["padding_mask"], dtype=torch.float32)
    with torch.no_grad():
        backbone = hf_model
        embeddings = backbone.embeddings(ids)
        encoded = backbone.encoder(embeddings, attention_mask=mask, token_type_ids=seg, output_hidden_states=True)
        result = {"encoder_hiddens": [h.numpy() for h in encoded.hidden_states[1:]],
                  "sequence_output": encoded.last_hidden_state.numpy()}
        if use_decoder:
            # The original adds the last layer output of block 0: hidden_states[P0 * R0] (0 = embeddings).
            decoded = backbone.decoder(final_hidden=encoded.last_hidden_state,
                                       first_block_hidden=encoded.hidden_states[config.block_depths[0]],
                                       attention_mask=mask, token_type_ids=seg)
            result["decoder_output"] = decoded.last_hidden_state.numpy()
            result["hf_model_output"] = hf_model(ids, attention_mask=mask, token_type_ids=seg).last_hidden_state.numpy()
    return result


def assert_close(ours: dict, reference: dict, what: str = "") -> None:
    assert len(ours["encoder_hiddens"]) == len(reference["encoder_hiddens"])
    for index, (a, b) in enumerate(zip(ours["encoder_hiddens"], reference["encoder_hiddens"])):
        np.testing.assert_allclose(to_numpy(a), b, rtol=0, atol=TOLERANCE, err_msg=f"{what} encoder hidden {index}")
    np.testing.assert_allclose(to_numpy(ours["sequence_output"]), reference["sequence_output"], rtol=0,
                               atol=TOLERANCE, err_msg=f"{what} sequence_output")
    if "decoder_output" in reference:
        np.testing.assert_allclose(to_numpy(ours["decoder_output"]), reference["decoder_output"], rtol=0,
                                   atol=TOLERANCE, err_msg=f"{what} decoder_output")


# Block strings with and without repeats (block 0 repeated in the second); lengths 16 (divisible) and 13 (odd:
# the original's factorized form and its truncating decoder both failed there). Rows: unpadded, padded so that
# a pooling window holds one real and one pad token, padded on a window boundary.
MATRIX = list(itertools.product(["rel_shift", "factorized"], [True, False], ["mean", "max"], [True, False],
                                [("2_1x2_2", "1"), ("2x2_1_1x2", "2")], [16, 13]))
BLOCKS = [("2_1x2_2", "1"), ("2x2_1_1x2", "2")]
# The slice that also runs on the JAX and PyTorch backends (tests/modeling/test_backends.py): every value of every axis.
BACKEND_SLICE = {("rel_shift", True, "mean", True, BLOCKS[0], 16), ("factorized", False, "max", False, BLOCKS[1], 13),
                 ("rel_shift", False, "max", True, BLOCKS[1], 16), ("factorized", True, "mean", False, BLOCKS[0], 13),
                 ("rel_shift", True, "max", False, BLOCKS[1], 13), ("factorized", False, "mean", True, BLOCKS[0], 16)}
MATRIX = [pytest.param(*case, marks=pytest.mark.backend_slice) if case in BACKEND_SLICE else case for case in MATRIX]
PADDING = {16: [16, 12, 11], 13: [13, 8, 9]}


@pytest.mark.parametrize("attention,truncate,pooling_type,pool_q_only,blocks,seq_len", MATRIX)
def test_matches_transformers(tmp_path, rng, attention, truncate, pooling_type, pool_q_only, blocks, seq_len):
    block_size, decoder_size = blocks
    config = tiny_config(rel_attn_type=attention, truncate_seq=truncate, pooling_type=pooling_type,
                         pool_q_only=pool_q_only, block_size=block_size, decoder_size=decoder_size)
    hf_model, ours = build_pair(config, use_decoder=True, tmp_path=tmp_path)
    inputs = make_inputs(rng, seq_len, PADDING[seq_len])
    with original_mask_pooling():
        reference = hf_forward(hf_model, config, inputs, use_decoder=True)
    outputs = ours(inputs)
    assert_close(outputs, reference, f"{attention} truncate={truncate} {pooling_type} q_only={pool_q_only}")
    if config.block_repeats[0] == 1:  # no departure in the bridge: transformers' own FunnelModel agrees too
        np.testing.assert_allclose(to_numpy(outputs["decoder_output"]), reference["hf_model_output"], rtol=0,
                                   atol=TOLERANCE)


@pytest.mark.backend_slice
@pytest.mark.parametrize("attention", ["rel_shift", "factorized"])
def test_base_model_without_decoder(tmp_path, rng, attention):
    config = tiny_config(rel_attn_type=attention, block_size="3_2_2")
    hf_model, ours = build_pair(config, use_decoder=False, tmp_path=tmp_path)
    inputs = make_inputs(rng, 16, [16, 10])
    with original_mask_pooling():
        reference = hf_forward(hf_model, config, inputs, use_decoder=False)
    outputs = ours(inputs)
    assert "decoder_output" not in outputs
    assert_close(outputs, reference)


def test_transformers_mask_pooling_departs_from_the_original(tmp_path, rng):
    """Without the patch, the row whose pooling window mixes a real and a pad token differs; others agree."""
    config = tiny_config()
    hf_model, ours = build_pair(config, use_decoder=False, tmp_path=tmp_path)
    inputs = make_inputs(rng, 16, [16, 12])
    reference = hf_forward(hf_model, config, inputs, use_decoder=False)
    ours_out = to_numpy(ours(inputs)["sequence_output"])
    np.testing.assert_allclose(ours_out[0], reference["sequence_output"][0], rtol=0, atol=TOLERANCE)
    assert np.abs(ours_out[1] - reference["sequence_output"][1]).max() > 1e-3


def test_transformers_bridge_departs_with_block0_repeats(tmp_path, rng):
    config = tiny_config(block_size="2x2_1_1", decoder_size="1")
    hf_model, ours = build_pair(config, use_decoder=True, tmp_path=tmp_path)
    inputs = make_inputs(rng, 16, [16, 16])
    reference = hf_forward(hf_model, config, inputs, use_decoder=True)
    ours_out = to_numpy(ours(inputs)["decoder_output"])
    np.testing.assert_allclose(ours_out, reference["decoder_output"], rtol=0, atol=TOLERANCE)
    assert np.abs(ours_out - reference["hf_model_output"]).max() > 1e-3


@pytest.mark.backend_slice
@pytest.mark.parametrize("attention", ["rel_shift", "factorized"])
@pytest.mark.parametrize("pool_q_only", [True, False])
def test_without_separate_cls_matches_the_original_rules(tmp_path, rng, attention, pool_q_only):
    config = tiny_config(rel_attn_type=attention, separate_cls=False, pool_q_only=pool_q_only)
    hf_model, ours = build_pair(config, use_decoder=True, tmp_path=tmp_path)
    inputs = make_inputs(rng, 16, [16, 11])
    with original_mask_pooling(), original_without_separate_cls(rel_shift_positions=attention == "rel_shift"):
        reference = hf_forward(hf_model, config, inputs, use_decoder=True)
    assert_close(ours(inputs), reference, f"separate_cls=False {attention}")


def test_rel_shift_and_factorized_agree(rng):  # TensorFlow only: each form is already compared with transformers
                                               # on every backend
    """Both positional forms compute the same function (separate_cls=True), to the parity tolerance."""
    for truncate, pool_q_only, seq_len in itertools.product([True, False], [True, False], [16, 13]):
        shift = FunnelTFM(tiny_config(rel_attn_type="rel_shift", truncate_seq=truncate, pool_q_only=pool_q_only))
        factorized = FunnelTFM(tiny_config(rel_attn_type="factorized", truncate_seq=truncate,
                                           pool_q_only=pool_q_only))
        randomize_weights(shift, rng)
        copy_weights(shift, factorized)
        inputs = make_inputs(rng, seq_len, [seq_len, seq_len - 5])
        a, b = shift(inputs), factorized(inputs)
        for x, y in zip(a["encoder_hiddens"] + [a["decoder_output"]], b["encoder_hiddens"] + [b["decoder_output"]]):
            np.testing.assert_allclose(to_numpy(x), to_numpy(y), rtol=0, atol=TOLERANCE)


def test_rel_shift_without_separate_cls_differs_from_factorized(rng):
    """semantics M4: the original's two forms disagree in the pooling layer when separate_cls=False; we keep both."""
    shift = FunnelTFM(tiny_config(rel_attn_type="rel_shift", separate_cls=False))
    factorized = FunnelTFM(tiny_config(rel_attn_type="factorized", separate_cls=False))
    randomize_weights(shift, rng)
    copy_weights(shift, factorized)
    inputs = make_inputs(rng, 16, [16])
    a, b = shift(inputs)["encoder_hiddens"], factorized(inputs)["encoder_hiddens"]
    np.testing.assert_allclose(to_numpy(a[1]), to_numpy(b[1]), rtol=0, atol=TOLERANCE)  # block 0 agrees
    assert np.abs(to_numpy(a[2]) - to_numpy(b[2])).max() > 1e-3  # first pooling layer does not
