#!/usr/bin/env bash
# Set up this repository on one Cloud TPU VM host: a fresh .venv with tensorflow-tpu 2.20, tensorflow-text 2.20
# and funnel_tfm. Run it on every host of a slice (`SETUP=1 ./scripts/tpu_pod_electra.sh` does that), or by hand:
#   ./scripts/tpu_vm_setup.sh
#
# Why TensorFlow 2.20 here: tensorflow-tpu 2.20.0 is the last TensorFlow release with TPU wheels (there is no
# tensorflow-tpu 2.21). funnel_tfm supports TensorFlow 2.20 and 2.21; CI runs the full suite on 2.21 and a smoke
# subset on 2.20 (.ci/run).
#
# Why the --no-deps installs: tensorflow-tpu is a complete TensorFlow (the same `tensorflow` module) plus the TPU
# runtime (libtpu). The plain `tensorflow` distribution must not be installed beside it (both write
# site-packages/tensorflow), but tensorflow-text and funnel_tfm both depend on `tensorflow`, so pip would pull
# it in. They are installed with --no-deps and their other dependencies are named explicitly. `pip check` then
# reports "tensorflow-text/funnel-tfm requires tensorflow, which is not installed": expected, tensorflow-tpu is it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
# Google's TPU VM instructions for TensorFlow:
#   pip install tensorflow-tpu -f https://storage.googleapis.com/libtpu-tf-releases/index.html --force
# (--force is for images that already carry a TensorFlow; this venv is fresh, so it is not needed).
TF_TPU_FIND_LINKS=${TF_TPU_FIND_LINKS:-https://storage.googleapis.com/libtpu-tf-releases/index.html}
# libtpu must be pinned: tensorflow-tpu 2.20.0 asks for libtpu~=0.0.14 (any 0.0.x >= 0.0.14), so pip takes the
# newest libtpu on PyPI, a JAX-era build without TensorFlow's TPU ops: `import tensorflow` then aborts with
# "ConfigureDistributedTpuOp_DoWork not available in this library" (seen with libtpu 0.0.52). 0.0.14, the
# version tensorflow-tpu 2.20.0 names, loads. Override with LIBTPU_SPEC=...
LIBTPU_SPEC=${LIBTPU_SPEC:-libtpu==0.0.14}

"$PYTHON" -m venv --clear .venv
. .venv/bin/activate
pip install -q --upgrade pip
pip install -q "tensorflow-tpu==2.20.*" "$LIBTPU_SPEC" -f "$TF_TPU_FIND_LINKS"
pip install -q --no-deps "tensorflow-text==2.20.*"
pip install -q "absl-py>=2.1" "sentencepiece>=0.2" "numpy>=1.26" "safetensors>=0.4"
pip install -q --no-deps -e .

python - <<'EOF'
import importlib.metadata as md

try:
    md.version("tensorflow")
except md.PackageNotFoundError:
    pass
else:
    raise SystemExit("the plain `tensorflow` distribution is installed beside tensorflow-tpu: rerun this script")
import keras
import tensorflow as tf
import tensorflow_text

import funnel_tfm  # noqa: F401

assert tf.__version__.startswith("2.20."), tf.__version__
print(f"tensorflow-tpu {md.version('tensorflow-tpu')}, libtpu {md.version('libtpu')}, "
      f"tensorflow-text {tensorflow_text.__version__}, keras {keras.__version__}")
EOF
