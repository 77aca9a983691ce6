"""Keep Triton's copy of LLVM to itself, so TensorFlow and PyTorch's Triton can share a process.

    from funnel_tfm import llvm_isolation
    llvm_isolation.preload_triton()      # runs once when `funnel_tfm` is imported; safe to call again

Why: TensorFlow loads its core libraries (`libtensorflow_framework.so.2`, `libtensorflow_cc.so.2`) with
RTLD_GLOBAL, and they export the LLVM and MLIR that XLA is built on (about 18,000 symbols that Triton's
library also defines). Triton (`triton/_C/libtriton.so`, 460 MB, its own newer LLVM and MLIR) is a dependency
of the Linux torch wheels on the public index, and `torch._dynamo`, `torch.compile` and parts of transformers
import it. Loaded after TensorFlow, the dynamic linker binds Triton's references to TensorFlow's copies first
(the global scope comes before the library's own definitions), and Triton's static constructors
(`_GLOBAL__sub_I_PassBuilder.cpp` registering an `llvm::DebugCounter`) run on TensorFlow's differently laid out
LLVM objects: a segmentation fault at import, before any Python error can be raised. Loaded before TensorFlow,
Triton is a RTLD_LOCAL Python extension and both libraries keep to themselves.

The remedy: open `libtriton.so` ourselves with RTLD_DEEPBIND, which makes the library look up its own symbols
before the global scope, whatever was loaded before. When Python later imports `triton._C.libtriton`, the
loader finds the same file already open and reuses it (its constructors do not run again). This works in any
order of `import tensorflow` and `import funnel_tfm`, as long as Triton itself is not loaded before
`funnel_tfm` is imported after TensorFlow (that order crashes without funnel_tfm too). It costs one `dlopen`
(about 50 ms) and does nothing where Triton is not installed, already loaded, or the platform has no
RTLD_DEEPBIND (macOS, Windows: Triton has no wheels there).
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import pathlib
import sys

TRITON_EXTENSION = "triton._C.libtriton"


def triton_library() -> pathlib.Path | None:
    """The path of Triton's compiled core, or None where Triton is not installed: `triton_library()`."""
    try:
        spec = importlib.util.find_spec("triton")
    except (ImportError, ValueError):  # ValueError: a `triton` module in sys.modules without a spec
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = pathlib.Path(location) / "_C" / "libtriton.so"
        if candidate.is_file():
            return candidate
    return None


def preload_triton() -> str:
    """Open Triton's library with its own symbols first; returns what was done (for tests and reports).

    One of "preloaded", "already loaded" (imported before funnel_tfm: nothing left to protect), "not installed",
    "unsupported platform" or "failed: <reason>" (the import of Triton will then fail or crash as it would have).
    """
    deepbind = getattr(os, "RTLD_DEEPBIND", None)
    if deepbind is None:
        return "unsupported platform"
    if TRITON_EXTENSION in sys.modules:
        return "already loaded"
    library = triton_library()
    if library is None:
        return "not installed"
    try:
        # The handle is deliberately kept open for the life of the process: the extension import reuses it.
        ctypes.CDLL(str(library), mode=os.RTLD_NOW | os.RTLD_LOCAL | deepbind)
    except OSError as error:
        return f"failed: {error}"
    return "preloaded"
