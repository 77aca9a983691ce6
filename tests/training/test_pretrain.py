"""Pretraining for real: State of the Union text, the BERT vocabulary, tiny Funnels, real strategies/processes."""

import json
import os
import shutil
import signal
import socket
import time

import numpy as np
import pytest
import tensorflow as tf

from funnel_tfm.data import data_fetch
from pretrain_helpers import (MODEL_FLAGS, NUM_PREDICT, SEQ_LEN, exported_weights, run_pretrain, tiny_pretrain_config,
                              train_in_process)


def _cli_args(records: str, model_dir: str, **changes) -> dict:
    args = {"record_dir": records, "tokenizer_path": data_fetch.bert_uncased_vocab(), "model_dir": model_dir,
            "seq_len": SEQ_LEN, "num_predict": NUM_PREDICT, "loss_type": "electra", "train_batch_size": 8,
            "train_steps": 8, "iterations": 2, "save_steps": 4, "learning_rate": 1e-3, "warmup_steps": 2,
            "shuffle_buffer": 500, "deterministic": "true", "dropout": 0.0, "dropatt": 0.0,
            "jit_compile": "false", **MODEL_FLAGS}  # XLA is covered in-process; its compile time is not needed here
    args.update(changes)
    return args


def _check(process) -> str:
    assert process.returncode == 0, process.stdout + process.stderr
    return process.stdout


def _max_difference(a: dict, b: dict) -> float:
    assert sorted(a) == sorted(b)
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)


@pytest.fixture(scope="module")
def one_device_run(tmp_path_factory, records) -> str:
    """ELECTRA, 8 steps, no dropout, on one device: the reference of the distributed runs."""
    model_dir = str(tmp_path_factory.mktemp("one_device"))
    _check(run_pretrain(_cli_args(records, model_dir, export_format="original")))
    return model_dir


# ------------------------------------------------------------------------------------------ objectives
@pytest.mark.parametrize("loss_type, drop", [("mlm", 2.0), ("electra", 8.0)])
def test_objective_reduces_the_loss_on_real_text(records, tokenizer, loss_type, drop):
    # Without XLA: compiling costs more than 40 tiny steps; the compiled step is tested in test_precision_compile.
    _, history, _ = train_in_process(records, tokenizer, loss_type, steps=40, jit_compile=False)
    first, last = history[0]["loss"], np.mean([h["loss"] for h in history[-2:]])
    assert last < first - drop, [h["loss"] for h in history]
    if loss_type == "mlm":
        assert history[0]["mlm_loss"] > 9.5  # ln(30522) = 10.3 at random init: the loss starts where it should
        assert history[-1]["mlm_accuracy"] > history[0]["mlm_accuracy"]
    else:
        assert history[-1]["discriminator_accuracy"] > history[0]["discriminator_accuracy"] + 0.05
        assert history[-1]["generator_loss"] < history[0]["generator_loss"]
    assert all(h["skipped_steps"] == 0 for h in history)


def test_injected_non_finite_gradient_is_skipped_and_counted(records, tokenizer):
    def poison_step_3(grads, step):
        return [tf.where(tf.equal(step, 3), tf.fill(tf.shape(g), np.nan), tf.convert_to_tensor(g)) for g in grads]

    trainer, _, iterator = train_in_process(records, tokenizer, "mlm", steps=3, steps_per_call=3,
                                            gradient_hook=poison_step_3, jit_compile=False)
    weights_at_3 = [v.numpy() for v in trainer.variables]
    means = trainer.run_steps(iterator, 1)  # step index 3: every gradient is NaN
    assert means["skipped_steps"] == 1 and int(trainer.optimizer.iterations.numpy()) == 3
    for before, after in zip(weights_at_3, trainer.variables):
        np.testing.assert_array_equal(after.numpy(), before)  # the poisoned step changed nothing
    means = trainer.run_steps(iterator, 1)  # and training goes on
    assert means["skipped_steps"] == 1 and int(trainer.optimizer.iterations.numpy()) == 4


