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


def test_best_checkpoint_of_a_moved_run_directory(tmp_path):
    """best_result.json names the checkpoint where training wrote it; a copy of the run elsewhere still finds
    its best (it fell back to the latest in silence)."""
    import json
    from funnel_tfm.training.finetune import best_checkpoint
    moved = tmp_path / "copy"
    moved.mkdir()
    for step in (2, 4):
        (moved / f"ckpt-{step}.index").write_text("")
    json.dump({"step": 2, "path": "/old/place/exp/ckpt-2"}, open(moved / "best_result.json", "w"))
    assert best_checkpoint(str(moved)) == (2, str(moved / "ckpt-2"))
    (moved / "ckpt-2.index").unlink()  # the best is gone: the latest
    assert best_checkpoint(str(moved)) == (4, str(moved / "ckpt-4"))
