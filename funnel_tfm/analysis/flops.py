"""Analytic parameter counts and forward FLOPs of a Funnel config (matrix multiplies; 1 multiply-add = 2 FLOPs).

    flops_per_token(named_config("B4-4-4H768"), 128) / flops_per_token(named_config("L12H768"), 128)   # ~0.6

FLOPs follow the actual computation of `FunnelTFM`, block by block at the pooled lengths: q/k/v/o projections,
content scores, the positional term in the configured form (rel_shift: one projected sinusoid per relative
distance; factorized: the d_model-wide factor products), the segment term, attention-weighted values and the
FFN. Softmax, LayerNorm and pooling are elementwise and left out.
"""

from __future__ import annotations

from funnel_tfm.config import MAX_POSITIONS_NULL, ModelConfig


def layer_parameters(config: ModelConfig) -> int:
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
    layers = config.n_encoder_param_layers + (config.decoder_param_size if use_decoder else 0)
    total += layers * layer_parameters(config)
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


def forward_flops(config: ModelConfig, seq_len: int, use_decoder: bool = False) -> int:
    """FLOPs of one forward pass over one sequence of `seq_len` tokens."""
    lengths = config.block_lengths(seq_len)
    e, d = config.d_embed, config.d_model
    flops = 2 * seq_len * e * d if e != d else 0
    for block, (depth, length) in enumerate(zip(config.block_depths, lengths)):
        for sub in range(depth):
            if block > 0 and sub == 0:
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