def test_float16_overflow_is_skipped_and_the_loss_scale_halved(records, tokenizer):
    _, history, _ = train_in_process(records, tokenizer, "mlm", steps=4, steps_per_call=4, jit_compile=False,
                                     precision="mixed_float16", initial_loss_scale=2.0 ** 60)
    skipped = history[-1]["skipped_steps"]
    assert skipped >= 1 and history[-1]["loss_scale"] == 2.0 ** 60 / 2 ** skipped
    assert np.isfinite(history[-1]["loss"])


# ------------------------------------------------------------------------------------------ distribution
def test_mirrored_two_cpus_gives_the_update_of_one_device(tmp_path, records, one_device_run):
    output = _check(run_pretrain(_cli_args(records, str(tmp_path), strategy="mirrored", num_cpu_devices=2,
                                           export_format="original")))
    assert "2 replica(s) on mirrored" in output
    difference = _max_difference(_original_weights(one_device_run), _original_weights(str(tmp_path)))
    assert difference < 1e-5, difference


def _original_weights(model_dir: str) -> dict:
    reader = tf.train.load_checkpoint(os.path.join(model_dir, "export"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_multi_worker_two_processes_agree_with_one_device(tmp_path, records, one_device_run):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        processes.append(run_pretrain(_cli_args(records, str(tmp_path), strategy="multi_worker",
                                                input_sharding="global_batch", export_format="original"),
                                      env={"TF_CONFIG": tf_config}, wait=False))
    outputs = [p.communicate(timeout=600)[0] for p in processes]
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output
    assert "2 replica(s) on multi_worker" in outputs[0]
    assert not os.path.exists(os.path.join(tmp_path, ".worker-1-tmp"))  # the non-chief's copy is removed
    difference = _max_difference(_original_weights(one_device_run), _original_weights(str(tmp_path)))
    assert difference < 1e-5, difference


# ------------------------------------------------------------------------------------------ checkpoints
@pytest.mark.slow  # ~45 s: three pretrain processes
def test_sigkill_and_restart_reach_the_weights_of_an_uninterrupted_run(tmp_path, records):
    settings = dict(loss_type="mlm", train_steps=8, save_steps=2, iterations=1, dropout=0.1, dropatt=0.1,
                    max_save=3)
    uninterrupted = str(tmp_path / "uninterrupted")
    _check(run_pretrain(_cli_args(records, uninterrupted, **settings)))

    killed = str(tmp_path / "killed")
    process = run_pretrain(_cli_args(records, killed, **settings), wait=False)
    deadline = time.time() + 300
    while time.time() < deadline and not os.path.exists(os.path.join(killed, "ckpt-4.index")):
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not os.path.exists(os.path.join(killed, "export"))
    steps_done = tf.train.latest_checkpoint(killed)
    assert steps_done is not None and int(steps_done.rsplit("-", 1)[1]) < 8

    output = _check(run_pretrain(_cli_args(records, killed, **settings)))
    assert f"resumed from {steps_done}" in output
    assert len([f for f in os.listdir(killed) if f.endswith(".index")]) == 3  # max_save
    assert _max_difference(exported_weights(uninterrupted), exported_weights(killed)) == 0.0


def test_continue_from_a_full_original_checkpoint(tmp_path, records, one_device_run):
    """The exported FULL original checkpoint (generator, Adam slots, global_step) continues ELECTRA."""
    output = _check(run_pretrain(_cli_args(records, str(tmp_path), init_checkpoint=os.path.join(one_device_run,
                                                                                                   "export"),
                                           train_steps=10, export_format="hf")))
    assert "restored" in output and "optimizer values" in output and "left at init" not in output
    assert "step      10/10" in output
    from funnel_tfm.modeling import FunnelTFM
    model = FunnelTFM.from_pretrained(os.path.join(str(tmp_path), "export"))
    assert model.config.d_model == 64
    # A transformers directory with its tokenizer: vocab.txt + tokenizer_config.json (FunnelTokenizer).
    tokenizer_config = json.load(open(os.path.join(str(tmp_path), "export", "tokenizer_config.json")))
    assert tokenizer_config["tokenizer_class"] == "FunnelTokenizer" and tokenizer_config["cls_token"] == "[CLS]"


# ------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("changes, message", [
    ({"record_dir": "/nonexistent/records"}, "--record_dir=/nonexistent/records does not exist"),
    ({"seq_len": 128}, "no meta.train.pass-*.seq-128.uncased.json*"),
    ({"vocab_size": 1000}, "vocab_size is 1000 but"),
    ({"loss_type": "bert"}, "--loss_type=bert: expected mlm, electra (Funnel) or mlm_nsp (FNet)"),
])
def test_bad_input_is_one_clear_error(tmp_path, records, changes, message):
    process = run_pretrain(_cli_args(records, str(tmp_path / "run"), **changes))
    assert process.returncode == 1
    assert message in process.stderr, process.stderr
    assert "Traceback" not in process.stderr


