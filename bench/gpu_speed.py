r"""Finetuning-step speed on a GPU: our FunnelTFM on Keras' JAX backend against transformers' PyTorch models.

Runs where TensorFlow is absent (the lent GPU machines have JAX and PyTorch with CUDA only): it imports only the
model layer of funnel_tfm (keras.ops, no TensorFlow), never `funnel_tfm.tasks` or `training`.

    KERAS_BACKEND=jax PYTHONPATH=. python bench/gpu_speed.py                       # everything (issue 14 point 1)
    PYTHONPATH=. python bench/gpu_speed.py --parts=ours,torch --shapes=64x128      # one shape, no memory search
    PYTHONPATH=. python bench/gpu_speed.py --models=B4-4-4H768 --hf_funnel=B4-4-4H768 --parts=ours,torch
    PYTHONPATH=. python bench/gpu_speed.py --tiny                                  # CPU proof, tiny sizes (test)

The step, per row (2 classes; the same for every implementation): forward, softmax cross-entropy, backward,
global-norm clipping at 1.0, AdamW (lr 2e-5, weight decay 0.01 on every weight, eps 1e-6); dropout on;
bf16 mixed precision (float32 weights and optimizer state, bf16 matmuls):

- ours: `FunnelTFM(use_decoder=False)` + `ClassificationHead` on the pooled summary (the classifier's model,
  built here from the TensorFlow-free layers), dtype policy `mixed_bfloat16`. The whole step is ONE pure
  function compiled by XLA: `jax.jit` of `model.stateless_call` + `jax.value_and_grad` +
  `keras.optimizers.AdamW.stateless_apply`, state donated, so parameters, Adam slots and seed-generator states
  are updated in place on the device; the variables' own arrays become the step's state, so the peak counts
  one copy of the weights, as a training run has.
- transformers (PyTorch, eager): `FunnelForSequenceClassification` from our config (`ModelConfig.to_hf_dict`)
  and `BertForSequenceClassification` with the widths of our one-block configs (L12H768 = BERT-base,
  L24H1024 = BERT-large), `torch.autocast(bfloat16)`, `clip_grad_norm_`, `torch.optim.AdamW(fused=True)` on
  CUDA. transformers picks its own attention kernel (sdpa for BERT; Funnel has only its eager attention).

Columns: tokens/s = batch x length / median step time (median of --repeats runs of --steps steps after
--warmup untimed steps); time / BERT = step time over transformers' BERT step of
--reference's widths at the same shape; time / ours-ref and FLOPs / ref against our own --reference row
(`funnel_tfm.analysis.flops.forward_flops`, encoder only; for transformers' BERT rows, the same count without
the relative-position term; for FNet, the embedding projection, FFNs and pooler, FFT mixing left out); peak =
`device.memory_stats()["peak_bytes_in_use"]` (JAX; every JAX row runs in a fresh process, so the peak is that
row's) or `torch.cuda.max_memory_allocated` after a reset (torch), "-" on a CPU; XLA plan = the compiled
step's buffer assignment (arguments + outputs + temporaries - donated aliases), known before it runs;
start-up = XLA's compilation of the step (ours) or the warm-up steps (torch).

Largest batch under a memory cap (--search, --memory_cap_gib, default 16 GiB), ours only: each (model, length)
runs in its own process whose XLA allocator pool is capped at the cap (XLA_PYTHON_CLIENT_MEM_FRACTION =
cap / the device's total memory from nvidia-smi, preallocated, so the BFC allocator owns exactly that pool and
an allocation past it fails with RESOURCE_EXHAUSTED). A batch fits if its XLA plan is <= the cap AND two steps
run in the capped pool, so fragmentation and runtime workspaces count. The CUDA context and the cuBLAS/cuDNN
handles live outside the pool: a real 16 GiB card holds them inside its 16 GiB, so this cap is more lenient
than such a card by their few hundred MiB. The pool that XLA reports (`bytes_limit`) is printed next to the
result. The search fits the plan bytes of two small batches to a line, tries the predicted largest batch
rounded to the granularity (--search_granularity; by default 4 at length 128, 1 at 512) and walks up or down
from there one granularity step at a time, so it compiles ~4 times per (model, length). Where no pool can be
capped (a CPU, or no nvidia-smi) the plan alone decides, and the table says so.

On the GPU machine (no TensorFlow, no internet; keras, namex and optree are missing there, the rest of keras'
needs are in its image), after `bash bench/gpu_wheels.sh` here, carry `.gpu_wheels` and run:

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
        .gpu_wheels/*.whl && export PYTHONPATH=/tmp/site:. KERAS_BACKEND=jax PYTHONUNBUFFERED=1 && \
        python3 bench/gpu_speed.py --json_out=$OUT/gpu_speed.json 2>&1 | tee $OUT/gpu_speed.log

funnel_tfm is not installed there: PYTHONPATH=. is enough (the model layer needs numpy and keras only; no
sentencepiece, tensorflow_text or safetensors). Device time is short (10 minutes a command, each JAX row a
fresh process that compiles its step): split a run with --parts / --shapes / --models; --jax_cache_dir=.jax_cache
(git-ignored, so it stays on a machine that is still warm for the next call) keeps XLA's compiled programs.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

# Run from a checkout without installing funnel_tfm (the GPU machine): the repository root goes first on the path.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from absl import app, flags  # noqa: E402

from funnel_tfm.analysis.flops import forward_flops  # noqa: E402
from funnel_tfm.analysis.timing import machine_description, random_inputs  # noqa: E402
from funnel_tfm.config import ModelConfig, named_config  # noqa: E402
from funnel_tfm.config_fnet import FNetConfig, named_fnet_config  # noqa: E402

FUNNELS = ["B4-4-4H768", "B6-6-6H768", "B8-8-8H1024", "B10-10-10H1024"]
FLAGS = flags.FLAGS
flags.DEFINE_list("parts", ["ours", "torch", "search"], "What to run: ours (JAX rows), torch (transformers rows), "
                  "search (largest batch under the memory cap).")
flags.DEFINE_list("models", FUNNELS + ["L12H768", "L24H1024", "FNet-Base"], "Our models (Keras on JAX).")
flags.DEFINE_list("hf_funnel", FUNNELS, "Configs for transformers' FunnelForSequenceClassification.")
flags.DEFINE_list("hf_bert", ["L12H768", "L24H1024"], "One-block configs whose widths make transformers' BERT rows.")
flags.DEFINE_string("reference", "L12H768", "The one-block config that the ratios divide by (BERT-base widths).")
flags.DEFINE_list("shapes", ["64x128", "16x512"], "Batch x length of the timed rows.")
flags.DEFINE_integer("steps", 10, "Steps per timed run.")
flags.DEFINE_integer("repeats", 3, "Timed runs; the median is reported.")
flags.DEFINE_integer("warmup", 2, "Untimed steps first (the first one compiles).")
flags.DEFINE_list("search", ["B8-8-8H1024", "B10-10-10H1024"], "Models for the largest-batch search.")
flags.DEFINE_list("search_seq_lens", ["128", "512"], "Lengths for the largest-batch search.")
flags.DEFINE_float("memory_cap_gib", 16.0, "Memory cap of the largest-batch search, GiB.")
flags.DEFINE_integer("search_max_batch", 1024, "The search stops here.")
flags.DEFINE_integer("search_granularity", 0, "The search's batch step; 0: 512 // length (4 at 128, 1 at 512).")
flags.DEFINE_boolean("tiny", False, "Tiny configs and shapes for flags left unset (the CPU proof and the test).")
flags.DEFINE_string("json_out", "", "Also write every result as json here.")
flags.DEFINE_string("jax_cache_dir", "", "XLA's persistent compilation cache (reuse compiled steps across runs).")
flags.DEFINE_integer("worker_timeout", 1800, "Seconds before a worker process is given up.")
flags.DEFINE_string("worker", "", "Internal: run one worker (jax_row, jax_search, torch) with --worker_spec.")
flags.DEFINE_string("worker_spec", "", "Internal: the worker's json spec.")

N_CLASS = 2
HPARAMS = dict(learning_rate=2e-5, weight_decay=0.01, epsilon=1e-6, clip_norm=1.0)
RESULT_PREFIX = "GPU_SPEED_RESULT "
# Tiny sizes (d_model 16, one or two layers: XLA's compile time on a CPU grows with the layers) for the CPU proof;
# the same code path as the named configs.
TINY_CONFIGS: dict[str, ModelConfig | FNetConfig] = {
    "tiny-B1-1H16": ModelConfig(block_size="1_1", vocab_size=1000, d_embed=16, d_model=16, n_head=2, d_head=8,
                                d_inner=64),
    "tiny-L2H16": ModelConfig(block_size="2", vocab_size=1000, d_embed=16, d_model=16, n_head=2, d_head=8,
                              d_inner=64, decoder_size="0"),
    "tiny-FNet": FNetConfig(vocab_size=1000, d_embed=16, d_model=16, d_inner=64, n_layer=2, max_seq_length=128),
}
TINY_FLAGS = dict(models=["tiny-B1-1H16", "tiny-L2H16", "tiny-FNet"], hf_funnel=["tiny-B1-1H16"],
                  hf_bert=["tiny-L2H16"], reference="tiny-L2H16", shapes=["4x64", "2x128"], search=["tiny-B1-1H16"],
                  search_seq_lens=["64"], memory_cap_gib=0.01, steps=2, repeats=2, warmup=1, search_max_batch=256)


# ------------------------------------------------------------------------------------------ configs, FLOPs
def model_config(name: str) -> ModelConfig | FNetConfig:
    """A tiny, FNet or Funnel config by name: model_config("FNet-Base"), model_config("B4-4-4H768")."""
    if name in TINY_CONFIGS:
        return TINY_CONFIGS[name]
    if name.startswith("FNet"):
        return named_fnet_config(name)
    return named_config(name)


def parse_shape(shape: str) -> tuple[int, int]:
    """parse_shape("64x128") -> (64, 128): batch, length."""
    batch, _, length = shape.partition("x")
    return int(batch), int(length)


def bert_forward_flops(config: ModelConfig, seq_len: int) -> int:
    """BERT with our one-block config's widths: q/k/v/o, scores and weighted values, FFN (no position term)."""
    d, nh, f = config.d_model, config.n_head * config.d_head, config.d_inner
    per_layer = 8 * seq_len * d * nh + 4 * seq_len * seq_len * nh + 4 * seq_len * d * f
    return config.block_depths[0] * per_layer


