"""Heads built from a ModelConfig: the config's widths, rates and initializer passed down as plain values.

    lm = lm_head(config, model.embedding, name="lm")
    binary = discriminator_head(config, name="binary")
    mnli = classification_head(config, n_class=3, scope="mnli")
    race = multiple_choice_head(config)
    tagger = token_classification_head(config, n_class=9)
    squad = squad_head(config, conditional_end=True, use_answer_class=True)
"""

from __future__ import annotations

from typing import Any

from funnel_tfm.config import ModelConfig
from funnel_tfm.layers.core import config_initializer
from funnel_tfm.layers.heads import (ClassificationHead, DiscriminatorHead, LMHead, MultipleChoiceHead, SquadHead,
                                    TokenClassificationHead)


def lm_head(config: ModelConfig, embedding: Any, **kwargs) -> LMHead:
    """The LM head tied to `embedding`'s word table (the generator's head takes the generator's config)."""
    return LMHead(embedding, config.d_model, config.d_embed, config.vocab_size, config.ff_activation,
                  config.layer_norm_eps, config_initializer(config), **kwargs)


def discriminator_head(config: ModelConfig, **kwargs) -> DiscriminatorHead:
    return DiscriminatorHead(config.d_model, config_initializer(config), **kwargs)


def classification_head(config: ModelConfig, n_class: int, scope: str = "cls", dropout: float | None = None,
                        zero_init: bool = False, **kwargs) -> ClassificationHead:
    """dropout: the rate on the pooled summary before the dense (default: config.dropout); zero_init: a zero
    kernel, so every example starts at the same logits (docs/pretraining_collapse.md says why that helps)."""
    rate = config.dropout if dropout is None else dropout
    initializer = "zeros" if zero_init else config_initializer(config)
    return ClassificationHead(config.d_model, n_class, rate, initializer, scope=scope, **kwargs)


def multiple_choice_head(config: ModelConfig, scope: str = "race", **kwargs) -> MultipleChoiceHead:
    return MultipleChoiceHead(config.d_model, config.dropout, config_initializer(config), scope=scope, **kwargs)


def token_classification_head(config: ModelConfig, n_class: int, **kwargs) -> TokenClassificationHead:
    """The tagger's head (scope `tagger`), on the decoder's full-length output."""
    return TokenClassificationHead(config.d_model, n_class, config.dropout, config_initializer(config), **kwargs)


def squad_head(config: ModelConfig, **kwargs) -> SquadHead:
    return SquadHead(config.d_model, config.layer_norm_eps, config.dropout, config_initializer(config), **kwargs)
