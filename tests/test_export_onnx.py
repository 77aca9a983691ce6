"""ONNX export: every task model and backbone (both positional forms, FNet by its DFT matrices) traced on Keras'
PyTorch backend and run by onnxruntime on CPU, against the Keras model on TensorFlow, on real text packed by the
real BERT vocabulary. onnxruntime is the independent runtime; torch + onnxscript are the exporter."""

from __future__ import annotations

import numpy as np
import pytest

from funnel_tfm.config import ModelConfig
from funnel_tfm.serving import onnx_export
from funnel_tfm.serving.onnx_export import OnnxJob, check_onnx_packages, export_onnx, reference_outputs
from funnel_tfm.serving.samples import sample_features
from funnel_tfm.serving.source import ExportError, FinetunedModel

SEQ_LEN = 32
TINY = {"block_size": "1_1", "d_model": 32, "d_embed": 32, "n_head": 2, "d_head": 16, "d_inner": 64,
        "vocab_size": 30522}


def _sampled(task, record: dict, backbone_only: bool = False) -> dict[str, np.ndarray]:
    from funnel_tfm.data import data_fetch
    record = {"tokenizer_path": data_fetch.bert_uncased_vocab(), "uncased": True, "max_seq_length": SEQ_LEN,
              **record}
    return sample_features(FinetunedModel(record, None, task, "", None, ""), backbone_only)


def _jobs(tmp_path) -> dict[str, OnnxJob]:
    import keras
    from funnel_tfm.config_fnet import FNetConfig
    from funnel_tfm.modeling import FunnelTFM
    from funnel_tfm.modeling_fnet import FNet
    from funnel_tfm.tasks.classification import ClassificationTask
    from funnel_tfm.tasks.multiple_choice import MultipleChoiceTask
    from funnel_tfm.tasks.squad import SquadTask
    from funnel_tfm.tasks.tagging import TaggingTask
    keras.utils.set_random_seed(3)
    config = ModelConfig(**TINY)
    tasks = {"classification": (ClassificationTask.build(config, 3, dtype="float32"),
                                 {"task": "classification", "text_pair": True}),
             "multiple_choice": (MultipleChoiceTask.build(config, 4, dtype="float32"),
                                 {"task": "multiple_choice", "num_choices": 4}),
             "squad": (SquadTask.build(config, dtype="float32"), {"task": "squad"}),
             "tagging": (TaggingTask.build(config, 5, dtype="float32"), {"task": "tagging"})}
    single = _sampled(None, {"task": "tagging"})
    jobs = {name: OnnxJob(task.model, _sampled(task, record), str(tmp_path / f"{name}.onnx"))
            for name, (task, record) in tasks.items()}
    for form in ("rel_shift", "factorized"):
        backbone = FunnelTFM(config.replace(rel_attn_type=form, block_size="2_1"), use_decoder=True, dtype="float32")
        jobs[f"backbone_{form}"] = OnnxJob(backbone, single, str(tmp_path / f"backbone_{form}.onnx"))
    fnet = FNet(FNetConfig(d_model=32, d_embed=32, d_inner=64, n_layer=2, vocab_size=30522, max_seq_length=SEQ_LEN,
                           use_fft=True), dtype="float32")
    jobs["fnet"] = OnnxJob(fnet, {k: v for k, v in single.items() if k != "padding_mask"}, str(tmp_path / "fnet.onnx"))
    return jobs


@pytest.mark.slow  # 4-7 min on 2 busy cores: seven models traced by torch.export
def test_every_task_model_and_backbone_matches_onnxruntime(tmp_path):
    import onnxruntime
    jobs = _jobs(tmp_path)
    results = dict(zip(jobs, export_onnx(list(jobs.values()))))
    assert results["fnet"]["fourier_layers_switched_to_dft"] == 2  # the FFT model is exported by its DFT matrices
    assert {"start_top_index", "end_top_index", "cls_logits"} <= set(results["squad"]["outputs"])
    for name, job in jobs.items():
        result = results[name]
        assert all(diff <= 1e-4 for diff in result["max_abs_diff"].values()), (name, result["max_abs_diff"])
        assert all(spec["shape"][0] == "batch" for spec in result["inputs"])
        # Independently of the exporter's own check: rows 1..3 (a batch of 3, neither traced nor checked there).
        session = onnxruntime.InferenceSession(job.onnx_file, providers=["CPUExecutionProvider"])
        assert [node.shape[0] for node in session.get_inputs()] == ["batch"] * len(session.get_inputs())
        rows = {key: value[1:] for key, value in job.sample.items()}
        expected = reference_outputs(job.model, rows)
        feed = {node.name: rows[node.name] for node in session.get_inputs()}
        for output, value in zip(result["outputs"], session.run(result["outputs"], feed)):
            if output.endswith("_index"):
                np.testing.assert_array_equal(value, expected[output], err_msg=f"{name}/{output}")
            else:
                np.testing.assert_allclose(value, expected[output], atol=1e-4, rtol=0, err_msg=f"{name}/{output}")
        assert np.ptp(expected[result["outputs"][0]]) > 0  # not a constant: the comparison can fail


def test_missing_onnx_packages_name_the_extra(monkeypatch):
    real = onnx_export.importlib.util.find_spec
    monkeypatch.setattr(onnx_export.importlib.util, "find_spec",
                        lambda name: None if name == "onnxscript" else real(name))
    with pytest.raises(ExportError, match=r"needs onnxscript .*pip install 'funnel_tfm\[onnx\]'"):
        check_onnx_packages()


def test_mixed_precision_model_is_refused():
    from funnel_tfm.modeling import FunnelTFM
    model = FunnelTFM(ModelConfig(**{**TINY, "vocab_size": 100}), dtype="mixed_bfloat16")
    sample = {"token_ids": np.zeros((2, 8), np.int32)}
    with pytest.raises(ExportError, match="dtype policy 'mixed_bfloat16'.*float32"):
        export_onnx([OnnxJob(model, sample, "unused.onnx")])
