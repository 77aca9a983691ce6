"""Flag values checked where the flags are defined, by one mechanism that every entry point runs through.

    flags.DEFINE_integer("train_steps", 1000, "Steps.", lower_bound=1)    # integers: absl's own bounds
    flags.DEFINE_float("learning_rate", 1e-5, "Peak learning rate.")
    flag_checks.above("learning_rate", 0.0)                               # floats: right after their DEFINE
    flag_checks.within("adam_beta1", 0.0, 1.0, high_open=True)            # 0 <= beta1 < 1
    flag_checks.related(("proc_id", "num_proc"), lambda v: v["proc_id"] < v["num_proc"], "must be < --num_proc")
    flag_checks.run(main)                                                 # instead of app.run(main)

absl runs every check while it parses the command line, before `main` reads or writes anything; `run` turns a
failure into one line, `<prog>: error: --flag=value: why`, and exit status 1, the form of every other error of
the entry points. An unset optional flag (None) passes. `tests/test_flag_checks.py` fails for any integer or
float flag of an entry point without a check, so a new flag cannot skip them.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable

from absl import app, flags

FLAGS = flags.FLAGS


def _bounds_text(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if high is None:
        return f"must be {'>' if low_open else '>='} {low:g}"
    if low is None:
        return f"must be {'<' if high_open else '<='} {high:g}"
    return f"must be in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def within(name: str, low: float | None, high: float | None, low_open: bool = False, high_open: bool = False,
           flag_values: flags.FlagValues = FLAGS) -> None:
    """--name must lie between `low` and `high` (None: unbounded; `*_open`: the bound itself is refused)."""
    def check(value: Any) -> bool:
        if value is None:
            return True
        above_low = low is None or (value > low if low_open else value >= low)
        below_high = high is None or (value < high if high_open else value <= high)
        return above_low and below_high
    flags.register_validator(name, check, _bounds_text(low, high, low_open, high_open), flag_values=flag_values)


def above(name: str, bound: float, flag_values: flags.FlagValues = FLAGS) -> None:
    """--name must be greater than `bound` (a learning rate, an epsilon, a time)."""
    within(name, bound, None, low_open=True, flag_values=flag_values)


def at_least(name: str, bound: float, flag_values: flags.FlagValues = FLAGS) -> None:
    within(name, bound, None, flag_values=flag_values)


def related(names: tuple[str, ...], holds: Callable[[dict[str, Any]], bool], why: str,
            flag_values: flags.FlagValues = FLAGS) -> None:
    """A relation between flags, e.g. --proc_id < --num_proc; `holds` gets {name: value} of `names` (skipped
    while any is unset); the error shows each flag with its value, then `why`."""
    def check(values: dict[str, Any]) -> bool:
        return any(value is None for value in values.values()) or bool(holds(values))
    flags.register_multi_flags_validator(list(names), check, message=why, flag_values=flag_values)


def error_line(prog: str, failure: Exception) -> str:
    """`<prog>: error: --flag=value: why` from absl's parsing error ("flag --flag=value: why")."""
    message = str(failure).strip()
    if message.startswith("flag "):
        message = message[len("flag "):]
    elif message.startswith("flags "):  # a relation: "flags a=1, b=2: why"
        shown, _, why = message[len("flags "):].partition(": ")
        message = ", ".join(f"--{part.strip()}" for part in shown.split(",")) + f": {why}"
    return f"{prog}: error: {message}"


def parse(argv: list[str], flag_values: flags.FlagValues = FLAGS) -> list[str]:
    """absl's parse with every check; a failure is one line on stderr and exit status 1."""
    try:
        return flag_values(argv)
    except flags.Error as failure:
        prog = os.path.splitext(os.path.basename(argv[0]))[0] if argv else "funnel_tfm"
        print(error_line(prog, failure), file=sys.stderr, flush=True)
        sys.exit(1)


def run(main: Callable[[list[str]], Any]) -> None:
    """app.run(main), with flag errors as one line (`parse`)."""
    app.run(main, flags_parser=parse)
