"""The original's optimizer, made deterministic and replica-count independent (semantics P6–P9).

    schedule = WarmupDecay(peak=1e-4, warmup_steps=10_000, train_steps=1_000_000, decay="poly", min_lr_ratio=0.0)
    optimizer = AdamW(named_variables, schedule, clip_norm=1.0, lr_layer_decay_rate=0.8)
    # inside strategy.run, with the gradients of this replica's share of the global-batch loss:
    stats = optimizer.apply_gradients(grads)     # all-reduce, clip, skip if non-finite, update

Why our own and not `keras.optimizers.AdamW`: Keras clips each replica's gradient before the all-reduce,
applies weight decay as `lr·wd·θ` without the bias correction, has no per-variable learning rate and no
skipping of non-finite steps outside float16; the original needs all four (semantics P7–P9), and checkpoints
of the original carry `adam_m` / `adam_v` slots that map one to one onto ours.

Semantics (which differ from the original where the original was racy or depended on the core count):
* Step: `iterations` counts *applied* updates. Update number t+1 uses `lr(t)` and the bias-correction exponent
  t+1 (the original read a step counter that raced with its increment, semantics P9). A skipped step changes nothing
  but the `skipped` counter, so the schedule and the bias correction continue where they were.
* Gradients are summed over replicas of `d(loss share)/dθ`, where each replica's loss share is already divided
  by the *global* batch: the result is the gradient of the global-batch loss whatever the replica count.
  Clipping uses the global norm of that gradient (the original clipped each TPU core's gradient and summed
  them, semantics P7, which made the update depend on the number of cores).
* Layer-wise decay multiplies the *learning rate* of layer `id` by `rate^(n_layer - 1 - id)` (input = 0,
  `encoder|decoder/layer_k` = k + 1, everything else undecayed). The original multiplied the *gradient*;
  Adam divides that factor out again except inside ε, so its "decay" only rescaled ε (semantics P8). Here the step
  size itself shrinks, which is what layer-wise decay is meant to do.
* Non-finite gradients (NaN/Inf anywhere after the all-reduce) skip the step: variables, slots and
  `iterations` stay, `skipped` counts it. With float16 the dynamic loss scale is halved at the same time.
"""

from __future__ import annotations

import math
import re
from typing import Any

import keras
import tensorflow as tf

from funnel_tfm.checkpoints.assign import assign_by_name

ADAM_SLOTS = ("adam_m", "adam_v")
_LAYER_PATTERN = re.compile(r"^model/(encoder|decoder)/layer_(\d+)/")
# FNet (Flax names): layer k is `encoder_k` (its LayerNorms), `feed_forward_k` and, in hybrids, `self_attention_k`.
_FNET_LAYER_PATTERN = re.compile(r"^model/encoder/(encoder|feed_forward|self_attention)_(\d+)/")
_ALWAYS_DECAYED = re.compile(r"r_s_bias|r_r_bias|r_w_bias")
_EXCLUDED_FROM_DECAY = re.compile(r"LayerNorm|layer_norm|bias")
DECAY_METHODS = ("poly", "linear", "cos")


