r"""The original release's flags (TPU-era, tokenizer, README spellings), accepted and mapped onto ours.

Users' command lines from the original Funnel-Transformer scripts and README run unchanged. An entry point
defines its own flags first, then these (a name it already has is reused, never redefined), and resolves them
before any work:

    legacy_flags.define(FLAGS, train_only=True)        # after the entry point's own DEFINE_* calls
    settings = legacy_flags.resolve(FLAGS, train_only=True)
    settings["strategy"], settings["precision"]        # e.g. "tpu", "mixed_bfloat16" for --use_tpu --use_bfloat16

| original flag | ours |
|---|---|
| `--use_tpu=True` | `--strategy=tpu` (`--use_tpu=False` only forbids `--strategy=tpu`) |
| `--num_hosts=N>1` (no TPU) | `--strategy=multi_worker` (TF_CONFIG describes the cluster) |
| `--num_core_per_host=N>1` (no TPU) | `--strategy=mirrored` (every visible GPU; `multi_worker` also fits) |
| `--use_bfloat16=True` | `--precision=mixed_bfloat16` (`=False` only forbids `mixed_bfloat16`) |
| `--master` | `--tpu` (a grpc address) |
| `--model_config_path` | `--model_config` |
| `--num_task`, `--task` | `--num_proc`, `--proc_id` |
| `--tokenizer_type` | checked against `--tokenizer_path` (a `.model` file is SentencePiece) |

An original flag that contradicts one of ours is a `LegacyFlagError` naming both. Only flags given on the
command line are compared (`flag.present`): equal values, and our defaults, are never a contradiction.
Importing this module defines nothing: `define` must run after the entry point's own flags, so that it can
reuse them (absl raises DuplicateFlagError on a second definition).
"""

from __future__ import annotations

from absl import flags

WORD_PIECE, SENTENCE_PIECE = "word_piece", "sentence_piece"
# Every spelling --tokenizer_type accepts (any case): the original's (word_piece, sent_piece), ours, the README's.
_TOKENIZER_SPELLINGS = {"word_piece": WORD_PIECE, "wordpiece": WORD_PIECE, "sentence_piece": SENTENCE_PIECE,
                        "sentencepiece": SENTENCE_PIECE, "sent_piece": SENTENCE_PIECE}
# Original flag -> our flag it renames; mapped only where the entry point has our flag.
_RENAMES = {"model_config_path": "model_config", "master": "tpu", "num_task": "num_proc", "task": "proc_id"}
_UNUSED_TPU_ADDRESS = ("tpu_zone", "gcp_project", "tpu_job_name")
_INFORMATIONAL = " With TPU it is informational: the TPU strategy finds the cores and hosts itself."


class LegacyFlagError(ValueError):
    """An original flag that contradicts one of ours (the message names both), or a run mode we lack."""


# ------------------------------------------------------------------------------------------------ defining
def define(flag_values: flags.FlagValues = flags.FLAGS, *, train_only: bool = False) -> None:
    """Defines the original's flags that `flag_values` lacks (call it after the entry point's own flags).

        define(flags.FLAGS)                    # create_pretrain_data: TPU, tokenizer, --num_task/--task
        define(flags.FLAGS, train_only=True)   # pretrain: also --do_train/--do_eval and the eval flags
    """
    _define_hardware(flag_values)
    _define_misc(flag_values)
    _define_renames(flag_values)
    if train_only:
        _define_run_modes(flag_values)


def _define_if_absent(kind, name: str, default, help_text: str, flag_values: flags.FlagValues, **extra) -> None:
    # absl raises DuplicateFlagError on a second definition: an entry point's own flag wins.
    if name not in flag_values:
        kind(name, default, help_text, flag_values=flag_values, **extra)


def _define_hardware(fv: flags.FlagValues) -> None:
    # Where the entry point has no --strategy / --precision (create_pretrain_data) these are only accepted.
    distributes, casts = "strategy" in fv, "precision" in fv
    _define_if_absent(flags.DEFINE_boolean, "use_tpu", None, _help(distributes, "true = --strategy=tpu; false "
                      "only forbids --strategy=tpu; not given = --strategy decides."), fv)
    _define_if_absent(flags.DEFINE_string, "tpu", None, _help(distributes, "TPU name or grpc address ('local' on "
                                                                           "a TPU VM)."), fv)
    _define_if_absent(flags.DEFINE_string, "master", None, _help(distributes, "the TPU's grpc address; = --tpu."),
                      fv)
    for name in _UNUSED_TPU_ADDRESS:
        _define_if_absent(flags.DEFINE_string, name, None, _help(distributes, "accepted and not used: the TPU "
                          "resolver takes zone, project and job from the TPU VM (a warning says so)."), fv)
    _define_if_absent(_define_blankable_count, "num_hosts", None, _help(distributes, ">1 without TPU = "
                      "--strategy=multi_worker (TF_CONFIG describes the cluster)." + _INFORMATIONAL), fv)
    _define_if_absent(_define_blankable_count, "num_core_per_host", None, _help(distributes, ">1 without TPU = "
                      "--strategy=mirrored over every visible GPU (CUDA_VISIBLE_DEVICES picks them; the count "
                      "is not enforced)." + _INFORMATIONAL), fv)
    _define_if_absent(flags.DEFINE_boolean, "use_bfloat16", None, _help(casts, "true = --precision=mixed_bfloat16; "
                      "false only forbids mixed_bfloat16."), fv)


