"""Analytic parameter counts and forward FLOPs of Funnel and FNet configs (matrix multiplies and FFTs;
1 multiply-add = 2 FLOPs).

    flops_per_token(named_config("B4-4-4H768"), 128) / flops_per_token(named_config("L12H768"), 128)   # ~0.6
    flops_per_token(named_config("B4F-4-4H768"), 512)       # Fourier block 0 (the hybrid)
    fnet_flops_per_token(named_fnet_config("FNet-Base"), 512), fnet_parameters(named_fnet_config("FNet-Base"))

FLOPs follow the actual computation of `FunnelTFM`, block by block at the pooled lengths: q/k/v/o projections,
content scores, the positional term in the configured form (rel_shift: one projected sinusoid per relative
distance; factorized: the d_model-wide factor products), the segment term, attention-weighted values and the
FFN. Softmax, LayerNorm and pooling are elementwise and left out.

Fourier mixing (fnet semantics N8, N9) is counted as the configured path computes it: `use_fft` -> one complex
2-D FFT of L·D points (keras.ops.fft2 takes a complex input), 5·N·log2(N) FLOPs for N = L·D (the radix-2
count; lengths that are not powers of two cost more in practice); DFT matrices -> the three matmuls of
`fourier.fourier_mix_dft`, 2·L·D·2D + 2·2·L·L·D = 4·L·D² + 4·L²·D. The first layer of a pooled Fourier
block with pool_q_only mixes at the previous block's length (N8).
"""

from __future__ import annotations

import math

from funnel_tfm.config import MAX_POSITIONS_NULL, ModelConfig
from funnel_tfm.config_fnet import FNetConfig


def fourier_mixing_flops(length: int, width: int, use_fft: bool) -> float:
    """FLOPs of Re(DFT2) over an [length, width] sequence: FFT (5 N log2 N) or the DFT-matrix matmuls."""
    if use_fft:
        points = length * width
        return 5.0 * points * math.log2(points) if points > 1 else 0.0
    return 4 * length * width * width + 4 * length * length * width


def ffn_parameters(d_model: int, d_inner: int) -> int:
    """layer_1, layer_2 (kernels and biases) and the LayerNorm after them."""
    return 2 * d_model * d_inner + d_inner + d_model + 2 * d_model


def layer_parameters(config: ModelConfig, mixer: str = "attention") -> int:
    """One encoder/decoder layer; a Fourier layer keeps only its LayerNorm besides the FFN (N8)."""
    if mixer == "fourier":
        return 2 * config.d_model + ffn_parameters(config.d_model, config.d_inner)
    d, nh, f = config.d_model, config.n_head * config.d_head, config.d_inner
    attention = 3 * d * nh + 2 * nh + nh * d + d + nh + 2 * d  # q,k,v kernels, k/v bias, o, r_w_bias, LN
    if config.rel_attn_type != "null":
        attention += nh + d * nh + nh + 2 * nh  # r_r_bias, r kernel, r_s_bias, seg_embed
    return attention + 2 * d * f + f + d + 2 * d


def count_parameters(config: ModelConfig, use_decoder: bool = True, include_summary: bool = False) -> int:
    """Embedding + encoder (+ decoder) (+ pooled summary) parameters."""
    e, d = config.d_embed, config.d_model
    total = config.vocab_size * e + 2 * e
    if config.rel_attn_type == "null":
        total += MAX_POSITIONS_NULL * e + 2 * e
    if e != d:
        total += e * d + d
    total += sum(layer_parameters(config, mixer) for mixer in config.param_layer_mixers())
    total += (config.decoder_param_size if use_decoder else 0) * layer_parameters(config)  # the decoder attends
    if include_summary:
        total += d * d + d
    return total


def attention_layer_flops(config: ModelConfig, q_len: int, k_len: int, shift: int) -> int:
    """FLOPs of one layer (attention + FFN) for one sequence with the given query / key lengths."""
    d, n, nh, f = config.d_model, config.n_head, config.n_head * config.d_head, config.d_inner
    flops = 2 * q_len * d * nh + 4 * k_len * d * nh      # q, k, v projections
    flops += 4 * q_len * k_len * nh                      # content scores and the weighted values
    if config.rel_attn_type == "rel_shift":
        rows = shift * q_len + k_len
        flops += 2 * rows * d * nh + 2 * q_len * rows * nh
    elif config.rel_attn_type == "factorized":
        flops += 2 * q_len * nh * d + 4 * n * q_len * k_len * d
    if config.rel_attn_type != "null":
        flops += 4 * q_len * nh                          # segment biases (two per query)
    flops += 2 * q_len * nh * d                          # output projection
    flops += 4 * q_len * d * f                           # FFN
    return flops


