#!/usr/bin/env bash
# Wheels that bench/gpu_speed.py needs on the lent GPU machine, downloaded here into .gpu_wheels/ (git-ignored).
#
#     bash bench/gpu_wheels.sh            # keras, namex, optree: ~3 MB
#
# That machine has JAX, PyTorch and transformers but no keras and no internet (the device tool's KINDS.md lists
# its image: absl-py, h5py, ml-dtypes, numpy, packaging, rich and typing-extensions, keras' other needs, are
# there). Its python3 is CPython 3.12 on x86-64, hence the cp312 manylinux platform tags for optree, the one
# compiled wheel. The versions are this checkout's (.venv), so the GPU runs the keras the tests ran. Then, in
# the device call (carry: [".gpu_wheels"]):
#
#     python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
#         .gpu_wheels/*.whl && export PYTHONPATH=/tmp/site:. KERAS_BACKEND=jax && python3 bench/gpu_speed.py
#
# --target keeps the image's own packages untouched; --no-deps because the rest is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
version() { "$PYTHON" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1"; }

rm -rf .gpu_wheels && mkdir -p .gpu_wheels
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .gpu_wheels \
    "keras==$(version keras)" "namex==$(version namex)" "optree==$(version optree)" ${GPU_WHEELS_EXTRA:-}
ls -l .gpu_wheels
# The working tree that travels is limited to 64 MiB: these must stay a small part of it.
size_kib=$(du -sk .gpu_wheels | cut -f1)
echo ".gpu_wheels: ${size_kib} KiB"
if [ "$size_kib" -gt 16384 ]; then echo "more than 16 MiB of wheels: carry fewer" >&2; exit 1; fi
