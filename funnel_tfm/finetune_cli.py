"""What the finetuning entry points share between flags and job: checks, the run settings, one-line errors.

    settings = finetune_cli.check_flags("race", FLAGS, required=("data_dir", ...), phases=("do_train", "do_eval"))
    run = finetune_cli.run_from_flags(RaceRun, FLAGS, settings)
    finetune_cli.run_job("race", FLAGS, lambda: run_race(run))

Every error a user can cause (bad flags, data, checkpoints, a missing TPU) becomes one `<prog>: error: ...`
line on stderr and exit status 1, not a traceback.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from typing import Any, Callable

from absl import flags

from funnel_tfm import config_flags, legacy_flags


def error(prog: str, message: str) -> None:
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def check_flags(prog: str, flag_values: flags.FlagValues, required: tuple[str, ...],
                phases: tuple[str, ...]) -> dict[str, Any]:
    """Required flags present, at least one phase, the original's flags resolved (see legacy_flags)."""
    missing = [name for name in required if not flag_values[name].value]
    if missing:
        error(prog, "missing " + ", ".join(f"--{name}" for name in missing))
    if not any(flag_values[name].value for name in phases):
        error(prog, "nothing to do: give at least one of " + ", ".join(f"--{name}" for name in phases))
    try:
        settings = legacy_flags.resolve(flag_values)
    except legacy_flags.LegacyFlagError as failure:
        error(prog, str(failure))
    for line in legacy_flags.notices(flag_values):
        print(f"{prog}: note: {line}", flush=True)
    return settings


def run_from_flags(run_cls: type, flag_values: flags.FlagValues, settings: dict[str, Any], **extra: Any) -> Any:
    """`run_cls` (a FinetuneRun) from the flags of the same names, the resolved original flags and `extra`."""
    names = {field.name for field in dataclasses.fields(run_cls)} - {"model_config"} - set(extra)
    values = {name: flag_values[name].value for name in names}
    values.update({k: v for k, v in settings.items() if k in names})
    if flag_values["eval_model_dir"].value and not flag_values["do_train"].value:
        values["model_dir"] = flag_values["eval_model_dir"].value
    model_config = settings.get("model_config", flag_values["model_config"].value)
    return run_cls(model_config=config_flags.config_from_flags(model_config), **values, **extra)


def run_job(prog: str, flag_values: flags.FlagValues, job: Callable[[], Any],
            evaluation_flags: tuple[str, ...] = ("do_eval",)) -> None:
    """Runs `job()`; known failures become one error line. `--overwrite` with one of `evaluation_flags` (the
    phases that evaluate checkpoints) first clears earlier results."""
    from absl import logging
    logging.set_verbosity(logging.WARNING)  # TensorFlow's per-save INFO lines would drown the progress lines
    import tensorflow as tf
    from funnel_tfm.config import ConfigError
    from funnel_tfm.errors import CheckpointError
    from funnel_tfm.data.tokenization import TokenizerError
    if flag_values["overwrite"].value and any(flag_values[name].value for name in evaluation_flags):
        model_dir = flag_values["eval_model_dir"].value or flag_values["model_dir"].value
        shutil.rmtree(os.path.join(model_dir, "eval"), ignore_errors=True)
    try:
        job()
    except (ConfigError, CheckpointError, TokenizerError, ValueError, FileNotFoundError) as failure:
        error(prog, str(failure))  # the data readers' errors are ValueErrors that name the file and line
    except tf.errors.OpError as failure:  # TensorFlow's own, e.g. no TPU behind --use_tpu
        error(prog, f"{type(failure).__name__}: {str(failure).strip().splitlines()[0][:500]}")