def fnet_forward_flops(config: FNetConfig, seq_len: int) -> int:
    """Matmul FLOPs of FNet: embedding projection, FFNs and pooler; the FFT mixing is left out."""
    projection = 2 * seq_len * config.d_embed * config.d_model
    return projection + config.n_layer * 4 * seq_len * config.d_model * config.d_inner + 2 * config.d_model ** 2


def row_flops(impl: str, name: str, seq_len: int) -> int:
    """Forward FLOPs of one sequence for a row: row_flops("ours", "B4-4-4H768", 128)."""
    config = model_config(name)
    if isinstance(config, FNetConfig):
        return fnet_forward_flops(config, seq_len)
    return bert_forward_flops(config, seq_len) if impl == "hf_bert" else forward_flops(config, seq_len)


# ------------------------------------------------------------------------------------- the largest batch
@dataclasses.dataclass
class BatchTry:
    """One try of the search: did `batch` fit, its XLA plan bytes, and why not."""

    batch: int
    fits: bool
    plan_bytes: int | None = None
    why: str = ""


def largest_batch(try_batch: Callable[[int], BatchTry], cap_bytes: float, granularity: int,
                  max_batch: int) -> tuple[int, list[BatchTry]]:
    """The largest multiple of `granularity` <= max_batch for which `try_batch` fits, and every try made.

        best, tries = largest_batch(lambda b: BatchTry(b, b * 3 <= 100, b * 3), 100, 4, 1024)   # best = 32

    Memory grows about linearly with the batch, so two small tries give a line whose crossing with the cap
    predicts the answer; each try compiles a step (slow on a big model), so the walk from there is short.
    """
    tries: dict[int, BatchTry] = {}

    def fits(batch: int) -> bool:
        if batch not in tries:
            tries[batch] = try_batch(batch)
        return tries[batch].fits

    low, high = 2 * granularity, 4 * granularity
    if high > max_batch:  # no room for the two probes: walk down from the largest allowed multiple
        return _walk_down(fits, (max_batch // granularity + 1) * granularity, granularity), list(tries.values())
    if not fits(low):
        return _walk_down(fits, low, granularity), list(tries.values())
    if not fits(high):
        return low, list(tries.values())
    guess = _predict(tries[low], tries[high], cap_bytes, granularity, high, max_batch)
    if fits(guess):
        while guess + granularity <= max_batch and fits(guess + granularity):
            guess += granularity
        return guess, list(tries.values())
    return _walk_down(fits, guess, granularity, floor=high), list(tries.values())


def _predict(small: BatchTry, large: BatchTry, cap_bytes: float, granularity: int, floor: int, ceiling: int) -> int:
    """Where the line through two tries' plan bytes reaches the cap, rounded down to the granularity."""
    if small.plan_bytes is None or large.plan_bytes is None or large.plan_bytes <= small.plan_bytes:
        return floor
    per_example = (large.plan_bytes - small.plan_bytes) / (large.batch - small.batch)
    batch = large.batch + (cap_bytes - large.plan_bytes) / per_example
    return max(floor, min(ceiling, int(batch // granularity) * granularity))


def _walk_down(fits: Callable[[int], bool], start: int, granularity: int, floor: int = 0) -> int:
    """The first batch below `start` (step `granularity`) that fits, or `floor` where none above it does."""
    batch = start - granularity
    while batch > floor:
        if fits(batch):
            return batch
        batch -= granularity
    return floor if floor > 0 else (1 if granularity > 1 and fits(1) else 0)


# ------------------------------------------------------------------------------------------ JAX workers
def _import_keras_on_jax():
    """keras on the JAX backend (the backend is read once, at keras' import), with the JAX cache if asked."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import jax
    import keras
    if keras.backend.backend() != "jax":
        raise RuntimeError(f"keras was imported with the {keras.backend.backend()!r} backend; set KERAS_BACKEND=jax")
    if FLAGS.jax_cache_dir:
        jax.config.update("jax_compilation_cache_dir", FLAGS.jax_cache_dir)
        # Every program, the initializers' small ones too: a second process building the same model skips them.
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return jax, keras


def build_classifier(config: ModelConfig | FNetConfig, dtype: str = "mixed_bfloat16") -> Any:
    """Backbone (FunnelTFM without decoder, or FNet) + ClassificationHead on the pooled summary; float32 logits.

        model = build_classifier(named_config("B4-4-4H768"))
        logits = model({"token_ids": ids, "segment_ids": seg, "padding_mask": mask})   # [B, 2]
    """
    import keras

    from funnel_tfm.layers.heads import ClassificationHead
    from funnel_tfm.modeling import FunnelTFM
    from funnel_tfm.modeling_fnet import FNet

    if isinstance(config, FNetConfig):
        backbone = FNet(config, name="model", dtype=dtype)
        initializer = keras.initializers.RandomNormal(stddev=config.init_std)
    else:
        from funnel_tfm.layers.core import config_initializer
        backbone = FunnelTFM(config, use_decoder=False, name="model", dtype=dtype)
        initializer = config_initializer(config)
    head = ClassificationHead(config.d_model, N_CLASS, config.dropout, initializer, dtype=dtype)
    return classifier_class()(backbone, head, dtype=dtype)


@functools.cache
def classifier_class() -> type:
    """The classifier's model class, made on first use: keras is imported only after the backend is set."""
    import keras

    class Classifier(keras.Model):
        """The backbone's pooled summary through the head (the classifier's model, without TensorFlow)."""

        def __init__(self, backbone, head, **kwargs) -> None:
            super().__init__(**kwargs)
            self.backbone, self.head = backbone, head
            self.built = True

        def call(self, inputs, training: bool = False):
            return self.head(self.backbone(inputs, training=training)["pooled_output"], training=training)

    return Classifier


def build_jax_step(model: Any, optimizer: Any) -> Callable:
    """The jitted finetuning step: (state, batch, labels) -> (loss, new state), state donated.

        step = build_jax_step(model, optimizer)
        loss, state = step((trainable, non_trainable, optimizer_vars), batch, labels)
    """
    import jax
    from keras import ops

    def loss_of(trainable, non_trainable, batch, labels):
        logits, non_trainable = model.stateless_call(trainable, non_trainable, batch, training=True)
        log_probs = jax.nn.log_softmax(logits.astype("float32"), axis=-1)
        loss = -ops.mean(ops.take_along_axis(log_probs, labels[:, None], axis=1))
        return loss, non_trainable

    gradient = jax.value_and_grad(loss_of, has_aux=True)

    def step(state, batch, labels):
        trainable, non_trainable, optimizer_vars = state
        (loss, non_trainable), grads = gradient(trainable, non_trainable, batch, labels)
        trainable, optimizer_vars = optimizer.stateless_apply(optimizer_vars, grads, trainable)
        return loss, (trainable, non_trainable, optimizer_vars)

    return jax.jit(step, donate_argnums=0)


class JaxBench:
    """Our model, its optimizer and jitted step; the step's state is the only copy of the weights on the device.

        bench = JaxBench("B4-4-4H768")
        compiled, plan = bench.compile(64, 128)
        times, loss = bench.run(compiled, 64, 128, steps=10, repeats=3, warmup=2)

    The step donates its state, so the variables' own arrays become the state of the first run (the model is
    only called statelessly after that). `reusable=True` (the memory search) keeps a host copy instead and
    puts a fresh one on the device for every run.
    """

    def __init__(self, name: str, reusable: bool = False) -> None:
        jax, keras = _import_keras_on_jax()
        self.jax, self.keras, self.config = jax, keras, model_config(name)
        self.device = jax.devices()[0]
        # No keras.utils.set_random_seed: it imports TensorFlow where installed; timings need no fixed seed.
        self.model = build_classifier(self.config)
        self.optimizer = keras.optimizers.AdamW(HPARAMS["learning_rate"], weight_decay=HPARAMS["weight_decay"],
                                                epsilon=HPARAMS["epsilon"], global_clipnorm=HPARAMS["clip_norm"])
        self.optimizer.build(self.model.trainable_variables)
        variables = (self.model.trainable_variables, self.model.non_trainable_variables, self.optimizer.variables)
        self.abstract_state = jax.tree.map(lambda v: jax.ShapeDtypeStruct(v.shape, jax.numpy.dtype(v.dtype)),
                                           variables, is_leaf=lambda v: isinstance(v, keras.Variable))
        self.state = jax.tree.map(lambda v: v.value, variables, is_leaf=lambda v: isinstance(v, keras.Variable))
        self.host_state = None
        if reusable:
            self.host_state = jax.device_get(self.state)
            for array in jax.tree.leaves(self.state):
                array.delete()  # free the device copy now: only the runs' states may count
            self.state = None
        self.step = build_jax_step(self.model, self.optimizer)

    def fresh_state(self) -> Any:
        """The state for one run: the variables' arrays (once), or a copy of the host state."""
        if self.host_state is not None:
            return self.jax.device_put(self.host_state, self.device)
        if self.state is None:
            raise RuntimeError("the state was donated to a run already; build JaxBench(..., reusable=True)")
        state, self.state = self.state, None
        return state

    def batch(self, batch_size: int, seq_len: int) -> tuple[dict[str, Any], Any]:
        """(inputs, labels) on the device."""
        inputs = random_inputs(self.config, batch_size, seq_len)
        labels = (inputs["token_ids"][:, 1] % N_CLASS).astype("int32")
        return self.jax.device_put((inputs, labels), self.device)

    def compile(self, batch_size: int, seq_len: int) -> tuple[Any, int | None]:
        """(the compiled step for this shape, XLA's planned bytes or None), from shapes alone."""
        shape = self.jax.ShapeDtypeStruct
        inputs = {key: shape((batch_size, seq_len), "int32") for key in ("token_ids", "segment_ids", "padding_mask")}
        compiled = self.step.lower(self.abstract_state, inputs, shape((batch_size,), "int32")).compile()
        return compiled, plan_bytes(compiled)

    def run(self, compiled: Any, batch_size: int, seq_len: int, steps: int, repeats: int,
            warmup: int) -> tuple[list[float], float]:
        """(seconds of each timed run of `steps` steps, the last loss)."""
        state, (inputs, labels) = self.fresh_state(), self.batch(batch_size, seq_len)
        for _ in range(warmup):
            loss, state = compiled(state, inputs, labels)
        self.jax.block_until_ready(state)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(steps):
                loss, state = compiled(state, inputs, labels)
            self.jax.block_until_ready((loss, state))
            times.append(time.perf_counter() - start)
        return times, float(loss)


def plan_bytes(compiled: Any) -> int | None:
    """Arguments + outputs + temporaries - donated aliases of XLA's buffer assignment (None if not reported)."""
    stats = compiled.memory_analysis()
    if stats is None:
        return None
    return int(stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes
               - stats.alias_size_in_bytes)


def jax_device_info(jax: Any, keras: Any) -> dict[str, Any]:
    device = jax.devices()[0]
    stats = device.memory_stats() or {}
    return {"framework": f"Keras {keras.__version__} on JAX {jax.__version__}", "platform": device.platform,
            "device": getattr(device, "device_kind", str(device)), "pool_bytes": stats.get("bytes_limit")}


def jax_row_worker(spec: dict[str, Any]) -> None:
    """One of our rows in this process: compile, warm up, time; the process peak is this row's peak."""
    bench = JaxBench(spec["model"])
    batch_size, seq_len = spec["batch"], spec["seq_len"]
    start = time.perf_counter()
    compiled, plan = bench.compile(batch_size, seq_len)
    compile_seconds = time.perf_counter() - start
    times, loss = bench.run(compiled, batch_size, seq_len, spec["steps"], spec["repeats"], spec["warmup"])
    stats = bench.device.memory_stats() or {}
    emit({"kind": "row", "impl": "ours", "model": spec["model"], "batch": batch_size, "seq_len": seq_len,
          "step_seconds": statistics.median(times) / spec["steps"], "compile_seconds": compile_seconds,
          "loss": loss, "peak_bytes": stats.get("peak_bytes_in_use"), "plan_bytes": plan,
          **jax_device_info(bench.jax, bench.keras)})


def _is_out_of_memory(error: Exception) -> bool:
    text = str(error)
    return "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower()


def jax_search_worker(spec: dict[str, Any]) -> None:
    """The largest batch of one (model, length) under the cap, in this process's capped pool."""
    bench, seq_len, cap = JaxBench(spec["model"], reusable=True), spec["seq_len"], spec["cap_bytes"]

    def try_batch(batch_size: int) -> BatchTry:
        plan = None
        try:
            compiled, plan = bench.compile(batch_size, seq_len)
            if plan is not None and plan > cap:
                return BatchTry(batch_size, False, plan, "XLA plan over the cap")
            _, loss = bench.run(compiled, batch_size, seq_len, steps=1, repeats=1, warmup=1)
        except Exception as error:  # noqa: BLE001 (only out-of-memory is an answer; anything else re-raises)
            if not _is_out_of_memory(error):
                raise
            return BatchTry(batch_size, False, plan, "out of memory in the capped pool")
        fits = math.isfinite(loss) and (plan is not None or spec["pool_capped"])
        return BatchTry(batch_size, fits, plan, "" if fits else "no plan and no capped pool")

    best, tries = largest_batch(try_batch, cap, spec["granularity"], spec["max_batch"])
    emit({"kind": "search", "model": spec["model"], "seq_len": seq_len, "best": best,
          "tries": [dataclasses.asdict(t) for t in tries], "cap_bytes": cap, "pool_capped": spec["pool_capped"],
          **jax_device_info(bench.jax, bench.keras)})


# ---------------------------------------------------------------------------------------- torch worker
def hf_model(impl: str, name: str) -> Any:
    """transformers' classifier for one of our configs: hf_model("hf_funnel", "B4-4-4H768")."""
    import transformers

    config = model_config(name)
    if impl == "hf_funnel":
        values = {k: v for k, v in config.to_hf_dict().items() if k != "model_type"}
        return transformers.FunnelForSequenceClassification(transformers.FunnelConfig(**values, num_labels=N_CLASS))
    if config.n_block != 1 or config.n_head * config.d_head != config.d_model:
        raise ValueError(f"{name}: BERT rows need a one-block config with n_head * d_head == d_model")
    bert = transformers.BertConfig(vocab_size=config.vocab_size, hidden_size=config.d_model,
                                   num_hidden_layers=config.block_depths[0], num_attention_heads=config.n_head,
                                   intermediate_size=config.d_inner, hidden_dropout_prob=config.dropout,
                                   attention_probs_dropout_prob=config.dropatt, max_position_embeddings=512,
                                   num_labels=N_CLASS)
    return transformers.BertForSequenceClassification(bert)


def torch_arguments(impl: str, name: str, batch_size: int, seq_len: int, device: Any) -> dict[str, Any]:
    """The same random batch as ours; BERT's [CLS] is segment 0 (Funnel's own convention gives it 2)."""
    import torch

    batch = random_inputs(model_config(name), batch_size, seq_len)
    segments = batch["segment_ids"] if impl == "hf_funnel" else batch["segment_ids"] % 2
    return {"input_ids": torch.tensor(batch["token_ids"], dtype=torch.long, device=device),
            "token_type_ids": torch.tensor(segments, dtype=torch.long, device=device),
            "attention_mask": torch.tensor(batch["padding_mask"], dtype=torch.long, device=device),
            "labels": torch.tensor(batch["token_ids"][:, 1] % N_CLASS, dtype=torch.long, device=device)}


def torch_row(impl: str, name: str, batch_size: int, seq_len: int, spec: dict[str, Any]) -> dict[str, Any]:
    """One transformers row: build on the device, warm up, time; peak since a reset of the statistics."""
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(0)
    with device:  # parameters made and initialised on the device (a large model's CPU init is slow)
        model = hf_model(impl, name).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=HPARAMS["learning_rate"], eps=HPARAMS["epsilon"],
                                  weight_decay=HPARAMS["weight_decay"], fused=device.type == "cuda")
    args = torch_arguments(impl, name, batch_size, seq_len, device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = model(**args).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), HPARAMS["clip_norm"])
        optimizer.step()
        return loss

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    start = time.perf_counter()
    for _ in range(max(1, spec["warmup"])):
        loss = step()
    sync()
    first_seconds = time.perf_counter() - start
    times = []
    for _ in range(spec["repeats"]):
        start = time.perf_counter()
        for _ in range(spec["steps"]):
            loss = step()
        sync()
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
    return {"kind": "row", "impl": impl, "model": name, "batch": batch_size, "seq_len": seq_len,
            "step_seconds": statistics.median(times) / spec["steps"], "compile_seconds": first_seconds,
            "loss": float(loss.detach()), "peak_bytes": peak, "plan_bytes": None, "platform": device.type,
            "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
            "framework": f"transformers {__import__('transformers').__version__} on PyTorch {torch.__version__}"}


def torch_worker(spec: dict[str, Any]) -> None:
    """Every transformers row in one process (torch resets its peak statistics per row)."""
    for impl, name, batch_size, seq_len in spec["rows"]:
        try:
            emit(torch_row(impl, name, batch_size, seq_len, spec))
        except Exception as error:  # noqa: BLE001 (one failing row, e.g. out of memory, must not hide the rest)
            emit({"kind": "row", "impl": impl, "model": name, "batch": batch_size, "seq_len": seq_len,
                  "error": f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"})
        finally:
            import gc
            gc.collect()


# ------------------------------------------------------------------------------------- the parent process
def emit(result: dict[str, Any]) -> None:
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def run_worker(worker: str, spec: dict[str, Any], env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Runs this script as a worker process; its result lines, or one error result if it failed."""
    command = [sys.executable, os.path.abspath(__file__), f"--worker={worker}", f"--worker_spec={json.dumps(spec)}"]
    if FLAGS.jax_cache_dir:
        command.append(f"--jax_cache_dir={FLAGS.jax_cache_dir}")
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    try:
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, env=env, timeout=FLAGS.worker_timeout)
    except subprocess.TimeoutExpired:
        return [{"kind": "error", "error": f"{worker} timed out after {FLAGS.worker_timeout} s", **spec}]
    results = [json.loads(line[len(RESULT_PREFIX):]) for line in done.stdout.splitlines()
               if line.startswith(RESULT_PREFIX)]
    if done.returncode != 0 and not results:
        results = [{"kind": "error", "error": f"{worker} exited with {done.returncode} (its stderr is above)",
                    **spec}]
    return results


def device_total_bytes() -> int | None:
    """The first GPU's total memory from nvidia-smi (without initialising a framework here), or None."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    first = out.stdout.strip().splitlines()[:1]
    return int(float(first[0])) * 2 ** 20 if out.returncode == 0 and first else None


def timing_spec(**values: Any) -> dict[str, Any]:
    return {"steps": FLAGS.steps, "repeats": FLAGS.repeats, "warmup": FLAGS.warmup, **values}


def run_ours() -> list[dict[str, Any]]:
    """Each of our rows in a fresh JAX process."""
    results = []
    for shape in FLAGS.shapes:
        batch_size, seq_len = parse_shape(shape)
        for name in FLAGS.models:
            results += run_worker("jax_row", timing_spec(model=name, batch=batch_size, seq_len=seq_len))
    return results


def run_torch() -> list[dict[str, Any]]:
    rows = [(impl, name, *parse_shape(shape)) for shape in FLAGS.shapes
            for impl, names in (("hf_funnel", FLAGS.hf_funnel), ("hf_bert", FLAGS.hf_bert)) for name in names]
    return run_worker("torch", timing_spec(rows=rows)) if rows else []


def run_search() -> list[dict[str, Any]]:
    """One capped process per (model, length)."""
    cap = FLAGS.memory_cap_gib * 2 ** 30
    total = device_total_bytes()
    env = ({"XLA_PYTHON_CLIENT_MEM_FRACTION": f"{cap / total:.6f}", "XLA_PYTHON_CLIENT_PREALLOCATE": "true"}
           if total else {})
    results = []
    for seq_len in map(int, FLAGS.search_seq_lens):
        for name in FLAGS.search:
            spec = dict(model=name, seq_len=seq_len, cap_bytes=cap, pool_capped=bool(total),
                        granularity=FLAGS.search_granularity or max(1, 512 // seq_len),
                        max_batch=FLAGS.search_max_batch)
            results += run_worker("jax_search", spec, env)
    return results


def _gib(value: Any) -> str:
    """Bytes as GiB, three significant digits (tiny models on a CPU use a few MiB)."""
    return "-" if value is None else f"{value / 2 ** 30:.3g}"


def _ratio(value: float | None, reference: float | None) -> str:
    return "-" if value is None or not reference else f"{value / reference:.2f}"


def row_table(results: list[dict[str, Any]]) -> list[str]:
    """The timed rows, one markdown table per shape."""
    rows = [r for r in results if r.get("kind") in ("row", "error") and "batch" in r]
    lines = []
    for shape in FLAGS.shapes:
        batch_size, seq_len = parse_shape(shape)
        here = [r for r in rows if (r["batch"], r["seq_len"]) == (batch_size, seq_len)]
        times = {(r.get("impl"), r["model"]): r.get("step_seconds") for r in here}
        bert, ours_ref = times.get(("hf_bert", FLAGS.reference)), times.get(("ours", FLAGS.reference))
        ref_flops = row_flops("ours", FLAGS.reference, seq_len)
        lines += [f"\nbatch {batch_size} x length {seq_len}",
                  "| model | implementation | tokens/s | ms/step | time / BERT | time / ours-ref | FLOPs / ref "
                  "| peak GiB | XLA plan GiB | start-up s | loss |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in here:
            impl = r.get("impl", "ours")
            if "step_seconds" not in r:
                lines.append(f"| {r['model']} | {impl} | failed: {r.get('error', '?')} |")
                continue
            seconds = r["step_seconds"]
            lines.append(
                f"| {r['model']} | {impl} | {batch_size * seq_len / seconds:,.0f} | {seconds * 1e3:.2f} | "
                f"{_ratio(seconds, bert)} | {_ratio(seconds, ours_ref)} | "
                f"{_ratio(row_flops(impl, r['model'], seq_len), ref_flops)} | {_gib(r.get('peak_bytes'))} | "
                f"{_gib(r.get('plan_bytes'))} | {r['compile_seconds']:.1f} | {r['loss']:.4f} |")
    return lines


def search_table(results: list[dict[str, Any]]) -> list[str]:
    """The largest-batch results: best batch, its plan, the pool, and the first batch that did not fit."""
    found = [r for r in results if r.get("kind") == "search" or (r.get("kind") == "error" and "cap_bytes" in r)]
    if not found:
        return []
    lines = [f"\nlargest batch whose step trains under {FLAGS.memory_cap_gib:g} GiB (ours, JAX)",
             "| model | length | largest batch | XLA plan GiB at it | pool GiB | criterion | first batch over "
             "(why) | tries |", "|---|---|---|---|---|---|---|---|"]
    for r in found:
        if r.get("kind") == "error":
            lines.append(f"| {r['model']} | {r['seq_len']} | failed: {r['error']} |")
            continue
        tries = {t["batch"]: t for t in r["tries"]}
        best = tries.get(r["best"], {})
        over = min((t for t in r["tries"] if not t["fits"] and t["batch"] > r["best"]), default=None,
                   key=lambda t: t["batch"])
        criterion = "plan <= cap and ran in a capped pool" if r["pool_capped"] else "plan <= cap (no pool cap)"
        over_text = f"{over['batch']} ({over['why']})" if over else "-"
        lines.append(f"| {r['model']} | {r['seq_len']} | {r['best']} | {_gib(best.get('plan_bytes'))} | "
                     f"{_gib(r.get('pool_bytes'))} | {criterion} | {over_text} | {len(r['tries'])} |")
    return lines


def devices_line(results: list[dict[str, Any]]) -> str:
    seen = sorted({f"{r['framework']}: {r['device']} ({r['platform']})" for r in results if "framework" in r})
    return "devices: " + ("; ".join(seen) if seen else "-")


def apply_tiny_defaults() -> None:
    """--tiny: tiny configs and shapes for every flag the command line left unset."""
    for name, value in TINY_FLAGS.items():
        if not FLAGS[name].present:
            setattr(FLAGS, name, value)


def main(argv: list[str]) -> None:
    del argv
    if FLAGS.worker:
        {"jax_row": jax_row_worker, "jax_search": jax_search_worker, "torch": torch_worker}[FLAGS.worker](
            json.loads(FLAGS.worker_spec))
        return
    if FLAGS.tiny:
        apply_tiny_defaults()
    print(f"gpu_speed: finetuning step (forward, cross-entropy, backward, clip 1.0, AdamW), {N_CLASS} classes, "
          f"bf16 mixed precision, dropout on; median of {FLAGS.repeats} x {FLAGS.steps} steps after "
          f"{FLAGS.warmup} warm-up steps; reference {FLAGS.reference}\nhost: {machine_description()}", flush=True)
    runners = {"ours": run_ours, "torch": run_torch, "search": run_search}
    unknown = sorted(set(FLAGS.parts) - set(runners))
    if unknown:
        raise app.UsageError(f"--parts: unknown {', '.join(unknown)}; accepted: {', '.join(runners)}")
    results = [result for part in FLAGS.parts for result in runners[part]()]
    print("\n".join([devices_line(results), *row_table(results), *search_table(results)]), flush=True)
    if FLAGS.json_out:
        with open(FLAGS.json_out, "w") as handle:
            json.dump(results, handle, indent=1)


if __name__ == "__main__":
    app.run(main)
