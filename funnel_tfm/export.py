r"""Exports a finetuned model_dir for serving: a SavedModel that takes raw text, a Keras archive, Hugging Face or
ONNX.

    python -m funnel_tfm.export --model_dir=exp/cola --format=saved_model --export_dir=serving/cola/1
    python -m funnel_tfm.export --model_dir=exp/race --format=hf --checkpoint=latest --export_dir=out/race_hf
    python -m funnel_tfm.export --model_dir=exp/squad --format=hf --backbone_only --export_dir=out/squad_backbone
    python -m funnel_tfm.export --model_dir=exp/race --format=onnx --export_dir=out/race_onnx   # needs [onnx]

The task, labels, tokenizer and lengths come from the run's `run_record.json` (written by `classifier`, `race`,
`tagger` and `squad` with --do_train). Any problem is one `export: error: ...` line and exit status 1, and the
export directory is only created once it is complete.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported: keep the output readable

from absl import flags

from funnel_tfm import flag_checks

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "The finetuning run's --model_dir.")
flags.DEFINE_string("format", None, "saved_model (raw text in), keras (a .keras archive), hf (transformers) or "
                                     "onnx (token ids in; checked against onnxruntime).")
flags.DEFINE_string("export_dir", None, "Where the export goes (for TensorFlow Serving: <model>/<version>).")
flags.DEFINE_string("checkpoint", "best", "best (best_result.json, else latest), latest, or a checkpoint prefix.")
flags.DEFINE_boolean("backbone_only", False, "Export the finetuned backbone without its head (keras, hf, onnx).")
flags.DEFINE_boolean("overwrite", False, "Replace an existing --export_dir (only once the new one is complete).")


def main(argv: list[str]) -> None:
    del argv
    from funnel_tfm.finetune_cli import error
    missing = [name for name in ("model_dir", "format", "export_dir") if not FLAGS[name].value]
    if missing:
        error("export", "missing " + ", ".join(f"--{name}" for name in missing))
    from funnel_tfm.serving.formats import ExportFormatError, check_format
    try:
        check_format(FLAGS.format)  # before TensorFlow is imported
    except ExportFormatError as failure:
        error("export", str(failure))
    from absl import logging
    logging.set_verbosity(logging.WARNING)
    from funnel_tfm.config import ConfigError
    from funnel_tfm.data.tokenization import TokenizerError
    from funnel_tfm.errors import CheckpointError
    from funnel_tfm.serving.exporter import export_model
    try:
        from funnel_tfm import file_io
        file_io.check_output_spares(FLAGS.export_dir, (FLAGS.model_dir,), "--export_dir")
        export_model(FLAGS.model_dir, FLAGS.format, FLAGS.export_dir, checkpoint=FLAGS.checkpoint,
                     overwrite=FLAGS.overwrite, backbone_only=FLAGS.backbone_only)
    except (ConfigError, CheckpointError, TokenizerError, ValueError, FileNotFoundError, FileExistsError) as failure:
        error("export", str(failure))  # ExportError and RunRecordError are ValueErrors


if __name__ == "__main__":
    flag_checks.run(main)
