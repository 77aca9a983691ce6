"""No command deletes or overwrites a run, a checkpoint or its own input, whatever --overwrite says; a run
directory belongs to one training process; a resume of another model is refused before anything is written."""

import json
import os
import signal
import subprocess
import sys

import pytest

from robust_helpers import SENTENCES, one_error_line, run, snapshot, write_sst2

from funnel_tfm.training import run_dir


def fake_run(directory) -> str:
    """A directory that holds a training run (markers, a checkpoint, a config), to be left untouched."""
    os.makedirs(directory)
    for name, text in (("run_record.json", "{}"), ("metrics.jsonl", ""), ("ckpt-5.index", "x"),
                       ("ckpt-5.data-00000-of-00001", "y")):
        with open(os.path.join(directory, name), "w") as handle:
            handle.write(text)
    return str(directory)


def tiny_training(data: str, tmp_path, model_dir, vocab: str, config: str) -> list[str]:
    """classifier flags of a 2-step SST-2 training of the tiny model."""
    return ["--task_name=sst-2", f"--data_dir={data}", f"--output_dir={tmp_path / 'rec'}", f"--model_dir={model_dir}",
            f"--tokenizer_path={vocab}", f"--model_config={config}", "--max_seq_length=16", "--do_train=True",
            "--train_steps=2", "--train_batch_size=4", "--learning_rate=1e-3", "--jit_compile=False"]


def test_export_into_its_own_run_or_a_parent_of_it_is_refused(tmp_path):
    model_dir = fake_run(tmp_path / "runs" / "cola")
    before = snapshot(tmp_path)
    for export_dir in (model_dir, str(tmp_path / "runs")):
        result = run("export", f"--model_dir={model_dir}", "--format=keras", f"--export_dir={export_dir}",
                     "--overwrite")
        assert "would replace" in one_error_line(result, "export")
    other = fake_run(tmp_path / "runs" / "other")  # another run is not an export target either
    result = run("export", f"--model_dir={model_dir}", "--format=keras", f"--export_dir={other}", "--overwrite")
    assert "holds a training run" in one_error_line(result, "export")
    assert snapshot(tmp_path) == {**before, **{os.path.relpath(os.path.join(other, k), tmp_path): v
                                               for k, v in snapshot(other).items()}}


def test_convert_onto_its_own_input_is_refused(tmp_path, tiny_model_config):
    from funnel_tfm.checkpoints.loading import save_pretrained
    from funnel_tfm.config import ModelConfig
    from funnel_tfm.modeling import FunnelTFM
    source = str(tmp_path / "keras")
    save_pretrained(FunnelTFM(ModelConfig.from_json(tiny_model_config)), source)
    before = snapshot(source)
    for output in (source, str(tmp_path)):
        result = run("convert", f"--input={source}", f"--output={output}", "--to=keras", "--overwrite")
        assert "which this command reads" in one_error_line(result, "convert")
    assert snapshot(source) == before


def test_predict_onto_its_input_is_refused(tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("a fine film\n")
    result = run("predict", f"--model={tmp_path / 'no_model'}", f"--input={texts}", f"--output={texts}")
    assert "is the --input file" in one_error_line(result, "predict")
    assert texts.read_text() == "a fine film\n"


@pytest.mark.slow  # a classifier process (CI runs it: python -m pytest -m slow)
def test_a_second_training_process_on_one_model_dir_is_refused(tmp_path, vocab, tiny_model_config):
    data = write_sst2(tmp_path / "sst2", SENTENCES)
    model_dir = str(tmp_path / "run")
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from funnel_tfm.training import run_dir; "
                               "lock = run_dir.lock(sys.argv[1]); print('locked', flush=True); time.sleep(600)",
                               model_dir], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = snapshot(model_dir)
        result = run("classifier", *tiny_training(data, tmp_path, model_dir, vocab, tiny_model_config))
        message = one_error_line(result, "classifier")
        assert f"is in use by process {holder.pid} on " in message and "--model_dir" in message
        assert snapshot(model_dir) == before
    finally:
        holder.send_signal(signal.SIGKILL)  # the OS releases the lock of a killed holder: no stale lock
        holder.wait()
    run_dir.lock(model_dir).release()


@pytest.mark.slow  # a classifier process (CI runs it: python -m pytest -m slow)
def test_resuming_with_another_model_config_is_refused_before_anything_is_written(tmp_path, vocab,
                                                                                   tiny_model_config):
    from funnel_tfm.config import ModelConfig
    data = write_sst2(tmp_path / "sst2", SENTENCES)
    model_dir = tmp_path / "run"
    model_dir.mkdir()
    ModelConfig.from_json(tiny_model_config).replace(d_inner=64).to_json(str(model_dir / "net_config.json"))
    (model_dir / "run_record.json").write_text(json.dumps({"task": "classification"}))
    (model_dir / "ckpt-2.index").write_text("x")
    before = snapshot(model_dir)
    result = run("classifier", *tiny_training(data, tmp_path, model_dir, vocab, tiny_model_config))
    message = one_error_line(result, "classifier")
    assert "holds checkpoints of another model (d_inner 64 there, 32 now)" in message
    assert snapshot(model_dir) == before


def test_the_run_markers_are_the_run_directory_names():
    from funnel_tfm import file_io
    assert set(file_io.RUN_MARKERS) == {run_dir.LOCK_FILE, run_dir.RUN_RECORD, run_dir.PRETRAIN_OBJECTIVE,
                                        run_dir.METRICS}
