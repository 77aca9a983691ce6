"""Helpers of the robustness suite: run an entry point, read its one error line, fingerprint a directory."""

import hashlib
import os
import subprocess
import sys


# TensorFlow's own start-up lines (a CUDA probe in a CUDA torch venv) would precede the one line under test.
QUIET_ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}


def run(module: str, *args: str, cwd: str | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """`python -m funnel_tfm.<module> args...` on the CPU."""
    return subprocess.run([sys.executable, "-m", f"funnel_tfm.{module}", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=QUIET_ENV)


def one_error_line(result: subprocess.CompletedProcess, prog: str) -> str:
    """The text of the single `<prog>: error: ...` line a refused command ends with (exit status 1)."""
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{prog}: error: "), result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return last[len(f"{prog}: error: "):]


def snapshot(path) -> dict[str, str]:
    """relative path -> sha256 of every file under `path`: what "nothing was changed on disk" compares."""
    found = {}
    for root, _, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            with open(full, "rb") as handle:
                found[os.path.relpath(full, path)] = hashlib.sha256(handle.read()).hexdigest()
    return found


def write_sst2(directory, train_rows: list[tuple[str, str]], dev_rows: list[tuple[str, str]] | None = None) -> str:
    """A GLUE SST-2 folder (sentence<TAB>label with a header)."""
    os.makedirs(directory, exist_ok=True)
    for split, rows in (("train", train_rows), ("dev", dev_rows or train_rows)):
        with open(os.path.join(directory, f"{split}.tsv"), "w", encoding="utf-8") as handle:
            handle.write("sentence\tlabel\n" + "".join(f"{text}\t{label}\n" for text, label in rows))
    return str(directory)


SENTENCES = [("a gripping and beautifully acted film", "1"), ("dull , slow and far too long", "0"),
             ("one of the best films of the year", "1"), ("a tedious mess from start to finish", "0")] * 4