@keras.saving.register_keras_serializable(package="funnel_tfm")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from `min_lr_ratio·peak` to `peak`, then poly / linear / cos decay to `min_lr_ratio·peak`.

        WarmupDecay(1e-4, warmup_steps=100, train_steps=1000)(step)   # semantics P6; "linear" = "poly" with power 1
    """

    def __init__(self, peak: float, warmup_steps: int, train_steps: int, decay: str = "poly",
                 min_lr_ratio: float = 0.0, power: float = 1.0) -> None:
        if decay not in DECAY_METHODS:
            raise ValueError(f"decay method {decay!r}; expected one of {', '.join(DECAY_METHODS)}")
        if train_steps <= warmup_steps:
            raise ValueError(f"train_steps ({train_steps}) must be larger than warmup_steps ({warmup_steps})")
        self.peak, self.warmup_steps, self.train_steps = float(peak), int(warmup_steps), int(train_steps)
        self.decay, self.min_lr_ratio, self.power = decay, float(min_lr_ratio), float(power)

    def __call__(self, step) -> tf.Tensor:
        step = tf.cast(step, tf.float32)
        m, peak, warmup = self.min_lr_ratio, self.peak, float(self.warmup_steps)
        progress = step / warmup if warmup > 0 else tf.constant(1.0)
        warmup_lr = peak * (progress + (1.0 - progress) * m)
        fraction = tf.minimum(step - warmup, self.train_steps - warmup) / (self.train_steps - warmup)
        fraction = tf.maximum(fraction, 0.0)
        if self.decay == "cos":
            decayed = peak * ((1.0 - m) * 0.5 * (1.0 + tf.cos(math.pi * fraction)) + m)
        else:
            power = 1.0 if self.decay == "linear" else self.power
            decayed = (peak - peak * m) * (1.0 - fraction) ** power + peak * m
        return tf.where(step < warmup, warmup_lr, decayed)

    def get_config(self) -> dict[str, Any]:
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "train_steps": self.train_steps,
                "decay": self.decay, "min_lr_ratio": self.min_lr_ratio, "power": self.power}


def layer_id(name: str) -> int | None:
    """The original's layer id of a full variable name: `model/input/...` 0, `model/{en,de}coder/layer_k/` k+1;
    for FNet `model/encoder/embedder/...` 0 and `model/encoder/{encoder,feed_forward,self_attention}_k/` k+1."""
    if name.startswith(("model/input/", "model/encoder/embedder/")):
        return 0
    match = _LAYER_PATTERN.match(name) or _FNET_LAYER_PATTERN.match(name)
    return int(match.group(2)) + 1 if match else None


def layer_lr_multipliers(names: list[str], rate: float) -> dict[str, float]:
    """name -> learning-rate factor `rate^(n_layer - 1 - id)`; 1 for names without a layer id or rate 1.

    `n_layer` is one more than the largest id among `names` (the variables being trained, as in the original).
    """
    ids = {name: layer_id(name) for name in names}
    present = [i for i in ids.values() if i is not None]
    if rate == 1.0 or not present:
        return {name: 1.0 for name in names}
    n_layer = max(present) + 1
    return {name: 1.0 if i is None else rate ** (n_layer - 1 - i) for name, i in ids.items()}


def weight_decay_applies(name: str, use_exclusion: bool) -> bool:
    """The original's selection: relative biases always decay; with exclusion, no LayerNorm or bias."""
    if _ALWAYS_DECAYED.search(name):
        return True
    return not (use_exclusion and _EXCLUDED_FROM_DECAY.search(name))


