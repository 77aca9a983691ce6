"""What the finetuning entry points share between flags and job: checks, the run settings, one-line errors.

    settings = finetune_cli.check_flags("race", FLAGS, required=("data_dir", ...), phases=("do_train", "do_eval"))
    run = finetune_cli.run_from_flags(RaceRun, FLAGS, settings)
    finetune_cli.run_job("race", FLAGS, lambda: run_race(run))

Every error a user can cause (bad flags, data, checkpoints, a missing TPU) becomes one `<prog>: error: ...`
line on stderr and exit status 1, not a traceback.

The spellings of transformers' and PaddleNLP's example scripts (`--model_name_or_path`, `--batch_size`,
`--version_2_with_negative`) are accepted beside ours and the original's (`hf_spellings`).
"""

from __future__ import annotations

import dataclasses
import json
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
    """Required flags present, at least one phase, the original's flags and the transformers spellings resolved
    (see legacy_flags and `hf_spellings`)."""
    try:
        settings = legacy_flags.resolve(flag_values)
        settings.update(hf_spellings(flag_values))
    except legacy_flags.LegacyFlagError as failure:
        error(prog, str(failure))
    missing = [name for name in required if not settings.get(name, flag_values[name].value)]
    if missing:
        error(prog, "missing " + ", ".join(f"--{name}" for name in missing))
    if not any(flag_values[name].value for name in phases):
        error(prog, "nothing to do: give at least one of " + ", ".join(f"--{name}" for name in phases))
    for line in legacy_flags.notices(flag_values):
        print(f"{prog}: note: {line}", flush=True)
    return settings


# Where a transformers / PaddleNLP model directory keeps its vocabulary; tokenizer/ is where our exports keep it.
HF_VOCAB_FILES = ("vocab.txt", "spiece.model", "tokenizer.model")
_BATCH_SIZES = ("train_batch_size", "eval_batch_size", "predict_batch_size")


def hf_spellings(flag_values: flags.FlagValues) -> dict[str, Any]:
    """Our settings for the transformers / PaddleNLP spellings given on the command line; a flag of ours given
    with another value is a LegacyFlagError naming both (the batch sizes: the specific flag wins).

        --model_name_or_path=xlarge --batch_size=24
        -> {"init_checkpoint": "xlarge", "tokenizer_path": "xlarge/vocab.txt", "uncased": True,
            "train_batch_size": 24, "eval_batch_size": 24, "predict_batch_size": 24}
        --version_2_with_negative (squad) -> {"train_version": "v2", "eval_version": "v2"}; =false: "v1"
    """
    fv, settings = flag_values, {}
    model_dir = _given(fv, "model_name_or_path")
    if model_dir:  # "~/xlarge" stays unexpanded after "=" in a shell
        settings.update(_model_directory_settings(fv, os.path.expanduser(model_dir)))
    batch_size = _given(fv, "batch_size")
    if batch_size:
        settings.update({name: batch_size for name in _BATCH_SIZES if name in fv and not fv[name].present})
    version_2 = _given(fv, "version_2_with_negative")
    if version_2 is not None:
        version = "v2" if version_2 else "v1"
        for name in ("train_version", "eval_version"):
            if fv[name].present and fv[name].value != version:
                raise legacy_flags.LegacyFlagError(f"--version_2_with_negative={version_2} contradicts "
                                                   f"--{name}={fv[name].value}: give one of them, or equal values")
            settings[name] = version
    return settings


def _given(fv: flags.FlagValues, name: str) -> Any:
    return fv[name].value if name in fv and fv[name].present else None


def _model_directory_settings(fv: flags.FlagValues, model_dir: str) -> dict[str, Any]:
    flag = f"--model_name_or_path={model_dir}"
    if not os.path.isdir(model_dir):
        raise legacy_flags.LegacyFlagError(f"{flag}: not a directory (this program does not download models: "
                                           f"fetch it first, e.g. `huggingface-cli download NAME --local-dir DIR`)")
    init = _given(fv, "init_checkpoint")
    if init and os.path.normpath(init) != os.path.normpath(model_dir):
        raise legacy_flags.LegacyFlagError(f"{flag} contradicts --init_checkpoint={init}: give one of them")
    settings: dict[str, Any] = {"init_checkpoint": model_dir}
    if not _given(fv, "tokenizer_path"):
        candidates = [os.path.join(model_dir, folder, name) for folder in ("", "tokenizer") for name in HF_VOCAB_FILES]
        found = [path for path in candidates if os.path.isfile(path)]
        if not found:
            raise legacy_flags.LegacyFlagError(f"{flag}: no vocabulary in it ({', '.join(HF_VOCAB_FILES)}); give "
                                               f"--tokenizer_path")
        settings["tokenizer_path"] = found[0]
    lower_case = _tokenizer_lower_case(model_dir)
    if lower_case is not None and "uncased" in fv and not fv["uncased"].present:
        settings["uncased"] = lower_case
    return settings


def _tokenizer_lower_case(model_dir: str) -> bool | None:
    """do_lower_case of the directory's tokenizer_config.json, None where it does not say."""
    path = os.path.join(model_dir, "tokenizer_config.json")
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as file:
            value = json.load(file).get("do_lower_case")
    except (OSError, ValueError, AttributeError) as failure:
        raise legacy_flags.LegacyFlagError(f"{path}: not a readable JSON object ({failure})") from None
    return value if isinstance(value, bool) else None


def run_from_flags(run_cls: type, flag_values: flags.FlagValues, settings: dict[str, Any], **extra: Any) -> Any:
    """`run_cls` (a FinetuneRun) from the flags of the same names, the resolved original flags and `extra`."""
    names = {field.name for field in dataclasses.fields(run_cls)} - {"model_config"} - set(extra)
    values = {name: flag_values[name].value for name in names}
    values.update({k: v for k, v in settings.items() if k in names})
    if flag_values["eval_model_dir"].value and not flag_values["do_train"].value:
        values["model_dir"] = flag_values["eval_model_dir"].value
    model_config = settings.get("model_config", flag_values["model_config"].value)
    return run_cls(model_config=config_flags.config_from_flags(model_config), **values, **extra)


def _damaged_records(flag_values: flags.FlagValues, failure: Exception) -> str:
    """The line for a DataLossError while reading finetuning records: the damaged file and --overwrite_data."""
    from funnel_tfm.data.input_func_builder import damaged_record_file
    import tensorflow as tf
    output_dir = flag_values["output_dir"].value or ""
    files = sorted(tf.io.gfile.glob(os.path.join(output_dir, "*.tfrecord*"))) if output_dir else []
    damaged = damaged_record_file(files) if files else None
    where = f"{damaged[0]}: damaged record file ({damaged[1]})" if damaged else \
        f"a damaged record file ({str(failure).strip().splitlines()[0][:300]})"
    return f"{where}; write the records again with --overwrite_data (the checkpoints in --model_dir are kept)"


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
        from funnel_tfm.training.run_dir import EVAL_DIR
        shutil.rmtree(os.path.join(model_dir, EVAL_DIR), ignore_errors=True)
    try:
        job()
    except (ConfigError, CheckpointError, TokenizerError, ValueError, FileNotFoundError) as failure:
        error(prog, str(failure))  # the data readers' errors are ValueErrors that name the file and line
    except tf.errors.DataLossError as failure:  # a record file cut off or overwritten: name it, say how to fix it
        error(prog, _damaged_records(flag_values, failure))
    except tf.errors.OpError as failure:  # TensorFlow's own, e.g. no TPU behind --use_tpu
        error(prog, f"{type(failure).__name__}: {str(failure).strip().splitlines()[0][:500]}")