def fourier_layer_flops(config: ModelConfig, length: int, mix_length: int) -> float:
    """FLOPs of one Fourier layer: the mixing at `mix_length` (the unpooled length in a pooling layer with
    pool_q_only, N8) and the FFN at `length`."""
    ffn = 4 * length * config.d_model * config.d_inner
    return fourier_mixing_flops(mix_length, config.d_model, config.use_fft) + ffn


def forward_flops(config: ModelConfig, seq_len: int, use_decoder: bool = False) -> int:
    """FLOPs of one forward pass over one sequence of `seq_len` tokens."""
    lengths = config.block_lengths(seq_len)
    e, d = config.d_embed, config.d_model
    flops = 2 * seq_len * e * d if e != d else 0
    for block, (depth, length, mixer) in enumerate(zip(config.block_depths, lengths, config.block_mixer_list)):
        for sub in range(depth):
            pooling = block > 0 and sub == 0
            if mixer == "fourier":
                mix_length = lengths[block - 1] if pooling and config.pool_q_only else length
                flops += fourier_layer_flops(config, length, mix_length)
            elif pooling:
                pooled = length
                if config.pool_q_only:
                    flops += attention_layer_flops(config, pooled, lengths[block - 1], config.pooling_size)
                else:
                    flops += attention_layer_flops(config, pooled, pooled, 1)
            else:
                flops += attention_layer_flops(config, length, length, 1)
    if use_decoder:
        flops += config.decoder_depth * attention_layer_flops(config, seq_len, seq_len, 1)
    return flops


def flops_per_token(config: ModelConfig, seq_len: int, use_decoder: bool = False) -> float:
    return forward_flops(config, seq_len, use_decoder) / seq_len


def pretraining_step_flops(config: ModelConfig, seq_len: int, batch_size: int, num_predict: int, loss_type: str,
                           width_shrink: float = 0.25) -> float:
    """FLOPs of one training step (forward + backward = 3 x forward) of a pretraining task (`funnel_tfm.tasks`).

    MLM: the full model plus the LM head at `num_predict` slots (dense D->E and the tied E x V table).
    ELECTRA: the generator (full model at width × `width_shrink`, its LM head) plus the discriminator (full
    model and the per-token binary head).
    """
    use_decoder = config.n_block > 1

    def lm_head(cfg: ModelConfig) -> int:
        return 2 * num_predict * (cfg.d_model * cfg.d_embed + cfg.d_embed * cfg.vocab_size)

    per_example = forward_flops(config, seq_len, use_decoder)
    if loss_type == "mlm":
        per_example += lm_head(config)
    else:
        generator = config.generator_config(width_shrink)
        per_example += forward_flops(generator, seq_len, use_decoder) + lm_head(generator)
        per_example += 2 * seq_len * (config.d_model * config.d_model + config.d_model)
    return 3.0 * per_example * batch_size


# ------------------------------------------------------------------------------------------------- FNet
def fnet_parameters(config: FNetConfig, include_pooler: bool = True, pretraining_heads: bool = False) -> int:
    """Parameters of `FNet` (embedder, blocks, pooler) or, with `pretraining_heads`, `FNetPreTrainingModel`.

    An attention layer of a hybrid (N9) adds q, k, v, out kernels [D, D] with biases to the Fourier layer's two
    LayerNorms and FFN.
    """
    e, d, v = config.d_embed, config.d_model, config.vocab_size
    total = (v + config.max_seq_length + config.type_vocab_size) * e + 2 * e + e * d + d
    total += config.n_layer * (2 * d + ffn_parameters(d, config.d_inner))
    total += len(config.attention_layers()) * 4 * (d * d + d)
    if include_pooler or pretraining_heads:
        total += d * d + d
    if pretraining_heads:  # predictions_dense D->E, its LayerNorm, output bias [V]; NSP kernel [2, D] + bias
        total += d * e + e + 2 * e + v + 2 * d + 2
    return total


def fnet_attention_flops(config: FNetConfig, length: int) -> int:
    """q, k, v, out projections (8·L·D²) and scores + weighted values (4·L²·D) of one hybrid attention layer."""
    return 8 * length * config.d_model * config.d_model + 4 * length * length * config.d_model


def fnet_forward_flops(config: FNetConfig, seq_len: int) -> float:
    """FLOPs of one FNet forward pass over one sequence: embedding projection, mixing and FFN of every layer."""
    d = config.d_model
    flops = 2 * seq_len * config.d_embed * d
    attending = set(config.attention_layers())
    for layer in range(config.n_layer):
        flops += (fnet_attention_flops(config, seq_len) if layer in attending
                  else fourier_mixing_flops(seq_len, d, config.use_fft))
        flops += 4 * seq_len * d * config.d_inner
    return flops


def fnet_flops_per_token(config: FNetConfig, seq_len: int) -> float:
    return fnet_forward_flops(config, seq_len) / seq_len
