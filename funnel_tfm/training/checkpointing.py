"""Crash-safe training checkpoints: `ckpt-<step>` of everything a resumed run needs.

    saver = TrainingCheckpoints(trainer, "model_dir", max_to_keep=5)
    saver.restore_latest()      # weights, optimizer, step, loss scale, dropout RNG (None when there is none)
    saver.save()
"""

from __future__ import annotations

import os
import shutil

import tensorflow as tf

from funnel_tfm.errors import CheckpointError
from funnel_tfm.training.strategy import is_chief, worker_id
from funnel_tfm.training.trainer import Trainer


class TrainingCheckpoints:
    """`ckpt-<step>` checkpoints of everything a resumed run needs, the last `max_to_keep` kept.

    Crash safety: TensorFlow writes a checkpoint's files under temporary names and renames them, and the
    `checkpoint` index file that names the latest one is replaced atomically after the files are complete; a
    crash during a save therefore leaves the previous checkpoint as the latest, intact. Under
    MultiWorkerMirroredStrategy every worker takes part in the save; only the chief's copy is kept.
    """

    def __init__(self, trainer: Trainer, directory: str, max_to_keep: int = 5, extra: dict | None = None) -> None:
        objects = {"step": trainer.step, "optimizer": trainer.optimizer, **trainer.task.trackables(),
                   **(extra or {})}
        if trainer.optimizer.loss_scale is not None:
            objects["loss_scale"] = trainer.optimizer.loss_scale
        self.checkpoint = tf.train.Checkpoint(**objects)
        self.directory = directory
        self.chief = is_chief(trainer.strategy)
        target = directory if self.chief else os.path.join(directory, f".worker-{worker_id(trainer.strategy)}-tmp")
        self.manager = tf.train.CheckpointManager(self.checkpoint, target, max_to_keep=max_to_keep,
                                                  step_counter=trainer.step)
        self.trainer = trainer

    def latest(self) -> str | None:
        return tf.train.latest_checkpoint(self.directory)

    def restore_latest(self) -> str | None:
        """Restores the latest checkpoint of `directory` (None when there is none); a checkpoint written for
        another model or objective is a CheckpointError that names the first mismatching variable."""
        path = self.latest()
        if path is None:
            return None
        try:
            # expect_partial: the manager's save_counter is in the file but not ours to restore; without it
            # TensorFlow warns about "unrestored values" on every resume.
            self.checkpoint.read(path).assert_existing_objects_matched().expect_partial()
        except (ValueError, AssertionError, tf.errors.InvalidArgumentError) as error:
            raise CheckpointError(f"{path}: this checkpoint does not fit the model being trained (another config "
                                  f"or --loss_type?); use another --model_dir or the same settings. "
                                  f"TensorFlow says: {_first_line(error)}") from None
        return path

    def save(self) -> str:
        path = self.manager.save(checkpoint_number=self.trainer.current_step())
        if not self.chief:
            shutil.rmtree(self.manager.directory, ignore_errors=True)
        return path


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:500] if text else type(error).__name__
