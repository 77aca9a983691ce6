"""The finetuning phases' shared helpers that need no model."""

from __future__ import annotations

from funnel_tfm.training.finetune import FinetuneRun, with_schedule


def run(**changes) -> FinetuneRun:
    return FinetuneRun(data_dir="d", output_dir="o", model_dir="m", tokenizer_path="v", train_batch_size=32,
                       train_steps=1000, warmup_steps=100, **changes)


def test_epochs_and_proportion_override_the_step_forms():
    assert (with_schedule(run(), 8453).train_steps, with_schedule(run(), 8453).warmup_steps) == (1000, 100)
    resolved = with_schedule(run(num_train_epochs=3, warmup_proportion=0.1), 8453)
    assert resolved.train_steps == 792 and resolved.warmup_steps == 79  # int(3 * 8453 / 32), int(0.1 * 792)
    assert with_schedule(run(warmup_proportion=0.25), 10).warmup_steps == 250  # of the given train_steps
    assert with_schedule(run(num_train_epochs=0.001), 10).train_steps == 1  # at least one step
