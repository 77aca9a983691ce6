"""The package's layers: imports only run downwards, no import cycles, and the model layer needs no TensorFlow.

Every `import` in the package is read from the source (module level and inside functions alike), so a lazy
import that runs upwards fails here too.
"""

from __future__ import annotations

import ast
import os
import pathlib
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "funnel_tfm"

# Lower rank = lower layer. A module may import modules of a lower rank, and modules of its own subpackage.
RANKS = {
    "funnel_tfm.errors": 0, "funnel_tfm.file_io": 0,
    "funnel_tfm.llvm_isolation": 0,  # run by funnel_tfm/__init__.py before anything loads TensorFlow
    "funnel_tfm.config": 1,
    "funnel_tfm.config_fnet": 1.5,  # FNetConfig: shares ModelConfig's error type and activation names
    "funnel_tfm.layers": 2,
    "funnel_tfm.checkpoints": 3,  # formats + assign-by-name: no model code; the backbone class is passed in
    "funnel_tfm.modeling": 4, "funnel_tfm.modeling_fnet": 4, "funnel_tfm.analysis": 4,
    "funnel_tfm.data": 5,
    "funnel_tfm.tasks": 6,
    "funnel_tfm.training": 7,
    "funnel_tfm.serving": 7.25,  # export and batch inference: reads what the training jobs record
    "funnel_tfm.flag_checks": 7.4,  # range checks of flag values and the one-line error, used by every flag module
    "funnel_tfm.config_flags": 7.5,  # the absl flags shared by the entry points
    "funnel_tfm.legacy_flags": 7.5,  # the original's flags mapped onto ours, shared by the entry points
    "funnel_tfm.training_flags": 7.5,  # optimizer and run flags shared by the training entry points
    "funnel_tfm.finetune_cli": 7.75,  # flags -> run settings and one-line errors, shared by the finetuning entry points
}
ENTRY_RANK = 8  # every other top-level module: entry points and their flag helpers
# Prefixes: "funnel_tfm.config" and "funnel_tfm.modeling" cover config_fnet and modeling_fnet as well.
MODEL_LAYER = ("funnel_tfm.config", "funnel_tfm.layers", "funnel_tfm.modeling", "funnel_tfm.errors")


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def group(module: str) -> str:
    """The layer a module belongs to: its subpackage, or itself for a top-level module."""
    parts = module.split(".")
    return ".".join(parts[:2])


def rank(module: str) -> float:
    return RANKS.get(group(module), ENTRY_RANK if module != "funnel_tfm" else 99)


def imports_of(path: pathlib.Path) -> list[tuple[str, int]]:
    """(imported funnel_tfm module, line) for every import statement in the file."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names if alias.name.startswith("funnel_tfm")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("funnel_tfm"):
            for alias in node.names:  # `from funnel_tfm.data import tokenization` imports a module
                candidate = f"{node.module}.{alias.name}"
                is_module = (PACKAGE.parent / candidate.replace(".", "/")).with_suffix(".py").exists() or \
                    (PACKAGE.parent / candidate.replace(".", "/")).is_dir()
                found.append((candidate if is_module else node.module, node.lineno))
    return found


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def test_every_subpackage_has_a_rank():
    subpackages = {module_name(p) for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert subpackages <= set(RANKS), f"give {sorted(subpackages - set(RANKS))} a rank in this test"


def test_imports_only_run_downwards():
    upward = []
    for module, path in MODULES.items():
        if module == "funnel_tfm":
            continue  # the public API re-exports from every layer (lazily)
        for target, line in imports_of(path):
            same_package = group(target) == group(module) and (PACKAGE.parent / group(module).replace(".", "/")).is_dir()
            if target == module or same_package:
                continue
            if rank(target) >= rank(module):
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {module} (rank {rank(module)}) imports "
                              f"{target} (rank {rank(target)})")
    assert not upward, "imports that run upwards:\n" + "\n".join(upward)


def test_no_import_cycles():
    graph = {module: {target for target, _ in imports_of(path) if target in MODULES and target != module}
             for module, path in MODULES.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [node, nxt]) if nxt in stack else f"{node}->{nxt}")
            elif nxt not in state:
                visit(nxt, stack + [node])
        state[node] = 2

    for module in graph:
        if module not in state and module != "funnel_tfm":
            visit(module, [])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_model_layer_never_imports_tensorflow():
    offenders = []
    for module, path in MODULES.items():
        if not module.startswith(MODEL_LAYER) and module not in ("funnel_tfm.checkpoints.hf_format",
                                                                  "funnel_tfm.checkpoints.hf_fnet",
                                                                  "funnel_tfm.checkpoints.assign"):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(name.split(".")[0] in ("tensorflow", "tensorflow_text") for name in names):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert not offenders, "TensorFlow imported in the model layer: " + ", ".join(offenders)


@pytest.mark.smoke
def test_backbone_builds_and_loads_with_tensorflow_blocked(tmp_path):
    """In a process where `import tensorflow` fails, the backbone builds, runs, saves and loads (JAX backend)."""
    pytest.importorskip("jax")
    script = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "tensorflow_text"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
import numpy as np
import funnel_tfm as ft
config = ft.ModelConfig(block_size="1_1", d_model=16, d_embed=16, n_head=2, d_head=8, d_inner=32, vocab_size=40)
model = ft.FunnelTFM(config)
ids = np.arange(16, dtype=np.int32)[None] % 40
out = model({{"token_ids": ids}})
ft.save_pretrained(model, {str(tmp_path / "m")!r})
again = ft.FunnelTFM.from_pretrained({str(tmp_path / "m")!r})
diff = np.abs(np.asarray(again({{"token_ids": ids}})["decoder_output"]) - np.asarray(out["decoder_output"])).max()
assert diff == 0.0, diff
assert "tensorflow" not in sys.modules
print("ok")
"""
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-3000:]
