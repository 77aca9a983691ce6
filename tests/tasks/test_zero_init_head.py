"""`--zero_init_head`: every example starts at the same logits; the rest of the model is as without it."""

import numpy as np

from funnel_tfm.tasks.classification import ClassificationTask
from helpers import make_inputs, tiny_config


def test_a_zero_head_gives_every_example_the_same_logits_and_leaves_the_backbone_alone():
    config = tiny_config(decoder_size="0")
    inputs = make_inputs(np.random.default_rng(0), 16, [16, 9, 12, 5])
    zero = ClassificationTask.build(config, 3, scope="sst-2", zero_init_head=True)
    plain = ClassificationTask.build(config, 3, scope="sst-2")
    logits = np.asarray(zero.model(inputs))
    np.testing.assert_array_equal(logits, np.zeros_like(logits))
    assert np.std(np.asarray(plain.model(inputs))[:, 0]) > 0  # the default head tells examples apart
    kernel = zero.model.head.logit.kernel
    assert kernel.shape == (config.d_model, 3) and not np.any(np.asarray(kernel))
    assert np.any(np.asarray(plain.model.head.logit.kernel))
