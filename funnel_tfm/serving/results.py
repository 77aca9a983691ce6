"""A serving signature's output batch -> one JSON-ready dict per input row, in the shape a person reads.

    results = result_rows("multiple_choice", outputs, metadata)   # outputs: name -> numpy array, batch first
    # [{"prediction": "B", "choice": 1, "probabilities": {"A": 0.1, "B": 0.6, "C": 0.2, "D": 0.1}}, ...]

* classification: `label` and `probabilities` by label name, or `score` for a regressor;
* multiple choice: `prediction` (the option's name), `choice` (its index), `probabilities` by option name;
* tagging: `words` and their `tags`, cut to the row's `num_words` (the signature pads rows with "");
* SQuAD, and any task without a rule here: every output of the signature by its name (`answer`, `answer_start`,
  `no_answer_probability`, ...), so outputs a newer signature adds come through without a change here.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

Outputs = dict[str, np.ndarray]


def json_value(value: Any) -> Any:
    """A numpy scalar or array (strings as bytes) -> plain Python (str, int, float, bool, lists)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")  # the model's own output: substrings of the input
    if isinstance(value, np.ndarray):
        return [json_value(item) for item in value]
    if isinstance(value, np.generic):
        return json_value(value.item())
    return value


def _classification(outputs: Outputs, i: int, metadata: dict[str, Any]) -> dict[str, Any]:
    if "score" in outputs:
        return {"score": float(outputs["score"][i])}
    return {"label": json_value(outputs["label"][i]),
            "probabilities": {name: float(p) for name, p in zip(metadata["labels"], outputs["probabilities"][i])}}


def _multiple_choice(outputs: Outputs, i: int, metadata: dict[str, Any]) -> dict[str, Any]:
    names = json_value(outputs["option_names"][i])
    return {"prediction": json_value(outputs["prediction"][i]), "choice": int(outputs["choice"][i]),
            "probabilities": {name: float(p) for name, p in zip(names, outputs["probabilities"][i])}}


def _tagging(outputs: Outputs, i: int, metadata: dict[str, Any]) -> dict[str, Any]:
    n = int(outputs["num_words"][i])
    return {"words": json_value(outputs["words"][i][:n]), "tags": json_value(outputs["tags"][i][:n])}


def _every_output(outputs: Outputs, i: int, metadata: dict[str, Any]) -> dict[str, Any]:
    return {name: json_value(value[i]) for name, value in sorted(outputs.items())}


RULES: dict[str, Callable[[Outputs, int, dict[str, Any]], dict[str, Any]]] = {
    "classification": _classification, "multiple_choice": _multiple_choice, "tagging": _tagging}


def result_rows(task: str, outputs: Outputs, metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """One dict per row of `outputs` (see the module docstring); `metadata` is the export's funnel_export.json."""
    if not outputs:
        return []
    rule = RULES.get(task, _every_output)
    return [rule(outputs, i, metadata) for i in range(len(next(iter(outputs.values()))))]
