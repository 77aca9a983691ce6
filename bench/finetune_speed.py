r"""Finetuning speed, measured side by side in one run on this machine (float32, CPU).

    python bench/finetune_speed.py                                   # B4-4-4H768 and B6-6-6H768, 16 x 128
    python bench/finetune_speed.py --part=i --batch_size=8           # the small batch of the earlier runs
    python bench/finetune_speed.py --models=B4-4-4H768 --steps=2 --repeats=1 --num_pairs=512    # quick check

(i)  Training step, examples/s: ours is the real finetuning step (`Trainer` + `ClassificationTask` + the
     classifier's AdamW from `build_optimizer`: forward, loss, backward, clipping, update; XLA, `--steps` steps
     per host call) on a fixed synthetic batch of the real features; transformers' FunnelForSequenceClassification
     + torch.optim.AdamW (fused) does the same (forward, loss, backward, clip_grad_norm_, step, schedule), from
     THE SAME WEIGHTS (ours exported with `export(..., to="hf")`, loaded with `from_pretrained`; the max |diff|
     of their eval-mode logits is printed). Dropout is on in both.
(ii) Feature conversion, sentence pairs/s on real sentences (VADER's movie-review snippets, paired): our
     `Preprocessor` (in-graph, batched) and `write_features` (tokenize, pack, serialize, write the TFRecord),
     against transformers' BertTokenizerFast (`__call__`, truncation and padding to --seq_len, numpy out).

The default batch, 16 x 128, is the seed README's GLUE command (`--train_batch_size=16 --max_seq_length=128`);
the ratio grows with the batch (8: the smallest matrix products of the pooled blocks run furthest from the CPU's
peak in XLA; 32: torch's step slows per example), so BENCHMARKS.md lists 8, 16 and 32.
Ratios are ours / transformers (> 1: we are faster). TensorFlow and torch both use all of the machine's cores.
Needs the test extras (torch, transformers).
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from funnel_tfm.analysis.timing import machine_description, median_seconds, random_inputs  # noqa: E402
from funnel_tfm.checkpoints.loading import export  # noqa: E402
from funnel_tfm.config import named_config  # noqa: E402
from funnel_tfm.data import data_fetch  # noqa: E402
from funnel_tfm.data.classifier_data import Example  # noqa: E402
from funnel_tfm.data.classifier_records import record_path, write_features  # noqa: E402
from funnel_tfm.data.preprocessing import Preprocessor  # noqa: E402
from funnel_tfm.tasks.classification import ClassificationTask  # noqa: E402
from funnel_tfm.training.classifier_job import ClassifierRun  # noqa: E402
from funnel_tfm.training.loop import build_optimizer  # noqa: E402
from funnel_tfm.training.trainer import Trainer  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_enum("part", "all", ["all", "i", "ii"], "Which comparison to run.")
flags.DEFINE_list("models", ["B4-4-4H768", "B6-6-6H768"], "Named configs for part (i).")
flags.DEFINE_integer("seq_len", 128, "Sequence length (both parts).")
flags.DEFINE_integer("batch_size", 16, "Training batch size (16: the seed README's GLUE recipe at length 128).")
flags.DEFINE_integer("steps", 5, "Training steps per timed call (ours: one host call).")
flags.DEFINE_integer("repeats", 3, "Timed repetitions after one warm-up; the median is reported.")
flags.DEFINE_integer("num_pairs", 0, "Sentence pairs for part (ii); 0 = all 5,302.")
flags.DEFINE_integer("convert_batch", 512, "Batch of our in-graph conversion (that of write_features).")

N_CLASS = 2
# The classifier's optimizer settings (its defaults: AdamW beta2 0.99, eps 1e-6, clip 1.0, no weight decay).
RUN = ClassifierRun(task_name="rte", data_dir="", output_dir="", model_dir="", tokenizer_path="",
                    learning_rate=1e-5, train_steps=1000, warmup_steps=100)


def training_batch(config, batch_size: int, seq_len: int) -> dict[str, np.ndarray]:
    """The classifier's features (unpadded rows: transformers pools a padded mask differently, see
    bench/model_speed.py), a label and is_real_example."""
    batch = random_inputs(config, batch_size, seq_len, pad_rows=False)
    batch["label"] = np.random.default_rng(1).integers(0, N_CLASS, batch_size).astype(np.int32)
    batch["is_real_example"] = np.ones(batch_size, np.int32)
    return batch


def ours_step(config, batch: dict[str, np.ndarray], hf_dir: str) -> tuple[float, np.ndarray]:
    """(seconds per step, eval-mode logits before training); writes the initial weights to `hf_dir`."""
    keras.utils.clear_session()
    keras.utils.set_random_seed(0)
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        task = ClassificationTask.build(config, N_CLASS, scope="rte", dtype="float32")
        optimizer = build_optimizer(task, RUN)
        trainer = Trainer(strategy, task, optimizer, FLAGS.batch_size, jit_compile=True)
    export(task.checkpoint_view(), hf_dir, to="hf", overwrite=True)
    logits = np.asarray(task.model(batch, training=False))
    iterator = trainer.distribute(lambda _: tf.data.Dataset.from_tensors(batch).repeat())
    seconds = median_seconds(lambda: trainer.run_steps(iterator, FLAGS.steps), FLAGS.repeats) / FLAGS.steps
    return seconds, logits


def torch_step(hf_dir: str, batch: dict[str, np.ndarray]) -> tuple[float, np.ndarray]:
    """(seconds per step, eval-mode logits before training) of transformers + torch.optim.AdamW."""
    import torch
    from transformers import FunnelForSequenceClassification
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch.manual_seed(0)
    model, info = FunnelForSequenceClassification.from_pretrained(hf_dir, output_loading_info=True)
    if info["missing_keys"] or info["unexpected_keys"]:
        raise RuntimeError(f"not the same weights: {info}")
    args = dict(input_ids=torch.tensor(batch["token_ids"], dtype=torch.long),
                token_type_ids=torch.tensor(batch["segment_ids"], dtype=torch.long),
                attention_mask=torch.tensor(batch["padding_mask"], dtype=torch.long))
    with torch.no_grad():
        logits = model.eval()(**args).logits.numpy()
    model.train()
    labels = torch.tensor(batch["label"], dtype=torch.long)
    # fused: torch's fastest AdamW on CPU (one kernel per tensor, several times the default loop's speed).
    optimizer = torch.optim.AdamW(model.parameters(), lr=RUN.learning_rate, betas=(RUN.adam_beta1, RUN.adam_beta2),
                                  eps=RUN.adam_epsilon, weight_decay=RUN.weight_decay, fused=True)
    warmup, total = RUN.warmup_steps, RUN.train_steps  # linear warmup, then linear decay: the classifier's "poly"
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / (total - warmup))))

    def steps() -> None:
        for _ in range(FLAGS.steps):
            optimizer.zero_grad(set_to_none=True)
            loss = model(**args, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), RUN.clip)
            optimizer.step()
            schedule.step()
        loss.item()

    return median_seconds(steps, FLAGS.repeats) / FLAGS.steps, logits


def part_i() -> None:
    print(f"\n(i) finetuning train step, batch {FLAGS.batch_size} x length {FLAGS.seq_len}, {N_CLASS} classes, "
          f"float32, same initial weights; ours: XLA, {FLAGS.steps} steps per host call")
    print("model | transformers ex/s | ours ex/s | ours / transformers | max |diff| of initial logits")
    for name in FLAGS.models:
        config = named_config(name)
        batch = training_batch(config, FLAGS.batch_size, FLAGS.seq_len)
        with tempfile.TemporaryDirectory() as hf_dir:
            ours, our_logits = ours_step(config, batch, hf_dir)
            keras.utils.clear_session()  # free our weights and Adam slots before torch allocates its own
            theirs, their_logits = torch_step(hf_dir, batch)
        diff = float(np.abs(our_logits - their_logits).max())
        rate, hf_rate = FLAGS.batch_size / ours, FLAGS.batch_size / theirs
        print(f"{name} | {hf_rate:.2f} | {rate:.2f} | {rate / hf_rate:.2f} | {diff:.1e}", flush=True)


def part_ii() -> None:
    from transformers import BertTokenizerFast

    vocab = data_fetch.bert_uncased_vocab()
    sentences = [text for text, _ in data_fetch.movie_review_snippets()]
    pairs = list(zip(sentences[0::2], sentences[1::2]))
    pairs = pairs[:FLAGS.num_pairs] if FLAGS.num_pairs else pairs
    first, second = [a for a, _ in pairs], [b for _, b in pairs]
    n, seq_len, chunk = len(pairs), FLAGS.seq_len, FLAGS.convert_batch

    tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=True)
    encode = lambda: tokenizer(first, second, truncation=True, padding="max_length", max_length=seq_len,  # noqa: E731
                               return_tensors="np")
    hf_seconds = median_seconds(encode, FLAGS.repeats)

    preprocessor = Preprocessor.from_file(vocab, uncased=True, seq_len=seq_len)
    strings = tf.TensorSpec([None], tf.string)
    convert = tf.function(lambda a, b: preprocessor(a, b), input_signature=[strings, strings])

    def ours_batched() -> np.ndarray:
        """All three features as numpy (as the tokenizer returns them); the token ids."""
        parts = [{key: value.numpy() for key, value in convert(tf.constant(first[i:i + chunk]),
                                                               tf.constant(second[i:i + chunk])).items()}
                 for i in range(0, n, chunk)]
        return np.concatenate([part["token_ids"] for part in parts])

    batched_seconds = median_seconds(ours_batched, FLAGS.repeats)
    same = int((ours_batched() == encode()["input_ids"]).all(axis=1).sum())
    examples = [Example(f"train-{i}", a, b, "1" if i % 2 else "0") for i, (a, b) in enumerate(pairs)]
    with tempfile.TemporaryDirectory() as out:
        calls = iter(range(10 ** 6))  # a fresh file per call

        def ours_records() -> None:
            path = record_path(os.path.join(out, str(next(calls))), vocab, seq_len, "train")
            write_features(examples, ("0", "1"), False, preprocessor, path, settings={}, log=lambda _: None)

        records_seconds = median_seconds(ours_records, FLAGS.repeats)
    hf_rate = n / hf_seconds
    print(f"\n(ii) feature conversion of {n:,} real sentence pairs to length {seq_len}; pairs/s")
    print("implementation | pairs/s | ours / transformers")
    print(f"transformers BertTokenizerFast (__call__, truncation + padding, numpy) | {hf_rate:,.0f} | 1.00")
    print(f"ours Preprocessor (in-graph, batches of {chunk}) | {n / batched_seconds:,.0f} | "
          f"{hf_seconds / batched_seconds:.2f}")
    print(f"ours write_features (tokenize, pack, serialize, write TFRecord) | {n / records_seconds:,.0f} | "
          f"{hf_seconds / records_seconds:.2f}")
    print(f"rows with identical token ids (ours vs transformers): {same:,}/{n:,}", flush=True)


def main(argv: list[str]) -> None:
    del argv
    import torch
    import transformers

    cores = os.cpu_count()
    tf.config.threading.set_intra_op_parallelism_threads(cores)  # before TensorFlow runs its first op
    torch.set_num_threads(cores)
    print(f"machine: {machine_description()}; TensorFlow {tf.__version__} (Keras {keras.__version__}), "
          f"PyTorch {torch.__version__}, transformers {transformers.__version__}; {cores} threads each; "
          f"median of {FLAGS.repeats} after 1 warm-up")
    if FLAGS.part in ("all", "i"):
        part_i()
    if FLAGS.part in ("all", "ii"):
        part_ii()


if __name__ == "__main__":
    app.run(main)
