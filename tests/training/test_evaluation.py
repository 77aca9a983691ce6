"""Evaluation restores every weight of a training checkpoint (not only those Keras exposes to TensorFlow's
object graph), for every task; checkpoints are listed and watched in step order."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from funnel_tfm.tasks import build_pretraining_task
from funnel_tfm.tasks.classification import ClassificationTask
from funnel_tfm.tasks.multiple_choice import MultipleChoiceTask
from funnel_tfm.training.checkpointing import TrainingCheckpoints
from funnel_tfm.training.evaluation import CheckpointEvaluator, mark_done, saved_checkpoints, watch_checkpoints
from funnel_tfm.training.optimization import AdamW, WarmupDecay
from funnel_tfm.training.trainer import Trainer
from helpers import tiny_config

BUILDERS = {
    "classification": lambda config: ClassificationTask.build(config, 3, scope="mnli"),
    "multiple_choice": lambda config: MultipleChoiceTask.build(config),
    "electra": lambda config: build_pretraining_task(config, "electra", width_shrink=0.5),
}


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_every_weight_comes_back(tmp_path, kind):
    config = tiny_config(d_model=32, d_embed=32, d_inner=64, n_head=4, d_head=8)
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        trained = BUILDERS[kind](config)
        trainer = Trainer(strategy, trained, AdamW(trained.trainable_variables(), WarmupDecay(1e-3, 0, 10)), 2)
    rng = np.random.default_rng(0)
    for variable in trained.checkpoint_view().named_variables().values():
        variable.assign(rng.normal(size=variable.shape).astype(np.float32))
    prefix = TrainingCheckpoints(trainer, str(tmp_path)).save()
    fresh = BUILDERS[kind](config)
    CheckpointEvaluator(strategy, fresh.trackables()).restore(prefix)
    expected, got = trained.checkpoint_view().state(), fresh.checkpoint_view().state()
    assert sorted(expected) == sorted(got) and len(got) > 20
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


def test_watch_yields_new_checkpoints_in_order_until_done(tmp_path):
    for step in (3, 1):
        (tmp_path / f"ckpt-{step}.index").write_text("")
    seen, sleeps = [], []

    def sleep(seconds):  # the "training process": a new checkpoint, then the end
        sleeps.append(seconds)
        if len(sleeps) == 1:
            (tmp_path / "ckpt-7.index").write_text("")
        else:
            mark_done(str(tmp_path))

    for step, prefix in watch_checkpoints(str(tmp_path), poll_secs=0.5, sleep=sleep):
        seen.append(step)
        assert prefix.endswith(f"ckpt-{step}")
    assert seen == [1, 3, 7] and sleeps == [0.5, 0.5]
    assert [s for s, _ in saved_checkpoints(str(tmp_path))] == [1, 3, 7]


def test_resuming_warns_of_no_unrestored_values(tmp_path, caplog):
    """The manager's save_counter is in every training checkpoint; resuming must not leave TensorFlow's
    "unrestored values" warning behind (it did on every rerun of a finished pretraining)."""
    import gc
    config = tiny_config(d_model=32, d_embed=32, d_inner=64, n_head=4, d_head=8)
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")

    def checkpoints() -> TrainingCheckpoints:
        with strategy.scope():
            task = BUILDERS["classification"](config)
            trainer = Trainer(strategy, task, AdamW(task.trainable_variables(), WarmupDecay(1e-3, 0, 10)), 2)
        return TrainingCheckpoints(trainer, str(tmp_path))

    checkpoints().save()
    with caplog.at_level("WARNING"):
        assert checkpoints().restore_latest().endswith("ckpt-0")
        gc.collect()  # TensorFlow warns when the load status is collected
    assert not [r for r in caplog.records if "unrestored" in r.getMessage() or "could not be found" in r.getMessage()]
