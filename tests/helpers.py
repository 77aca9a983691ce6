"""Shared test helpers: tiny configs and model inputs in the original conventions."""

from __future__ import annotations

import numpy as np

from funnel_tfm.config import ModelConfig


def tiny_config(**changes) -> ModelConfig:
    """D=16, N=4, H=4, F=32, V=50: the suggested oracle size (semantics V1)."""
    values = dict(block_size="2_1x2_2", vocab_size=50, d_embed=16, d_model=16, n_head=4, d_head=4, d_inner=32,
                  decoder_size="1", dropout=0.0, dropatt=0.0, dropact=0.0)
    values.update(changes)
    return ModelConfig(**values)


def make_inputs(rng: np.random.Generator, seq_len: int, real_lengths: list[int], vocab_size: int = 50) -> dict:
    """token ids, segment ids ([CLS]=2, A=0, B=1) and padding mask (1 = real) for rows of given real lengths."""
    batch = len(real_lengths)
    token_ids = rng.integers(5, vocab_size, size=(batch, seq_len)).astype(np.int32)
    segment_ids = np.zeros((batch, seq_len), np.int32)
    padding_mask = np.zeros((batch, seq_len), np.int32)
    for row, real in enumerate(real_lengths):
        padding_mask[row, :real] = 1
        segment_ids[row, real // 2:real] = 1
        token_ids[row, real:] = 0
    segment_ids[:, 0] = 2
    return {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask}


def randomize_weights(model, rng: np.random.Generator, scale: float = 0.3) -> None:
    """Gives every weight a visible random value (LayerNorm gamma around 1), so that every term matters."""
    for name, variable in model.weight_names().items():
        values = rng.normal(0.0, scale, size=tuple(variable.shape))
        if name.endswith("gamma"):
            values += 1.0
        variable.assign(values.astype(np.float32))


def copy_weights(source, target) -> None:
    source_names = source.weight_names()
    for name, variable in target.weight_names().items():
        variable.assign(source_names[name])
