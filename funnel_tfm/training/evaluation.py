"""Evaluate every saved checkpoint, in step order, while training runs elsewhere or after it has finished.

    evaluator = CheckpointEvaluator(strategy, task.trackables())
    for step, prefix in watch_checkpoints("exp/cola", poll_secs=60):   # stops after the `done` marker
        evaluator.restore(prefix)
        outputs = evaluator.predict(task.model, eval_dataset(...), ("label",))   # every real example once

The training job writes `model_dir/done` after its last checkpoint (the original's marker); a watcher
evaluates each new `ckpt-<step>` as it appears and exits once `done` exists and nothing is left.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Iterator

import numpy as np
import tensorflow as tf

from funnel_tfm import file_io
from funnel_tfm.training.run_dir import DONE_MARKER, mark_done, saved_checkpoints

__all__ = ["CheckpointEvaluator", "mark_done", "saved_checkpoints", "watch_checkpoints"]


def watch_checkpoints(model_dir: str, poll_secs: float = 60.0, start_step: int = -1, end_step: int = 10 ** 12,
                      sleep: Callable[[float], None] = time.sleep) -> Iterator[tuple[int, str]]:
    """Yields each checkpoint with `start_step < step <= end_step` once, in step order, waiting for new ones
    until the `done` marker exists (then the rest, and stop)."""
    last = start_step
    while True:
        finished = file_io.exists(os.path.join(model_dir, DONE_MARKER))  # read before listing: no lost last save
        fresh = [(step, prefix) for step, prefix in saved_checkpoints(model_dir) if last < step <= end_step]
        for step, prefix in fresh:
            last = step
            yield step, prefix
        if finished and not fresh:
            return
        if not fresh:
            sleep(poll_secs)


class CheckpointEvaluator:
    """Restores model weights from training checkpoints and runs a model over a dataset on every replica."""

    def __init__(self, strategy: tf.distribute.Strategy, trackables: dict[str, Any]) -> None:
        """`trackables`: the task's (`Task.trackables()`, which reach every weight by name)."""
        self.strategy = strategy
        self.checkpoint = tf.train.Checkpoint(**{k: v for k, v in trackables.items() if v is not None})
        self._steps: dict[tuple, Callable] = {}

    def restore(self, prefix: str) -> None:
        # Only the model's weights: the optimizer and counters in the file are of no use here.
        self.checkpoint.read(prefix).expect_partial()

    def predict(self, model: Any, dataset: tf.data.Dataset, keep: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
        """`{"logits", *keep}` of every real example (`is_real_example` = 1), ordered by `example_index`;
        a missing or repeated index is an error, so every example counts exactly once. A model that returns
        a dict (the SQuAD head's beams) gives its keys instead of `logits`."""
        step = self._step_fn(model, keep)
        parts: dict[str, list[np.ndarray]] = {}
        for batch in self.strategy.experimental_distribute_dataset(dataset):
            outputs = self.strategy.run(step, args=(batch,))
            for name, value in outputs.items():
                for local in self.strategy.experimental_local_results(value):
                    parts.setdefault(name, []).append(np.asarray(local))
        if not parts:
            raise ValueError("the evaluation set is empty")
        merged = {name: np.concatenate(values) for name, values in parts.items()}
        real = merged.pop("is_real_example") == 1
        merged = {name: values[real] for name, values in merged.items()}
        order = np.argsort(merged["example_index"], kind="stable")
        merged = {name: values[order] for name, values in merged.items()}
        if not np.array_equal(merged["example_index"], np.arange(len(order))):
            raise AssertionError("evaluation lost or repeated examples (example_index is not 0..n-1)")
        return merged

    def _step_fn(self, model: Any, keep: tuple[str, ...]) -> Callable:
        """One traced step per (model, keep): evaluating the next checkpoint reuses the graph."""
        key = (id(model), tuple(keep))
        if key not in self._steps:
            @tf.function
            def step(batch):
                out = model(batch, training=False)
                out = dict(out) if isinstance(out, dict) else {"logits": out}
                return {**out, "is_real_example": batch["is_real_example"],
                        "example_index": batch["example_index"], **{k: batch[k] for k in keep}}
            self._steps[key] = step
        return self._steps[key]
