"""The run directory: what a training run writes where, its checkpoints, and its lock. Every job, `export`,
`predict` and serving read a run through this module.

    run_dir.NET_CONFIG, run_dir.RUN_RECORD, run_dir.PRETRAIN_OBJECTIVE, run_dir.DONE_MARKER   # the file names
    run_dir.saved_checkpoints("exp/cola")          # [(100, "exp/cola/ckpt-100"), (200, ...)] in step order
    run_dir.best_checkpoint("exp/cola")            # best_result.json's, else the latest
    run_dir.results_path("exp/cola", "dev")        # exp/cola/eval/dev/results.jsonl
    lock = run_dir.claim(model_dir, config, run_dir.NET_CONFIG)   # before a training run writes its first file

`claim` refuses, with one line and before writing anything,
* a directory that another live process is training in (an advisory `fcntl` lock on `<model_dir>/.lock`, which
  the operating system releases when that process ends, SIGKILL included, so no stale lock is ever left behind);
* a directory whose checkpoints were written for another model (its config file differs from `config`), which
  a resume would otherwise only notice after the config and run record had been overwritten.
On `gs://` and other remote file systems there is no lock (only the chief writes there, and the object store
offers no exclusive create); the config check still runs.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import time
from typing import Any

from funnel_tfm import file_io
from funnel_tfm.config_fnet import FNET_CONFIG_FILE
from funnel_tfm.errors import CheckpointError

# The files of a run directory. A finetuning and a pretraining run both write the model's config as
# net_config.json (the original's name); an FNet pretraining run writes fnet_config.json instead.
NET_CONFIG = "net_config.json"
PRETRAIN_CONFIG = NET_CONFIG
FNET_CONFIG = FNET_CONFIG_FILE
PRETRAIN_OBJECTIVE = "pretrain_objective.json"  # what makes a directory a pretraining run
RUN_RECORD = "run_record.json"                  # what serving needs of a finetuning run (training/run_record.py)
LABELS_FILE = "labels.txt"                      # the tagger's tag set in index order
DONE_MARKER = "done"                            # training finished: evaluators stop waiting for checkpoints
BEST_RESULT = "best_result.json"                # the best evaluated checkpoint and its scores
EVAL_DIR = "eval"                               # eval/<split>/results.jsonl and TensorBoard events
EXPORT_DIR = "export"                           # the best (or last) checkpoint, exported by the job
METRICS = "metrics.jsonl"                       # one line of training metrics per host call
LOCK_FILE = ".lock"
_CHECKPOINT_INDEX = re.compile(r"^ckpt-(\d+)\.index$")


def saved_checkpoints(model_dir: str) -> list[tuple[int, str]]:
    """(step, prefix) of every complete `ckpt-<step>` in `model_dir`, in step order."""
    import tensorflow as tf
    if not tf.io.gfile.isdir(model_dir):
        return []
    found = []
    for name in tf.io.gfile.listdir(model_dir):
        match = _CHECKPOINT_INDEX.match(name)
        if match:
            found.append((int(match.group(1)), os.path.join(model_dir, name[:-len(".index")])))
    return sorted(found)


def best_checkpoint(model_dir: str) -> tuple[int, str]:
    """The best evaluated checkpoint of `model_dir` (best_result.json), else its latest. The recorded path is
    also looked for in `model_dir` itself: a run directory copied elsewhere (gs:// to a laptop, another mount)
    still names its old location."""
    import tensorflow as tf
    best_path = os.path.join(model_dir, BEST_RESULT)
    if file_io.exists(best_path):
        with file_io.open_file(best_path) as handle:
            best = json.load(handle)
        for prefix in (best["path"], os.path.join(model_dir, os.path.basename(best["path"]))):
            if tf.io.gfile.exists(prefix + ".index"):
                return int(best["step"]), prefix
    checkpoints = saved_checkpoints(model_dir)
    if not checkpoints:
        raise CheckpointError(f"{model_dir}: no checkpoint to predict with")
    return checkpoints[-1]


def write_best_result(model_dir: str, best: dict) -> None:
    file_io.atomic_write_text(os.path.join(model_dir, BEST_RESULT), json.dumps(best, indent=4))


def mark_done(model_dir: str) -> None:
    file_io.atomic_write_text(os.path.join(model_dir, DONE_MARKER), "training finished\n")


def is_done(model_dir: str) -> bool:
    return file_io.exists(os.path.join(model_dir, DONE_MARKER))


def eval_dir(model_dir: str, split: str) -> str:
    return os.path.join(model_dir, EVAL_DIR, split)


def results_path(model_dir: str, split: str) -> str:
    """Where the evaluations of `split` go, one JSON line per checkpoint."""
    return os.path.join(eval_dir(model_dir, split), "results.jsonl")


class RunDirError(ValueError):
    """A run directory that this run may not write: in use, or holding another model's run."""


class RunLock:
    """The held lock of one run directory (a no-op on remote paths); `release()` or process exit frees it."""

    def __init__(self, path: str | None, handle: Any = None) -> None:
        self.path, self._handle = path, handle

    def release(self) -> None:
        if self._handle is not None:
            import fcntl
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def _holder(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            info = json.load(handle)
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["started"]))
        return f"process {info['pid']} on {info['host']} since {started} ({info['command'][:200]})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def lock(model_dir: str) -> RunLock:
    """The directory's writer lock, or a RunDirError naming its holder."""
    if file_io.is_remote(model_dir):
        return RunLock(None)
    import fcntl
    os.makedirs(model_dir, exist_ok=True)
    path = os.path.join(model_dir, LOCK_FILE)
    handle = open(path, "a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise RunDirError(f"--model_dir={model_dir} is in use by {_holder(path)}: wait for it to end, or give "
                          f"another --model_dir") from None
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                             "command": " ".join(sys.argv)}))
    handle.flush()
    return RunLock(path, handle)


def check_same_model(model_dir: str, config: Any, config_file: str) -> None:
    """A RunDirError when `model_dir` holds training checkpoints of a model other than `config` (by its saved
    `config_file`); nothing is written either way."""
    from funnel_tfm.config_fnet import load_any_config
    saved = os.path.join(model_dir, config_file)
    if not file_io.exists(saved) or not saved_checkpoints(model_dir):
        return
    before, now = load_any_config(saved).to_dict(), config.to_dict()
    differing = sorted(key for key in set(before) | set(now) if before.get(key) != now.get(key))
    if differing:
        shown = ", ".join(f"{key} {before.get(key)!r} there, {now.get(key)!r} now" for key in differing[:6])
        raise RunDirError(f"--model_dir={model_dir} holds checkpoints of another model ({shown}): resume it with "
                          f"the settings it was trained with, or give another --model_dir (nothing was written)")


def claim(model_dir: str, config: Any, config_file: str) -> RunLock:
    """`check_same_model`, then `lock`: what a training job calls before it writes its first file."""
    check_same_model(model_dir, config, config_file)
    return lock(model_dir)