class _BlankableCountParser(flags.IntegerParser):
    """A count >= 1, or nothing: the seed README's IMDB command passes `--num_hosts=${NUM_HOST}`, a variable its
    script never sets (it sets NUM_HOSTS), so the shell hands over `--num_hosts=`; empty means not given."""

    def __init__(self):
        super().__init__(lower_bound=1)

    def parse(self, argument):
        if isinstance(argument, str) and not argument.strip():
            return None
        return super().parse(argument)


def _define_blankable_count(name: str, default, help_text: str, flag_values: flags.FlagValues) -> None:
    flags.DEFINE(_BlankableCountParser(), name, default, help_text, flag_values=flag_values,
                 serializer=flags.ArgumentSerializer())


def _help(used: bool, meaning: str) -> str:
    """The help of an original flag: _help(True, "= --tpu.") == "Original flag: = --tpu."."""
    return f"Original flag: {meaning}" if used else "Original flag, accepted and not used here."


def _define_misc(fv: flags.FlagValues) -> None:
    if "tokenizer_type" not in fv:
        flags.DEFINE_enum("tokenizer_type", None, list(_TOKENIZER_SPELLINGS), "Original flag (any case): checked "
                          "against --tokenizer_path, where a .model file is SentencePiece and anything else a "
                          "WordPiece vocabulary.", flag_values=fv, case_sensitive=False)
    _define_if_absent(flags.DEFINE_boolean, "verbose", False, _help("strategy" in fv, "more logging (absl INFO)."),
                      fv)
    _define_if_absent(flags.DEFINE_boolean, "overwrite", False, _help(True, "accepted and unused (as in the "
                                                                            "original pretrain.py)."), fv)


def _define_renames(fv: flags.FlagValues) -> None:
    if "model_config" in fv:
        _define_if_absent(flags.DEFINE_string, "model_config_path", None, "The README's spelling of "
                                                                          "--model_config.", fv)
    if "num_proc" in fv:
        _define_if_absent(flags.DEFINE_integer, "num_task", None, "Original flag: = --num_proc.", fv, lower_bound=1)
    if "proc_id" in fv:
        _define_if_absent(flags.DEFINE_integer, "task", None, "Original flag: = --proc_id.", fv, lower_bound=0)


def _define_run_modes(fv: flags.FlagValues) -> None:
    # The original pretrain.py could also evaluate; this entry point only trains, so only the no-op values pass.
    _define_if_absent(flags.DEFINE_boolean, "do_train", True, "Original flag: must stay true (this program "
                                                              "trains).", fv)
    _define_if_absent(flags.DEFINE_boolean, "do_eval", False, "Original flag: true is an error (evaluation of "
                                                              "pretraining is not implemented).", fv)
    _define_if_absent(flags.DEFINE_boolean, "eval_all_ckpt", False, "README flag, accepted; evaluation only.", fv)
    for name, default in (("eval_ckpt_path", None), ("eval_split", "dev")):
        _define_if_absent(flags.DEFINE_string, name, default, "Original flag, accepted; evaluation only.", fv)
    for name, default in (("eval_batch_size", 60), ("max_eval_batch", -1), ("start_eval_steps", 200000)):
        _define_if_absent(flags.DEFINE_integer, name, default, "Original flag, accepted; evaluation only.", fv,
                          lower_bound=-1)


# ------------------------------------------------------------------------------------------------ resolving
def resolve(flag_values: flags.FlagValues = flags.FLAGS, *, train_only: bool = False) -> dict[str, object]:
    """Our settings after the original flags: the value of each of our flags an original flag maps onto.

        resolve(FLAGS)  # --use_tpu --tpu=x --use_bfloat16 -> {"strategy": "tpu", "tpu": "x",
                        #                                      "precision": "mixed_bfloat16", ...}

    Keys: those of strategy, precision, model_config, tpu, num_proc, proc_id that the entry point has, and
    verbose (the original's --verbose, or ours). Raises LegacyFlagError on a contradiction, on a
    --tokenizer_type that does not fit --tokenizer_path and (train_only) on --do_eval=True or --do_train=False.
    """
    fv = flag_values
    settings: dict[str, object] = {}
    if "strategy" in fv:
        settings["strategy"] = _strategy(fv)
    if "precision" in fv:
        settings["precision"] = _precision(fv)
    for original, ours in _RENAMES.items():
        if original in fv and ours in fv:
            settings[ours] = _renamed(fv, original, ours)
    settings["verbose"] = bool(fv["verbose"].value) if "verbose" in fv else False
    _check_tokenizer(fv)
    if train_only:
        _check_train_only(fv)
    return settings


