"""bench/gpu_speed.py: the largest-batch search on memory models, and the whole script on tiny sizes, run as
the GPU machine runs it (Keras on JAX, PyTorch + transformers, no TensorFlow importable), here on the CPU."""

from __future__ import annotations

import importlib.util
import math
import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "bench", "gpu_speed.py")
# The GPU machine has no TensorFlow: every process of the run (workers too) finds none.
NO_TENSORFLOW = """
import sys

for name in ("tensorflow", "tensorflow_text"):
    sys.modules[name] = None  # `import` raises ModuleNotFoundError, importlib.util.find_spec says None
"""


@pytest.fixture(scope="module")
def gpu_speed():
    """The script as a module. Its absl flags go into the process-wide registry, where entry points imported
    earlier or later in the same test process (`describe`: `--models`, `--repeats`) define some of the same
    names: those are set aside while the script's are defined and put back afterwards."""
    from absl import flags

    with open(SCRIPT, encoding="utf-8") as handle:
        names = re.findall(r'flags\.DEFINE_\w+\(\s*"(\w+)"', handle.read())
    set_aside = {name: flags.FLAGS[name] for name in names if name in flags.FLAGS}
    for name in set_aside:
        delattr(flags.FLAGS, name)
    spec = importlib.util.spec_from_file_location("gpu_speed", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_speed"] = module  # dataclasses look their module up while the class is made
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        for flag in flags.FLAGS.get_flags_for_module("gpu_speed"):
            delattr(flags.FLAGS, flag.name)
        for name, flag in set_aside.items():
            flags.FLAGS[name] = flag
        del sys.modules["gpu_speed"]


def linear_memory(gpu_speed, fixed: int, per_example: int, cap: int, runs_up_to: int | None = None):
    """A try whose plan is affine in the batch; with `runs_up_to`, larger batches fail at run time (the
    fragmentation or workspaces that the plan does not show)."""
    def try_batch(batch: int):
        plan = fixed + per_example * batch
        if plan > cap:
            return gpu_speed.BatchTry(batch, False, plan, "plan")
        ran = runs_up_to is None or batch <= runs_up_to
        return gpu_speed.BatchTry(batch, ran, plan, "" if ran else "out of memory")
    return try_batch


def test_search_finds_the_largest_batch_in_few_tries(gpu_speed):
    try_batch = linear_memory(gpu_speed, fixed=1000, per_example=10, cap=1645)  # 64.5 examples fit
    best, tries = gpu_speed.largest_batch(try_batch, 1645, granularity=4, max_batch=1024)
    assert best == 64
    assert len(tries) == 4  # two probes, the prediction, and the next multiple


def test_search_walks_down_when_the_run_fails_under_the_plan(gpu_speed):
    try_batch = linear_memory(gpu_speed, fixed=1000, per_example=10, cap=1645, runs_up_to=57)
    best, tries = gpu_speed.largest_batch(try_batch, 1645, granularity=4, max_batch=1024)
    assert best == 56
    assert [t.batch for t in tries if not t.fits] == [64, 60]


@pytest.mark.parametrize("cap, max_batch, expected", [(1005, 1024, 0), (1015, 1024, 1), (10 ** 9, 40, 40),
                                                      (1045, 12, 4)])
def test_search_edges(gpu_speed, cap, max_batch, expected):
    """Nothing fits; only batch 1 fits; the ceiling; a ceiling below the probes."""
    best, _ = gpu_speed.largest_batch(linear_memory(gpu_speed, 1000, 10, cap), cap, 4, max_batch)
    assert best == expected


def table_rows(output: str) -> dict[tuple[str, str], list[str]]:
    """(model, implementation or length) -> cells, for every data row of the printed markdown tables."""
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| tiny-") and len(cells) > 2:
            rows[(cells[0], cells[1])] = cells
    return rows


@pytest.mark.slow  # ~25 s of XLA compiles; CI runs it with the slow ones
def test_tiny_run_prints_every_row_with_finite_numbers(tmp_path):
    """Our row and transformers' Funnel and BERT rows at one shape, and the memory search, in one run; XLA's
    CPU backend compiles at its lowest optimisation level (compilation dominates at this size)."""
    (tmp_path / "sitecustomize.py").write_text(NO_TENSORFLOW)
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}",
           "XLA_FLAGS": "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"}
    # Batch 16 x 64 is also the search's first probe (granularity 8 at length 64), so the JAX cache compiles
    # that step once for both.
    command = [sys.executable, SCRIPT, "--tiny", "--models=tiny-B1-1H16", "--shapes=16x64", "--steps=1",
               "--repeats=1", "--warmup=1", "--memory_cap_gib=0.004", f"--jax_cache_dir={tmp_path / 'jax_cache'}",
               f"--json_out={tmp_path / 'results.json'}"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    output = done.stdout
    assert "failed" not in output, output
    assert "devices: " in output and "JAX" in output and "PyTorch" in output, output
    rows = table_rows(output)
    for key in [("tiny-B1-1H16", "ours"), ("tiny-B1-1H16", "hf_funnel"), ("tiny-L2H16", "hf_bert")]:
        cells = rows[key]
        numbers = [float(cells[i].replace(",", "")) for i in (2, 3, 4, 6, 10)]  # tokens/s ... FLOPs ratio, loss
        assert all(math.isfinite(n) and n > 0 for n in numbers), cells
        start_up = float(cells[9])  # seconds, printed to 0.1: a tiny torch model starts in "0.0"
        assert math.isfinite(start_up) and start_up >= 0, cells
    assert rows[("tiny-L2H16", "hf_bert")][4] == "1.00"                           # time / BERT of BERT itself
    assert float(rows[("tiny-B1-1H16", "ours")][8]) > 0                           # XLA plan, GiB
    search = rows[("tiny-B1-1H16", "64")]
    assert int(search[2]) >= 1 and "plan <= cap" in search[5], search
    assert re.search(r"\| \d+ \(", output), output                                # the first batch over the cap
    assert (tmp_path / "results.json").exists()
