r"""MLM or ELECTRA pretraining from create_pretrain_data records (the original's pretrain.py, semantics P1–P10).

    python -m funnel_tfm.pretrain --record_dir=records --tokenizer_path=vocab.txt --model_dir=run \
        --model_config=B6-6-6H768 --loss_type=electra --seq_len=512 --num_predict=85 \
        --train_batch_size=256 --train_steps=1000000 --warmup_steps=10000 --learning_rate=1e-4 \
        --strategy=tpu --tpu=local --precision=mixed_bfloat16 --iterations=1000 --save_steps=10000

Flags are parsed here and handed, as a frozen `PretrainRun`, to `funnel_tfm.training.pretrain_job`.
A restarted job resumes from the latest checkpoint in --model_dir (weights, optimizer, step, loss scale, dropout
RNG and input position). --init_checkpoint starts a new run from any checkpoint `convert` reads (a FULL
original ELECTRA checkpoint continues with its generator and, with --init_global_vars, its Adam slots and
global_step). At the end the backbone (with heads and generator) is exported to --model_dir/export, readable
by FunnelTFM.from_pretrained.

FNet: an FNet --model_config (FNet-Base, FNet-Large, an FNet json or a directory with fnet_config.json or a
transformers FNet config.json) trains FNet with --loss_type=mlm or FNet's own --loss_type=mlm_nsp (masked LM +
next-sentence prediction on the records' A/B pairs); the export is an FNetForPreTraining directory
(--export_format=hf: transformers; keras: fnet_config.json + model.safetensors, hybrids too).

    python -m funnel_tfm.pretrain --record_dir=records --tokenizer_path=vocab.txt --model_dir=run_fnet \
        --model_config=FNet-Base --vocab_size=30522 --loss_type=mlm_nsp --seq_len=512 --num_predict=80 \
        --export_format=hf

The original's command lines run too (`funnel_tfm.legacy_flags`): --use_tpu, --use_bfloat16,
--num_core_per_host, --model_config_path, --tokenizer_type, ... map onto the flags above.
"""

from __future__ import annotations

import dataclasses
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported: keep the progress readable

from absl import flags

from funnel_tfm import config_flags  # noqa: F401  (defines --d_model etc.)
from funnel_tfm import flag_checks, legacy_flags, training_flags

FLAGS = flags.FLAGS
# Data.
flags.DEFINE_list("record_dir", None, "Directories of create_pretrain_data records (comma-separated).")
flags.DEFINE_string("tokenizer_path", None, "The vocab.txt / .model the records were written with (special ids).")
flags.DEFINE_boolean("uncased", True, "Records of the uncased tokenizer (part of the record file names).")
flags.DEFINE_integer("seq_len", 0, "Sequence length of the records.", lower_bound=0)
flags.DEFINE_integer("num_predict", None, "Number of masked target slots per example.", lower_bound=1)
flags.DEFINE_enum("sample_strategy", "single_token", ["single_token", "word_span"], "Target sampling (semantics D6).")
flags.DEFINE_integer("num_passes", 1, "Use record passes < num_passes.", lower_bound=1)
flags.DEFINE_integer("shuffle_buffer", 20480, "Record shuffle buffer per input pipeline.", lower_bound=1)
flags.DEFINE_enum("input_sharding", "files", ["files", "global_batch"],
                  "files: each host reads its own files; global_batch: each host reads all and keeps its slice "
                  "(same batches as one device, for checks).")
# Model and objective.
flags.DEFINE_string("model_config", "", "Named config (e.g. B4-4-4H768), a config json, or a directory with one; "
                                        "per-key flags (--d_model=...) override it.")
flags.DEFINE_string("loss_type", "mlm", "mlm or electra (Funnel configs, hybrids included); mlm or mlm_nsp "
                                        "(FNet configs: masked LM + next-sentence prediction); any case.")
flags.DEFINE_float("width_shrink", 0.25, "ELECTRA generator width relative to the discriminator.")
flags.DEFINE_float("disc_coeff", 50.0, "ELECTRA discriminator loss weight.")
flag_checks.within("width_shrink", 0.0, 1.0, low_open=True)
flag_checks.at_least("disc_coeff", 0.0)
flags.DEFINE_string("init_checkpoint", None, "Start from this checkpoint (original, Hugging Face or ours).")
flags.DEFINE_boolean("init_global_vars", True, "With --init_checkpoint: also restore Adam slots and global_step "
                                               "when the checkpoint has them.")
# Optimization (semantics P6-P9; the original's defaults) and the run (saving, distribution, precision).
training_flags.define_optimizer_flags()
training_flags.define_run_flags(train_batch_size=60, train_steps=100000, save_steps=10000, max_save=5)
flags.DEFINE_enum("export_format", "keras", ["keras", "hf", "original"], "Format of --model_dir/export.")
# The original pretrain.py's and README's flags (--use_tpu, --use_bfloat16, --num_core_per_host, ...), mapped
# onto the ones above by legacy_flags.resolve; defined last so that ours (--tpu) are reused.
legacy_flags.define(FLAGS, train_only=True)


def _error(message: str) -> None:
    print(f"pretrain: error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def _resolve_legacy_flags() -> dict:
    """Our settings after the original's flags; a contradiction ends the program before any work."""
    try:
        settings = legacy_flags.resolve(FLAGS, train_only=True)
    except legacy_flags.LegacyFlagError as error:
        _error(str(error))
    for message in legacy_flags.notices(FLAGS):
        print(f"pretrain: warning: {message}", file=sys.stderr, flush=True)
    return settings


def _check_flags() -> None:
    missing = [name for name in ("record_dir", "model_dir", "tokenizer_path", "num_predict") if not FLAGS[name].value]
    if missing:
        _error("missing " + ", ".join(f"--{name}" for name in missing))
    if FLAGS.seq_len <= 0:
        _error("--seq_len must be the (positive) sequence length of the records")
    if FLAGS.loss_type.lower() not in ("mlm", "electra", "mlm_nsp"):
        _error(f"--loss_type={FLAGS.loss_type}: expected mlm, electra (Funnel) or mlm_nsp (FNet)")
    import tensorflow as tf
    for directory in FLAGS.record_dir:
        if not tf.io.gfile.isdir(directory):
            _error(f"--record_dir={directory} does not exist")


def _run_from_flags(settings: dict):
    """The frozen run settings: every flag of this file by name, as `settings` (the resolved original flags)
    change them, and the model config (with --<key> overrides)."""
    from funnel_tfm.training.pretrain_job import PretrainRun
    fields = {field.name for field in dataclasses.fields(PretrainRun)} - {"model_config"}
    values = {name: settings.get(name, FLAGS[name].value) for name in fields}
    return PretrainRun(model_config=config_flags.config_from_flags(settings["model_config"]), **values)


def main(argv: list[str]) -> None:
    del argv
    from absl import logging
    settings = _resolve_legacy_flags()
    # TensorFlow's per-save INFO lines would drown the progress lines; the original's --verbose asks for them.
    logging.set_verbosity(logging.INFO if settings["verbose"] else logging.WARNING)
    _check_flags()
    from funnel_tfm.config import ConfigError
    from funnel_tfm.errors import CheckpointError
    try:
        from funnel_tfm.training.pretrain_job import run_pretraining
        sys.exit(run_pretraining(_run_from_flags(settings)))
    except (ConfigError, CheckpointError, ValueError, FileNotFoundError) as error:
        _error(str(error))


if __name__ == "__main__":
    flag_checks.run(main)