class DynamicLossScale(tf.Module):
    """Loss scaling for float16: halve on a non-finite step, double after `growth_interval` finite steps."""

    def __init__(self, initial_scale: float = 2.0 ** 15, growth_interval: int = 2000) -> None:
        super().__init__(name="loss_scale")
        self.growth_interval = growth_interval
        self.scale = tf.Variable(initial_scale, dtype=tf.float32, trainable=False, name="scale",
                                 aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.good_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="good_steps",
                                      aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

    def update(self, finite: tf.Tensor) -> None:
        """Called once per step in cross-replica context with the (replica-identical) finiteness flag."""
        grow = finite & (self.good_steps + 1 >= self.growth_interval)
        self.scale.assign(tf.where(finite, tf.where(grow, self.scale * 2.0, self.scale),
                                   tf.maximum(self.scale / 2.0, 1.0)))
        self.good_steps.assign(tf.where(finite & ~grow, self.good_steps + 1, tf.zeros_like(self.good_steps)))


class AdamW(tf.Module):
    """AdamWeightDecayOptimizer of the original (semantics P9) with the semantics of the module docstring.

    `variables` maps full original names (`model/...`, `generator/...`) to Keras or tf variables; create the
    optimizer under the same `strategy.scope()` as the model so that the slots are distributed alike.
    """

    def __init__(self, variables: dict[str, Any], learning_rate: WarmupDecay | float, weight_decay: float = 0.0,
                 beta1: float = 0.9, beta2: float = 0.99, epsilon: float = 1e-6, adam_correction: bool = True,
                 clip_norm: float = 1.0, lr_layer_decay_rate: float = 1.0, use_wd_exclusion: bool = False,
                 loss_scale: DynamicLossScale | None = None) -> None:
        super().__init__(name="adamw")
        self.names = list(variables)
        # The tf.Variable under a Keras variable (the one a distribution strategy mirrors).
        self.variables_ = [v.value if isinstance(v, keras.Variable) else v for v in variables.values()]
        self.learning_rate = learning_rate
        self.weight_decay, self.beta1, self.beta2, self.epsilon = weight_decay, beta1, beta2, epsilon
        self.adam_correction, self.clip_norm, self.loss_scale = adam_correction, clip_norm, loss_scale
        self.lr_multipliers = layer_lr_multipliers(self.names, lr_layer_decay_rate)
        self.decayed = {n: weight_decay > 0 and weight_decay_applies(n, use_wd_exclusion) for n in self.names}
        strategy = tf.distribute.get_strategy()
        self.m, self.v = [], []
        for name, variable in zip(self.names, self.variables_):
            with strategy.extended.colocate_vars_with(variable):
                self.m.append(tf.Variable(tf.zeros(variable.shape, tf.float32), trainable=False,
                                          name=f"{_safe(name)}/adam_m"))
                self.v.append(tf.Variable(tf.zeros(variable.shape, tf.float32), trainable=False,
                                          name=f"{_safe(name)}/adam_v"))
        counter = dict(dtype=tf.int64, trainable=False, aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.iterations = tf.Variable(0, name="iterations", **counter)
        self.skipped = tf.Variable(0, name="skipped_steps", **counter)
        self._new_values = tf.function(self._adam_math, jit_compile=True)

    def current_learning_rate(self) -> tf.Tensor:
        """The learning rate of the next update (before layer-wise factors)."""
        if callable(self.learning_rate):
            return tf.cast(self.learning_rate(self.iterations), tf.float32)
        return tf.constant(self.learning_rate, tf.float32)

    def apply_gradients(self, grads: list[tf.Tensor | None]) -> dict[str, tf.Tensor]:
        """Replica context: sums `grads` over replicas, unscales, clips, and updates unless non-finite.

        Returns {"grad_norm": pre-clip global norm, "finite": bool, "learning_rate": lr} (replica-identical).
        The update runs in cross-replica context (`merge_call`), one compiled pass per variable.
        """
        grads, stats = self._prepare(grads)
        tf.distribute.get_replica_context().merge_call(
            self._update, args=(grads, stats["finite"], stats["learning_rate"]))
        return stats

    def apply_gradients_in_place(self, grads: list[tf.Tensor | None]) -> dict[str, tf.Tensor]:
        """`apply_gradients` for one replica whose variables are not mirrored (one device, no strategy): the
        whole update as plain assignments, with no `merge_call`, so that the caller can compile the gradients
        and the update into ONE XLA program (`Trainer` does). Same arithmetic, same return value."""
        if tf.distribute.get_replica_context().num_replicas_in_sync != 1:
            raise ValueError("apply_gradients_in_place needs a single replica; use apply_gradients")
        grads, stats = self._prepare(grads)
        finite, factor = stats["finite"], self._bias_correction()
        for name, variable, m, v, grad in zip(self.names, self.variables_, self.m, self.v, grads):
            new_value, new_m, new_v = self._adam_math(variable.read_value(), m.read_value(), v.read_value(), grad,
                                                      finite, stats["learning_rate"] * self.lr_multipliers[name]
                                                      * factor, self.decayed[name])
            m.assign(new_m)
            v.assign(new_v)
            variable.assign(new_value)
        self._count(finite)
        return stats

    def _prepare(self, grads: list[tf.Tensor | None]) -> tuple[list[tf.Tensor], dict[str, tf.Tensor]]:
        """Replica context: float32 dense gradients summed over replicas, unscaled and clipped, and the stats."""
        grads = [tf.zeros(v.shape, tf.float32) if g is None else tf.cast(tf.convert_to_tensor(g), tf.float32)
                 for g, v in zip(grads, self.variables_)]
        context = tf.distribute.get_replica_context()
        if context.num_replicas_in_sync > 1:
            grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
        if self.loss_scale is not None:
            inverse = 1.0 / self.loss_scale.scale
            grads = [g * inverse for g in grads]
        grad_norm = tf.linalg.global_norm(grads)
        finite = tf.math.is_finite(grad_norm)
        if self.clip_norm > 0:
            factor = self.clip_norm / tf.maximum(grad_norm, self.clip_norm)
            grads = [g * factor for g in grads]
        return grads, {"grad_norm": grad_norm, "finite": finite, "learning_rate": self.current_learning_rate()}

    def _bias_correction(self) -> tf.Tensor:
        """Adam's bias correction of update number `iterations + 1` (1 without `adam_correction`)."""
        if not self.adam_correction:
            return tf.constant(1.0)
        step = tf.cast(self.iterations + 1, tf.float32)
        return tf.sqrt(1.0 - self.beta2 ** step) / (1.0 - self.beta1 ** step)

    def _count(self, finite: tf.Tensor) -> None:
        """An applied update advances `iterations`; a skipped one `skipped` (and halves the loss scale)."""
        self.iterations.assign_add(tf.cast(finite, tf.int64))
        self.skipped.assign_add(1 - tf.cast(finite, tf.int64))
        if self.loss_scale is not None:
            self.loss_scale.update(finite)

    def _update(self, strategy: tf.distribute.Strategy, grads, finite, learning_rate) -> None:
        correction = self._bias_correction()
        for name, variable, m, v, grad in zip(self.names, self.variables_, self.m, self.v, grads):
            strategy.extended.update(variable, self._update_one, group=False,
                                     args=(m, v, grad, finite, learning_rate,
                                           self.lr_multipliers[name] * correction, self.decayed[name]))
        self._count(strategy.experimental_local_results(finite)[0])

    def _update_one(self, variable, m, v, grad, finite, learning_rate, factor, decayed: bool) -> None:
        new_value, new_m, new_v = self._new_values(variable.read_value(), m.read_value(), v.read_value(), grad,
                                                   finite, learning_rate * factor, decayed)
        m.assign(new_m)
        v.assign(new_v)
        variable.assign(new_value)

    def _adam_math(self, value, m, v, grad, finite, step_size, decayed: bool):
        """(value, m, v) after one step, or as they were when `finite` is false. Compiled with XLA: one fused
        pass over the variable instead of a kernel (and a full read and write) per elementwise op."""
        new_m = self.beta1 * m + (1.0 - self.beta1) * grad
        new_v = self.beta2 * v + (1.0 - self.beta2) * tf.square(grad)
        update = new_m / (tf.sqrt(new_v) + self.epsilon)
        value32 = tf.cast(value, tf.float32)
        if decayed:
            update += self.weight_decay * value32
        # tf.where, not tf.cond: a skipped step keeps every value, and the branch-free form compiles with XLA.
        return (tf.cast(tf.where(finite, value32 - step_size * update, value32), value.dtype),
                tf.where(finite, new_m, m), tf.where(finite, new_v, v))

    # ------------------------------------------------------------------------- original checkpoints
    def slot_state(self) -> dict[str, Any]:
        """The original's names: `<variable>/adam_m`, `<variable>/adam_v` and `global_step` -> numpy values."""
        state = {"global_step": self.iterations.numpy()}
        for name, m, v in zip(self.names, self.m, self.v):
            state[f"{name}/adam_m"], state[f"{name}/adam_v"] = m.numpy(), v.numpy()
        return state

    def load_slot_state(self, state: dict[str, Any], source: str) -> list[str]:
        """Assigns `<name>/adam_m|adam_v` and `global_step` from an original checkpoint; returns what was set."""
        slots = {}
        for name, m, v in zip(self.names, self.m, self.v):
            slots.update({f"{name}/adam_m": m, f"{name}/adam_v": v})
        assigned = assign_by_name(slots, state, source).assigned
        if "global_step" in state:
            self.iterations.assign(int(state["global_step"]))
            assigned.append("global_step")
        return assigned


def _safe(name: str) -> str:
    return name.replace("/", "__")