def _settings(records: str, model_dir: str, **changes):
    from funnel_tfm.training.pretrain_job import PretrainRun
    values = {"record_dir": [records], "tokenizer_path": data_fetch.bert_uncased_vocab(), "seq_len": SEQ_LEN,
              "num_predict": NUM_PREDICT, "model_dir": model_dir, "model_config": tiny_pretrain_config(),
              "loss_type": "mlm", "train_batch_size": 4, "train_steps": 1}
    return PretrainRun(**{**values, **changes})


def test_records_of_another_vocabulary_of_the_same_size_are_refused(tmp_path, records):
    from funnel_tfm.data.tokenization import read_vocab
    from funnel_tfm.training.pretrain_job import run_pretraining
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # build_vocab's order: every id below 30,522 still
    bert = read_vocab(data_fetch.bert_uncased_vocab())
    (tmp_path / "vocab.txt").write_text("\n".join(special + [t for t in bert if t not in special]) + "\n")
    model_dir = tmp_path / "run"
    with pytest.raises(ValueError, match=r"start with id 101 and end with id 102, but \[CLS\] / \[SEP\] of .*vocab.txt "
                                         r"are 2 / 3: the records were written with another vocabulary"):
        run_pretraining(_settings(records, str(model_dir), tokenizer_path=str(tmp_path / "vocab.txt")))
    assert not model_dir.exists()


@pytest.mark.parametrize("num_predict", [0, SEQ_LEN - 3])
def test_num_predict_out_of_range_is_refused_before_any_output(tmp_path, records, num_predict):
    from funnel_tfm.training.pretrain_job import run_pretraining
    with pytest.raises(ValueError, match=rf"--num_predict={num_predict}: must be in 1..{SEQ_LEN - 4} "):
        run_pretraining(_settings(records, str(tmp_path / "run"), num_predict=num_predict))
    assert not (tmp_path / "run").exists()


def test_an_electra_generator_shrunk_to_no_heads_is_named(tmp_path, records):
    from funnel_tfm.config import ConfigError
    from funnel_tfm.training.pretrain_job import run_pretraining
    run = _settings(records, str(tmp_path / "run"), loss_type="electra",
                    model_config=tiny_pretrain_config(n_head=2, d_head=32))
    with pytest.raises(ConfigError, match=r"--loss_type=electra: the generator .* --width_shrink=0.25 .* n_head 0, "
                                          r".*n_head >= 4"):
        run_pretraining(run)
    assert not (tmp_path / "run").exists()


def test_a_cut_off_record_file_is_named(tmp_path, records):
    import shutil
    from funnel_tfm.training.pretrain_job import run_pretraining
    copy = tmp_path / "records"
    shutil.copytree(records, copy)
    cut = sorted(copy.glob("data.*"))[0]
    cut.write_bytes(cut.read_bytes()[:-100])  # a copy that stopped early: TensorFlow's error names no file
    with pytest.raises(ValueError, match=rf"{cut}: damaged record file \(truncated record at \d+"):
        run_pretraining(_settings(str(copy), str(tmp_path / "run"), jit_compile=False))


