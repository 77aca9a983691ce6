"""A training run's directory belongs to one run: a lock for the writer, and a check before anything is written.

    lock = claim(model_dir, config, config_file="net_config.json")   # before the run writes its first file
    ...                                                               # train; the lock lives as long as `lock`
    lock.release()                                                    # or let the process end: the OS drops it

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
import socket
import sys
import time
from typing import Any

from funnel_tfm import file_io

LOCK_FILE = ".lock"


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
    from funnel_tfm.training.evaluation import saved_checkpoints
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