def notices(flag_values: flags.FlagValues = flags.FLAGS) -> list[str]:
    """Messages for given original flags that have no effect here and might be expected to.

        for message in notices(FLAGS): print(f"pretrain: warning: {message}", file=sys.stderr)
    """
    return [f"--{name} is accepted and not used: the TPU resolver takes zone, project and job from the TPU VM"
            for name in _UNUSED_TPU_ADDRESS if name in flag_values and flag_values[name].present]


def _given(fv: flags.FlagValues, name: str):
    """The value of a flag given on the command line, else None."""
    return fv[name].value if name in fv and fv[name].present else None


def _contradiction(original: str, ours: str) -> LegacyFlagError:
    return LegacyFlagError(f"{original} contradicts {ours}: give one of them, or equal values")


def _strategy(fv: flags.FlagValues) -> str:
    current, explicit = fv["strategy"].value, fv["strategy"].present
    use_tpu = _given(fv, "use_tpu")
    if use_tpu:
        if explicit and current != "tpu":
            raise _contradiction("--use_tpu=True", f"--strategy={current}")
        return "tpu"
    if use_tpu is False and explicit and current == "tpu":
        raise _contradiction("--use_tpu=False", "--strategy=tpu")
    if current == "tpu":
        return current  # the host and core counts are informational on TPU
    hosts, cores = _given(fv, "num_hosts") or 1, _given(fv, "num_core_per_host") or 1
    if hosts > 1:
        return _implied(fv, f"--num_hosts={hosts}", "multi_worker", ("multi_worker",))
    if cores > 1:  # multi_worker also runs on every local GPU
        return _implied(fv, f"--num_core_per_host={cores}", "mirrored", ("mirrored", "multi_worker"))
    return current


def _implied(fv: flags.FlagValues, original: str, strategy: str, fitting: tuple[str, ...]) -> str:
    current = fv["strategy"].value
    if not fv["strategy"].present:
        return strategy
    if current not in fitting:
        raise _contradiction(original, f"--strategy={current}")
    return current


def _precision(fv: flags.FlagValues) -> str:
    current, explicit = fv["precision"].value, fv["precision"].present
    use_bfloat16 = _given(fv, "use_bfloat16")
    if use_bfloat16 is None:
        return current
    if use_bfloat16 and explicit and current != "mixed_bfloat16":
        raise _contradiction("--use_bfloat16=True", f"--precision={current}")
    if not use_bfloat16 and explicit and current == "mixed_bfloat16":
        raise _contradiction("--use_bfloat16=False", "--precision=mixed_bfloat16")
    return "mixed_bfloat16" if use_bfloat16 else current


def _renamed(fv: flags.FlagValues, original: str, ours: str):
    value = _given(fv, original)
    if value is None:
        return fv[ours].value
    if fv[ours].present and fv[ours].value != value:
        raise _contradiction(f"--{original}={value}", f"--{ours}={fv[ours].value}")
    return value


def tokenizer_kind(spelling: str) -> str:
    """word_piece or sentence_piece for any accepted spelling: tokenizer_kind("SentencePiece") == "sentence_piece"."""
    try:
        return _TOKENIZER_SPELLINGS[spelling.lower()]
    except KeyError:
        raise LegacyFlagError(f"--tokenizer_type={spelling}: expected word_piece or sentence_piece") from None


def _check_tokenizer(fv: flags.FlagValues) -> None:
    spelling, path = _given(fv, "tokenizer_type"), fv["tokenizer_path"].value if "tokenizer_path" in fv else None
    if spelling is None or not path:
        return  # a missing --tokenizer_path is the entry point's error
    kind, is_model = tokenizer_kind(spelling), path.endswith(".model")
    if kind == SENTENCE_PIECE and not is_model:
        raise LegacyFlagError(f"--tokenizer_type={spelling} needs a SentencePiece .model file, but "
                              f"--tokenizer_path={path} is read as a WordPiece vocabulary (not a .model file)")
    if kind == WORD_PIECE and is_model:
        raise LegacyFlagError(f"--tokenizer_type={spelling} needs a WordPiece vocabulary, but "
                              f"--tokenizer_path={path} is a SentencePiece .model file")


def _check_train_only(fv: flags.FlagValues) -> None:
    if _given(fv, "do_eval"):
        raise LegacyFlagError("--do_eval=True: evaluation of pretraining is not implemented; this program only "
                              "trains (drop --do_eval, or give --do_eval=False)")
    if _given(fv, "do_train") is False:
        raise LegacyFlagError("--do_train=False leaves nothing to do: this program only trains")