def test_checkpoint_of_another_shape_is_refused(tmp_path, records, one_device_run):
    import shutil
    model_dir = str(tmp_path / "run")
    shutil.copytree(one_device_run, model_dir)
    process = run_pretrain(_cli_args(records, model_dir, d_inner=96))
    # Refused before anything is written: the saved config differs (training/run_dir.check_same_model).
    assert process.returncode == 1 and "holds checkpoints of another model (d_inner" in process.stderr, process.stderr
    assert os.path.exists(os.path.join(model_dir, "ckpt-8.index"))  # nothing that was there is lost


def test_tensorboard_scalars_and_metrics_file(one_device_run):
    events = tf.io.gfile.glob(os.path.join(one_device_run, "train", "events.out.tfevents.*"))
    tags = set()
    for path in events:
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    for tag in ("train/loss", "train/generator_loss", "train/generator_accuracy", "train/discriminator_loss",
                "train/discriminator_accuracy", "train/learning_rate", "train/grad_norm", "train/skipped_steps",
                "throughput/tokens_per_second"):
        assert tag in tags, sorted(tags)
    lines = open(os.path.join(one_device_run, "metrics.jsonl")).read().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [2, 4, 6, 8]


@pytest.mark.parametrize("block_size, pooling_size, separate_cls, tail", [
    ("1_1_1", 3, True, 9),    # the tail follows pooling_size ** (n_block - 1), not 2 ** (n_block - 1)
    ("1_1_1", 2, True, 4),
    ("1_1_1", 3, False, 0),   # without separate_cls nothing is truncated (the original's condition)
])
def test_input_tail_follows_the_pooling_of_the_config(records, tokenizer, block_size, pooling_size, separate_cls,
                                                       tail):
    from funnel_tfm.data.input_func_builder import MaskingIds
    from funnel_tfm.training.pretrain_job import PretrainRun, pretraining_input_fn
    config = tiny_pretrain_config(block_size=block_size, pooling_size=pooling_size, separate_cls=separate_cls,
                                  decoder_size="1")
    run = PretrainRun(record_dir=[records], tokenizer_path="unused", seq_len=SEQ_LEN, num_predict=NUM_PREDICT,
                      model_dir="unused", shuffle_buffer=100)
    dataset = pretraining_input_fn(run, config, MaskingIds.from_tokenizer(tokenizer), per_replica_batch=4)(None)
    ids = next(iter(dataset))["origin_ids"].numpy()
    if tail:
        expected = [tokenizer.sep_id] + [tokenizer.pad_id] * (tail - 1)
        assert (ids[:, -tail:] == np.array(expected)).all(), ids[:, -tail - 2:]
        assert (ids[:, -tail - 1] != tokenizer.pad_id).all()
    else:
        assert (ids[:, -1] == tokenizer.sep_id).all() and (ids != tokenizer.pad_id).all()


def test_finetuning_reads_a_pretraining_dir_without_its_export(tmp_path, records):
    """A pretraining run stopped before its export: `--init_checkpoint=<model_dir>` reads the latest training
    checkpoint through the pretraining task, and gets exactly the weights the export would have held."""
    import shutil
    from funnel_tfm.training.finetune import load_init_checkpoint
    model_dir = str(tmp_path / "run")
    _check(run_pretrain(_cli_args(records, model_dir, train_steps=4, save_steps=2)))
    shutil.move(os.path.join(model_dir, "export"), str(tmp_path / "export"))
    state = load_init_checkpoint(model_dir).state()
    from safetensors.numpy import load_file
    exported = load_file(str(tmp_path / "export" / "model.safetensors"))
    shared = sorted(set(state) & set(exported))
    assert len(shared) > 40 and any(name.startswith("generator/") for name in shared)
    for name in shared:
        np.testing.assert_array_equal(state[name], exported[name], err_msg=name)


