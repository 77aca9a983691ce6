"""A shared harness for Keras models (in the style of Keras-Hub's TestCase.run_backbone_test / run_task_test):
build, call, summary, get_config/from_config, `.keras` save and reload, and one `fit` step, on any backend.

    run_model_test(FunnelTFM, {"config": config}, inputs, tmp_path,
                   expected_shapes={"sequence_output": (2, 4, 16)}, train_output=lambda out: out["pooled_output"])
"""

from __future__ import annotations

from typing import Any, Callable

import keras
import numpy as np


def to_numpy(x: Any) -> np.ndarray:
    return keras.ops.convert_to_numpy(x)


def _flat(outputs: Any) -> list[np.ndarray]:
    return [to_numpy(x) for x in keras.tree.flatten(outputs)]


def _assert_same_outputs(a: Any, b: Any, what: str, atol: float = 0.0) -> None:
    flat_a, flat_b = _flat(a), _flat(b)
    assert len(flat_a) == len(flat_b), what
    for x, y in zip(flat_a, flat_b):
        np.testing.assert_allclose(x, y, rtol=0, atol=atol, err_msg=what)


class TrainOneOutput(keras.Model):
    """Wraps a model so that `fit` trains one of its outputs towards a random target (not zero: the output of a
    LayerNorm has a constant norm, so pulling it to zero sends no gradient into the layers below)."""

    def __init__(self, model: keras.Model, pick: Callable[[Any], Any]) -> None:
        super().__init__()
        self.model, self.pick = model, pick

    def call(self, inputs, training=False):
        value = keras.ops.cast(self.pick(self.model(inputs, training=training)), "float32")
        return keras.ops.reshape(value, (keras.ops.shape(value)[0], -1))


def run_model_test(cls: type, init_kwargs: dict[str, Any], inputs: dict[str, np.ndarray], tmp_path: Any,
                   expected_shapes: dict[str, tuple] | None = None,
                   train_output: Callable[[Any], Any] | None = None) -> keras.Model:
    """Runs every check; returns the model (with the weights after the fit step)."""
    model = cls(**init_kwargs)
    outputs = model(inputs)
    for key, shape in (expected_shapes or {}).items():
        got = outputs[key] if key else outputs
        assert tuple(got.shape) == tuple(shape), f"{key}: {tuple(got.shape)} != {shape}"

    lines: list[str] = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line))
    text = "\n".join(lines)
    assert f"{model.count_params():,}" in text, text[-2000:]

    clone = cls.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    _assert_same_outputs(clone(inputs), outputs, "from_config(get_config()) with the same weights")

    path = str(tmp_path / f"{cls.__name__}.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is cls
    _assert_same_outputs(loaded(inputs), outputs, ".keras save and reload")

    if train_output is not None:
        before = [to_numpy(w).copy() for w in model.trainable_weights]
        trainer = TrainOneOutput(model, train_output)
        trainer.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
        target = np.random.default_rng(0).normal(size=to_numpy(trainer(inputs)).shape).astype(np.float32)
        history = trainer.fit(inputs, target, batch_size=len(next(iter(inputs.values()))), epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        changed = sum(not np.array_equal(b, to_numpy(w)) for b, w in zip(before, model.trainable_weights))
        assert changed > 0.5 * len(before), f"only {changed} of {len(before)} weights moved in one fit step"
    return model
