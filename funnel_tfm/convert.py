r"""Converts a Funnel-Transformer checkpoint between the original, Hugging Face and funnel_tfm formats.

    python -m funnel_tfm.convert --input=B6-6-6H768-ELEC-FULL-TF --output=out/hf --to=hf
    python -m funnel_tfm.convert --input=funnel-transformer/small --output=out/original --to=original
    python -m funnel_tfm.convert --input=out/original --output=out/keras --to=keras --overwrite
    python -m funnel_tfm.convert --input=exp/fnet_cola/export --output=out/fnet_cola --to=hf   # FNet (below)

The input format is detected (original TF `net_config.json` + `model.ckpt*`, original PyTorch
`net_config.pytorch.json` + `model.pt`, Hugging Face `config.json` + `model.safetensors`/`pytorch_model.bin`,
funnel_tfm `funnel_config.json` + `model.safetensors`, a pretraining run's `--model_dir`: its latest training
checkpoint, with the generator of an ELECTRA run). FNet directories (transformers' FNet classes, our
`fnet_config.json`, a finetuned FNet run's `export/`) convert to hf (the transformers class of the head:
FNetForSequenceClassification, FNetForMultipleChoice, FNetForTokenClassification, else FNetForPreTraining or
FNetModel; fnet semantics N11) or keras. It prints what was loaded, what was skipped and why, and what was
written. Any problem is one `convert: error: ...` line and exit status 1; the output directory is only created
once it is complete, and an existing one is left alone unless --overwrite.
"""

from __future__ import annotations

import collections
import os
import re
import sys
from typing import TextIO

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported: keep the report readable

from absl import app, flags

from funnel_tfm import flag_checks

from funnel_tfm.config import ConfigError

_DECODER_CHOICES = {"auto": None, "true": True, "false": False}


def _grouped(skipped: dict[str, str], verbose: bool, limit: int = 3) -> list[str]:
    """One line per reason with a count and a few names (all names with verbose)."""
    by_reason: dict[str, list[str]] = collections.defaultdict(list)
    for name, reason in skipped.items():
        by_reason[reason].append(name)
    lines = []
    for reason, names in sorted(by_reason.items(), key=lambda item: -len(item[1])):
        names = sorted(names)
        shown = names if verbose else names[:limit]
        more = "" if len(shown) == len(names) else f", ... ({len(names) - len(shown)} more)"
        lines.append(f"  {len(names)} x {reason}: {', '.join(shown)}{more}")
    return lines


def run(input_path: str, output_path: str, to: str, overwrite: bool = False, use_decoder: bool | None = None,
        verbose: bool = False, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Does one conversion and prints its report; returns the exit status (0 ok, 1 error)."""
    from funnel_tfm import checkpoints, file_io  # imported after flag parsing, so --help stays fast
    from funnel_tfm.modeling import FunnelTFM
    from funnel_tfm.tasks.backbones import is_fnet, is_fnet_checkpoint, load_fnet_checkpoint
    from funnel_tfm.training.pretrain_dir import is_pretraining_run, restore_pretraining_task
    try:
        file_io.check_output_spares(output_path, (input_path,), "--output")
        if to not in checkpoints.FORMATS:
            raise checkpoints.CheckpointError(f"--to={to!r}; expected one of {', '.join(checkpoints.FORMATS)}")
        run_prefix = (bool(re.fullmatch(r"ckpt-\d+", os.path.basename(input_path)))
                      and os.path.exists(input_path + ".index"))
        if run_prefix and not is_pretraining_run(os.path.dirname(input_path) or "."):
            raise checkpoints.CheckpointError(
                f"{input_path}: a training checkpoint of a finetuning run, which holds the optimizer too; convert "
                f"its export instead (`python -m funnel_tfm.export --model_dir={os.path.dirname(input_path)} "
                f"--format=keras --checkpoint=...`)")
        if run_prefix or (os.path.isdir(input_path) and is_pretraining_run(input_path)):
            # a pretraining run's latest ckpt-<step> (not its export/), or the one named
            run_path, prefix = (os.path.dirname(input_path), input_path) if run_prefix else (input_path, None)
            task, step = restore_pretraining_task(run_path, prefix)
            step = step if step is not None else int(os.path.basename(input_path)[len("ckpt-"):])
            ckpt = task.checkpoint_view()
            if use_decoder is False and getattr(ckpt.model, "use_decoder", False):
                raise checkpoints.CheckpointError(
                    f"--use_decoder=false: {input_path} is a pretraining run with a decoder; convert it as it is "
                    f"(--use_decoder=auto), then convert that output with --use_decoder=false")
            input_path = f"{input_path} (pretraining run, step {step})"
            backbone = "FNet backbone" if is_fnet(ckpt.model.config) else \
                "decoder" if ckpt.model.use_decoder else "no decoder"
        elif os.path.isdir(input_path) and is_fnet_checkpoint(input_path):
            ckpt = load_fnet_checkpoint(input_path)  # FNet has no decoder: --use_decoder does not apply
            backbone = "FNet backbone"
        else:
            ckpt = FunnelTFM.load_checkpoint(input_path, use_decoder=use_decoder)
            backbone = "decoder" if ckpt.model.use_decoder else "no decoder"
        report = ckpt.report
        parts = [backbone] + sorted(
            f"{head.kind} head '{scope}'" for scope, head in ckpt.heads.items())
        if ckpt.generator is not None:
            parts.append(f"generator (d_model {ckpt.generator.config.d_model})")
        print(f"read {ckpt.source_format} checkpoint {input_path}: {report.summary()}", file=out)
        print(f"  parts: {', '.join(parts)}", file=out)
        if report.skipped:
            print("skipped when reading:", file=out)
            for line in _grouped(report.skipped, verbose):
                print(line, file=out)
        if report.missing:
            print(f"not in the checkpoint, so not written: {', '.join(report.missing)}", file=out)
        result = checkpoints.export(ckpt, output_path, to=to, overwrite=overwrite)
        detail = f" ({result.detail})" if result.detail else ""
        print(f"wrote {to} checkpoint {output_path}: {result.written} tensors{detail}", file=out)
        for note in result.notes:
            print(f"  {note}", file=out)
        if result.skipped:
            print("not written:", file=out)
            for line in _grouped(result.skipped, verbose):
                print(line, file=out)
        return 0
    except (checkpoints.CheckpointError, ConfigError, OSError) as error:
        message = " ".join(str(error).split())  # one line, whatever the library message looked like
        print(f"convert: error: {message}", file=err)
        return 1


FLAGS = flags.FLAGS
flags.DEFINE_string("input", None, "Checkpoint directory to read (or the prefix of one TF checkpoint).")
flags.DEFINE_string("output", None, "Directory to create.")
flags.DEFINE_enum("to", None, ["hf", "original", "keras"], "Output format: Hugging Face, original TF, funnel_tfm.")
flags.DEFINE_boolean("overwrite", False, "Replace an existing output directory (only once the new one is complete).")
flags.DEFINE_enum("use_decoder", "auto", list(_DECODER_CHOICES),
                  "Keep the decoder: auto = whatever the checkpoint has; false drops it (a '-base' model).")
flags.DEFINE_boolean("verbose", False, "List every skipped name instead of a few per reason.")
flags.mark_flags_as_required(["input", "output", "to"])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    sys.exit(run(FLAGS.input, FLAGS.output, FLAGS.to, FLAGS.overwrite, _DECODER_CHOICES[FLAGS.use_decoder],
                 FLAGS.verbose))


if __name__ == "__main__":
    flag_checks.run(main)