def test_convert_and_export_take_a_pretraining_model_dir(tmp_path, one_device_run):
    """`convert --input=<pretraining model_dir>` and `export --model_dir=<pretraining model_dir> --format=hf` read
    its latest training checkpoint (backbone, discriminator and generator: the weights its own export holds);
    a serving format is one clear error and writes nothing."""
    from safetensors.numpy import load_file
    from funnel_tfm.modeling import FunnelTFM
    from test_classifier import run_entry_point
    reference = FunnelTFM.load_checkpoint(os.path.join(one_device_run, "export")).state()  # the run's own export
    converted = run_entry_point("convert", f"--input={one_device_run}", f"--output={tmp_path / 'keras'}", "--to=keras")
    assert "(pretraining run, step 8)" in converted.stdout, converted.stdout
    ours = load_file(str(tmp_path / "keras" / "model.safetensors"))
    exported = run_entry_point("export", f"--model_dir={one_device_run}", "--format=hf",
                               f"--export_dir={tmp_path / 'hf'}")
    assert "step 8" in exported.stdout, exported.stdout
    assert {"config.json", "vocab.txt", "tokenizer_config.json"} <= set(os.listdir(tmp_path / "hf"))
    from_hf = FunnelTFM.load_checkpoint(str(tmp_path / "hf")).state()
    for state, with_generator in ((ours, True), (from_hf, False)):  # transformers' class is the discriminator
        shared = sorted(set(state) & set(reference))
        assert len(shared) > 40 and any(name.startswith("generator/") for name in shared) == with_generator
        for name in shared:
            np.testing.assert_array_equal(state[name], reference[name], err_msg=name)
    refused = run_entry_point("export", f"--model_dir={one_device_run}", "--format=saved_model",
                              f"--export_dir={tmp_path / 'served'}", check=False)
    assert refused.returncode == 1 and not (tmp_path / "served").exists()
    assert refused.stderr.strip().splitlines()[-1].startswith(
        f"export: error: --format=saved_model: {one_device_run} is a pretraining run"), refused.stderr[-2000:]


def test_init_checkpoint_takes_one_ckpt_prefix_of_a_pretraining_run(tmp_path, one_device_run):
    """`--init_checkpoint=<run>/ckpt-<step>` reads that step's weights through the run's pretraining task (what
    bench/pretraining_gain.py finetunes at each compute point); a prefix of another kind of run is one error."""
    from funnel_tfm.errors import CheckpointError
    from funnel_tfm.modeling import FunnelTFM
    from funnel_tfm.training.finetune import load_init_checkpoint
    prefix = os.path.join(one_device_run, "ckpt-8")
    loaded = load_init_checkpoint(prefix).state()
    reference = FunnelTFM.load_checkpoint(os.path.join(one_device_run, "export")).state()
    backbone = [name for name in reference if name.startswith("model/")]
    assert len(backbone) > 40
    for name in backbone:
        np.testing.assert_array_equal(loaded[name], reference[name], err_msg=name)
    other = tmp_path / "finetuned"
    other.mkdir()
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.copy(prefix + suffix, str(other / "ckpt-8") + suffix)
    with pytest.raises(CheckpointError, match="not a pretraining run"):
        load_init_checkpoint(str(other / "ckpt-8"))
    from test_classifier import run_entry_point  # `convert` takes the same prefixes
    converted = run_entry_point("convert", f"--input={prefix}", f"--output={tmp_path / 'keras'}", "--to=keras")
    assert "(pretraining run, step 8)" in converted.stdout, converted.stdout
    refused = run_entry_point("convert", f"--input={other / 'ckpt-8'}", f"--output={tmp_path / 'k2'}", "--to=keras",
                              check=False)
    assert refused.returncode == 1 and "a training checkpoint of a finetuning run" in refused.stderr.splitlines()[-1]
    assert not (tmp_path / "k2").exists()
