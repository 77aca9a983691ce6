r"""SQuAD speed, side by side in one run on this machine (float32, CPU): preprocessing and the finetuning step.

    python bench/squad_speed.py               # 3,000 questions; B4-4-4H768 and B6-6-6H768 at 4 x 512 (~9 min, 2 cores)
    python bench/squad_speed.py --models=B4-4-4H768 --steps=1 --repeats=1 --num_questions=200 --seq_len=128  # quick

Data: SYNTHETIC questions on REAL text. Paragraphs are runs of consecutive sentences of the State of the Union
addresses (`data_fetch.sotu_documents`, `split_sentences`), each ending at the sentence that reaches a seeded
50-450 words, so the longer ones need several windows; each question is one sentence (6-40 words) of its paragraph
with one number (else one word of 5+ letters) replaced by "what", and that number or word is the answer (at most
`--questions_per_paragraph` per paragraph; SQuAD 2.0's train set has about 6.8). The set is written as a SQuAD v2
json file and read back with `read_squad` (which checks every answer offset).

(i)  Preprocessing, questions/s (training features, max_query_length 64, doc_stride 128, length --seq_len): ours is
     `tokenize_contexts` (each paragraph once, `Tokenizer.encode_with_offsets`) + `build_features`, then also
     `write_squad_records` (serialize, write the TFRecord; timed apart on the same features and added to the
     features' time); transformers' is BertTokenizerFast from the same vocab called as run_qa.py's
     `prepare_train_features` calls it (question + context pairs, truncation="only_second", stride=128 (less where
     --seq_len leaves no room), overflowing tokens, offsets, padding to --seq_len) and its answer labelling loop
     over the offsets (written here). Both start from the same in-memory questions; transformers writes nothing
     (run_qa.py's `datasets` cache is not counted). Note the stride: ours (the original's `doc_stride`) is the step
     between windows, transformers' `stride` is their overlap, so ours makes more windows of a paragraph that
     overflows by more than 128 tokens; the feature counts of both are printed, and the questions that are one
     window in both are checked for identical token ids and answer positions.
(ii) Finetuning step, examples/s: ours is the real SQuAD step (`Trainer` + `SquadTask` + `build_optimizer`:
     forward, the original's XLNet-style head and loss (start, end conditioned on the true start, answer class),
     backward, clipping, AdamW update with the SQuAD recipe's layer-wise decay; XLA, `--steps` steps per host
     call); transformers' is FunnelForQuestionAnswering + torch.optim.AdamW (fused): forward, its loss, backward,
     clip_grad_norm_, step, schedule. The backbone (encoder + decoder) is THE SAME WEIGHTS: ours is exported with
     `export(..., to="hf")`, which writes a FunnelModel (transformers has no class for the original's SQuAD head,
     so the head's weights are reported skipped, checked here) and FunnelForQuestionAnswering loads it with its
     `qa_outputs` layer (one linear d_model -> 2) at random init; the max |diff| of the two decoders' eval-mode
     outputs is printed. The heads differ (ours: ~4 d_model^2 more weights, and a 2 d_model -> d_model layer at
     every position for the end conditioned on the start), so this compares the whole finetuning step as each
     library ships it. Batch: random tokens, no padding, an answer in the second half, every fourth row
     unanswerable. `--batch_size` is 4 and `--steps` 1 by default: a step at 8 x 512 on two cores takes tens of
     seconds. Dropout is on in both.

Ratios are ours / transformers (> 1: we are faster). TensorFlow and torch both use all of the machine's cores.
Needs the test extras (torch, transformers).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from funnel_tfm.analysis.timing import machine_description, median_seconds, random_inputs  # noqa: E402
from funnel_tfm.checkpoints.loading import export, from_model  # noqa: E402
from funnel_tfm.config import named_config  # noqa: E402
from funnel_tfm.data import data_fetch  # noqa: E402
from funnel_tfm.data.squad_data import SquadFile, build_features, read_squad, tokenize_contexts  # noqa: E402
from funnel_tfm.data.squad_records import train_record_path, write_squad_records  # noqa: E402
from funnel_tfm.data.tokenization import Tokenizer  # noqa: E402
from funnel_tfm.tasks.squad import SquadTask  # noqa: E402
from funnel_tfm.training.loop import build_optimizer  # noqa: E402
from funnel_tfm.training.squad_job import SquadRun  # noqa: E402
from funnel_tfm.training.trainer import Trainer  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_enum("part", "all", ["all", "i", "ii"], "Which comparison to run.")
flags.DEFINE_list("models", ["B4-4-4H768", "B6-6-6H768"], "Named configs for part (ii).")
flags.DEFINE_integer("seq_len", 512, "Sequence length (both parts).")
flags.DEFINE_integer("batch_size", 4, "Training batch size.")
flags.DEFINE_integer("steps", 1, "Training steps per timed call (ours: one host call).")
flags.DEFINE_integer("repeats", 2, "Timed repetitions after one warm-up; the median is reported.")
flags.DEFINE_integer("num_questions", 3000, "Questions for part (i).")
flags.DEFINE_integer("questions_per_paragraph", 5, "At most this many questions about one paragraph.")

MAX_QUERY_LENGTH = 64
DOC_STRIDE = 128
# The SQuAD recipe of squad_job's docstring (learning rate, layer-wise decay); the rest are the original's defaults
# (AdamW beta2 0.99, eps 1e-6, clip 1.0, no weight decay), which the torch side copies.
RUN = SquadRun(data_dir="", output_dir="", model_dir="", tokenizer_path="", learning_rate=3e-5,
               lr_layer_decay_rate=0.75, train_steps=8000, warmup_steps=1000)

# An answer: a number (kept whole with its separators) or else a word of five letters or more.
_NUMBER = re.compile(r"\d[\d,.]*\d|\d")
_WORD = re.compile(r"\b[A-Za-z]{5,}\b")


# ------------------------------------------------------------------------------------------------ the data set
def _question(sentence: str, rng: np.random.Generator) -> tuple[str, int, int] | None:
    """(question, answer start, answer end) in `sentence`, or None when it has nothing to ask about or would make
    a question longer than the query budget (transformers cannot truncate the question under only_second)."""
    if not 6 <= len(sentence.split()) <= 40:
        return None
    candidates = list(_NUMBER.finditer(sentence)) or list(_WORD.finditer(sentence))
    if not candidates:
        return None
    match = candidates[rng.integers(len(candidates))]
    question = (sentence[:match.start()] + "what" + sentence[match.end():]).rstrip(" .!;:") + "?"
    return question, match.start(), match.end()


def _paragraphs(documents: list[str], rng: np.random.Generator):
    """Yields paragraphs as lists of consecutive sentences, each of a seeded 50-450 words."""
    for document in documents:
        sentences, words, target = [], 0, int(rng.integers(50, 451))
        for sentence in data_fetch.split_sentences(document):
            sentences.append(sentence)
            words += len(sentence.split())
            if words >= target:
                yield sentences
                sentences, words, target = [], 0, int(rng.integers(50, 451))


def synthetic_squad_json(num_questions: int, per_paragraph: int, seed: int = 0) -> dict:
    """A SQuAD v2 json of SYNTHETIC questions on REAL paragraphs (see the module docstring)."""
    rng = np.random.default_rng(seed)
    documents = data_fetch.sotu_documents()
    documents = [documents[i] for i in rng.permutation(len(documents))]  # every era, not the 1790s first
    paragraphs, count = [], 0
    for sentences in _paragraphs(documents, rng):
        context = " ".join(sentences)
        offsets = np.cumsum([0] + [len(s) + 1 for s in sentences[:-1]])  # where each sentence starts in context
        qas = []
        for which in rng.permutation(len(sentences)):
            asked = _question(sentences[which], rng)
            if asked is None:
                continue
            question, start, end = asked
            begin = int(offsets[which]) + start
            qas.append({"id": f"q{count + len(qas)}", "question": question, "is_impossible": False,
                        "answers": [{"text": context[begin:int(offsets[which]) + end], "answer_start": begin}]})
            if len(qas) == per_paragraph or count + len(qas) == num_questions:
                break
        if qas:
            paragraphs.append({"context": context, "qas": qas})
            count += len(qas)
        if count == num_questions:
            break
    return {"version": "v2.0", "data": [{"title": "sotu", "paragraphs": paragraphs}]}


def synthetic_squad(num_questions: int, per_paragraph: int) -> SquadFile:
    """The set read back through `read_squad`, which checks every answer offset."""
    with tempfile.TemporaryDirectory() as out:
        path = os.path.join(out, "synthetic-sotu-v2.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(synthetic_squad_json(num_questions, per_paragraph), handle)
        return read_squad(path, is_training=True, version="v2")


# ----------------------------------------------------------------------------------- transformers' preprocessing
def hf_stride(seq_len: int) -> int:
    """run_qa.py's stride, 128, where the length leaves room for it: the tokenizers refuse an overlap as long as
    the window (at --seq_len=128 the window after a long question is shorter than 128 tokens)."""
    return min(DOC_STRIDE, (seq_len - MAX_QUERY_LENGTH - 3) // 2)


def hf_encode(tokenizer, questions: list[str], contexts: list[str], seq_len: int):
    """run_qa.py's tokenizer call of `prepare_train_features`."""
    return tokenizer(questions, contexts, truncation="only_second", max_length=seq_len, stride=hf_stride(seq_len),
                     return_overflowing_tokens=True, return_offsets_mapping=True, padding="max_length")


def hf_label(encoded, cls_id: int, answer_starts: list[int], answer_ends: list[int]) -> tuple[list[int], list[int]]:
    """run_qa.py's labelling: per feature, the tokens of the answer's first and last character, or CLS when the
    window does not hold the whole answer."""
    starts, ends = [], []
    for i, offsets in enumerate(encoded["offset_mapping"]):
        cls_index = encoded["input_ids"][i].index(cls_id)
        sequence_ids = encoded.sequence_ids(i)
        question = encoded["overflow_to_sample_mapping"][i]
        start_char, end_char = answer_starts[question], answer_ends[question]
        first = sequence_ids.index(1)
        last = len(sequence_ids) - 1 - sequence_ids[::-1].index(1)
        if not (offsets[first][0] <= start_char and offsets[last][1] >= end_char):
            starts.append(cls_index)
            ends.append(cls_index)
            continue
        while first < len(offsets) and offsets[first][0] <= start_char:
            first += 1
        while offsets[last][1] >= end_char:
            last -= 1
        starts.append(first - 1)
        ends.append(last + 1)
    return starts, ends


# ------------------------------------------------------------------------------------------------ part (i)
def part_i() -> None:
    from transformers import BertTokenizerFast

    vocab, seq_len = data_fetch.bert_uncased_vocab(), FLAGS.seq_len
    squad = synthetic_squad(FLAGS.num_questions, FLAGS.questions_per_paragraph)
    n, examples = len(squad.examples), squad.examples
    questions = [e.question for e in examples]
    contexts = [squad.contexts[e.context_index] for e in examples]  # run_qa.py's rows carry their paragraph
    answer_starts = [e.answer_start for e in examples]
    answer_ends = [e.answer_start + len(e.answer_text) for e in examples]

    hf = BertTokenizerFast(vocab=vocab, do_lower_case=True)
    hf_call_seconds = median_seconds(lambda: hf_encode(hf, questions, contexts, seq_len), FLAGS.repeats)
    last: dict = {}  # what the last timed call made: checked below without paying for another call

    def hf_features() -> None:
        last["encoded"] = hf_encode(hf, questions, contexts, seq_len)
        last["labels"] = hf_label(last["encoded"], hf.cls_token_id, answer_starts, answer_ends)

    hf_seconds = median_seconds(hf_features, FLAGS.repeats)

    ours = Tokenizer.from_file(vocab, uncased=True)
    tokenize_times: list[float] = []  # the tokenize_contexts part of each call, for where our time goes

    def our_features() -> None:
        begin = time.perf_counter()
        tokens = tokenize_contexts(squad.contexts, ours)
        tokenize_times.append(time.perf_counter() - begin)
        last["features"] = build_features(squad, tokens, ours, max_seq_length=seq_len,
                                          max_query_length=MAX_QUERY_LENGTH, doc_stride=DOC_STRIDE,
                                          is_training=True)[0]

    features_seconds = median_seconds(our_features, FLAGS.repeats)
    tokenize_seconds = statistics.median(tokenize_times[1:])  # after the warm-up, as median_seconds
    n_ours = len(last["features"])
    with tempfile.TemporaryDirectory() as out:
        calls = iter(range(10 ** 6))  # a fresh file per call

        def our_records() -> None:
            path = train_record_path(os.path.join(out, str(next(calls))), vocab, seq_len, MAX_QUERY_LENGTH, "v2", 0)
            write_squad_records(last["features"], path, is_training=True, meta={"num_examples": n_ours})

        # Timed apart on the same features (the features' time is above): a separate end-to-end call would double
        # the cost of this part for the same sum.
        records_seconds = features_seconds + median_seconds(our_records, FLAGS.repeats)

    encoded, (hf_starts, hf_ends), features = last["encoded"], last["labels"], last["features"]
    words = [len(c.split()) for c in squad.contexts]
    print(f"\n(i) SQuAD training features of {n:,} SYNTHETIC questions on {len(squad.contexts):,} REAL paragraphs "
          f"(State of the Union, {min(words)}-{max(words)} words, mean {np.mean(words):.0f}); length {seq_len}, "
          f"max_query_length {MAX_QUERY_LENGTH}, ours doc_stride {DOC_STRIDE} (step), transformers stride "
          f"{hf_stride(seq_len)} (overlap); questions/s")
    print("implementation | questions/s | features | ours / transformers (tokenizer + labelling)")
    n_hf = len(encoded["input_ids"])
    rows = [("transformers BertTokenizerFast call only (pairs, only_second, stride, offsets, padding)",
             hf_call_seconds, n_hf), ("transformers call + run_qa answer labelling", hf_seconds, n_hf),
            ("ours tokenize_contexts + build_features", features_seconds, n_ours),
            ("ours features + write_squad_records (serialize, write TFRecord)", records_seconds, n_ours)]
    for name, seconds, count in rows:
        print(f"{name} | {n / seconds:,.0f} | {count:,} | {hf_seconds / seconds:.2f}")
    print(f"of our features' time, tokenize_contexts (each of the {len(squad.contexts):,} paragraphs once, "
          f"encode_with_offsets): {tokenize_seconds / features_seconds:.0%}")
    print(f"questions with more than one window: ours {_multi_window(f.example_index for f in features):,}, "
          f"transformers {_multi_window(encoded['overflow_to_sample_mapping']):,}")
    same, single = _agreement(features, encoded, hf_starts, hf_ends)
    print(f"one-window questions with identical token ids and answer positions (ours vs transformers): "
          f"{same:,}/{single:,}", flush=True)


def _multi_window(question_of_feature) -> int:
    _, counts = np.unique(np.fromiter(question_of_feature, np.int64), return_counts=True)
    return int((counts > 1).sum())


def _agreement(features, encoded, hf_starts: list[int], hf_ends: list[int]) -> tuple[int, int]:
    """(same, compared): questions that are one window in both, whose token ids and labels agree."""
    ours = {}
    for feature in features:
        ours.setdefault(feature.example_index, []).append(feature)
    theirs = {}
    for i, question in enumerate(encoded["overflow_to_sample_mapping"]):
        theirs.setdefault(question, []).append(i)
    single = [q for q in ours if len(ours[q]) == 1 and len(theirs.get(q, [])) == 1]
    same = sum(ours[q][0].input_ids == encoded["input_ids"][theirs[q][0]]
               and (ours[q][0].start_position, ours[q][0].end_position) == (hf_starts[theirs[q][0]],
                                                                             hf_ends[theirs[q][0]])
               for q in single)
    return same, len(single)


# ------------------------------------------------------------------------------------------------ part (ii)
def training_batch(config, batch_size: int, seq_len: int) -> dict[str, np.ndarray]:
    """Our SQuAD features of random tokens (unpadded rows: transformers pools a padded mask differently, see
    bench/model_speed.py): CLS, a question (segment 1, p_mask 1) in the first half, the context (segment 0) in the
    second, an answer of 1-10 tokens in the context, every fourth row unanswerable (labels at CLS)."""
    batch = random_inputs(config, batch_size, seq_len, pad_rows=False)
    rng = np.random.default_rng(1)
    half = seq_len // 2
    batch["segment_ids"] = np.where(batch["segment_ids"] == 1, 0, np.where(batch["segment_ids"] == 0, 1, 2))
    batch["segment_ids"] = batch["segment_ids"].astype(np.int32)
    p_mask = np.zeros((batch_size, seq_len), np.float32)
    p_mask[:, 1:half] = 1.0
    p_mask[:, -1] = 1.0  # the final SEP
    starts = rng.integers(half, seq_len - 11, batch_size)
    ends = starts + rng.integers(0, 10, batch_size)
    impossible = np.arange(batch_size) % 4 == 3
    batch.update(p_mask=p_mask, cls_index=np.zeros(batch_size, np.int32),
                 start_positions=np.where(impossible, 0, starts).astype(np.int32),
                 end_positions=np.where(impossible, 0, ends).astype(np.int32),
                 is_impossible=impossible.astype(np.float32), is_real_example=np.ones(batch_size, np.int32))
    return batch


def ours_step(config, batch: dict[str, np.ndarray], hf_dir: str) -> tuple[float, np.ndarray, int]:
    """(seconds per step, the decoder's eval-mode output before training, the head's weights that the export
    skipped); writes the initial weights to `hf_dir`."""
    keras.utils.clear_session()
    keras.utils.set_random_seed(0)
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        task = SquadTask.build(config, dtype="float32")
        optimizer = build_optimizer(task, RUN)
        trainer = Trainer(strategy, task, optimizer, FLAGS.batch_size, jit_compile=True)
    view = task.checkpoint_view()
    report = export(view, hf_dir, to="hf", overwrite=True)
    head_names = set(view.named_variables()) - set(from_model(task.model.backbone).named_variables())
    # FunnelModel must take every weight the SQuAD step uses except the head's; it has no place for the
    # sequence summary (the classifiers' pooler, unused here) either.
    unexpected = set(report.skipped) - head_names - {n for n in report.skipped if "/sequnece_summary/" in n}
    if unexpected or not head_names <= set(report.skipped):
        raise RuntimeError(f"export skipped {sorted(report.skipped)}, expected the SQuAD head {sorted(head_names)}")
    inputs = {key: batch[key] for key in ("token_ids", "segment_ids", "padding_mask")}
    hidden = np.asarray(task.model.backbone(inputs, training=False)["decoder_output"])
    iterator = trainer.distribute(lambda _: tf.data.Dataset.from_tensors(batch).repeat())
    seconds = median_seconds(lambda: trainer.run_steps(iterator, FLAGS.steps), FLAGS.repeats) / FLAGS.steps
    return seconds, hidden, len(head_names)


def torch_step(hf_dir: str, batch: dict[str, np.ndarray]) -> tuple[float, np.ndarray]:
    """(seconds per step, the decoder's eval-mode output before training) of transformers + torch AdamW."""
    import torch
    from transformers import FunnelForQuestionAnswering
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()  # the expected "newly initialized: qa_outputs" warning
    torch.manual_seed(0)
    model, info = FunnelForQuestionAnswering.from_pretrained(hf_dir, output_loading_info=True)
    if info["unexpected_keys"] or sorted(info["missing_keys"]) != ["qa_outputs.bias", "qa_outputs.weight"]:
        raise RuntimeError(f"not the same backbone weights: {info}")
    args = dict(input_ids=torch.tensor(batch["token_ids"], dtype=torch.long),
                token_type_ids=torch.tensor(batch["segment_ids"], dtype=torch.long),
                attention_mask=torch.tensor(batch["padding_mask"], dtype=torch.long))
    with torch.no_grad():
        hidden = model.eval().funnel(**args).last_hidden_state.numpy()
    model.train()
    labels = dict(start_positions=torch.tensor(batch["start_positions"], dtype=torch.long),
                  end_positions=torch.tensor(batch["end_positions"], dtype=torch.long))
    # fused: torch's fastest AdamW on CPU (one kernel per tensor, several times the default loop's speed).
    optimizer = torch.optim.AdamW(model.parameters(), lr=RUN.learning_rate, betas=(RUN.adam_beta1, RUN.adam_beta2),
                                  eps=RUN.adam_epsilon, weight_decay=RUN.weight_decay, fused=True)
    warmup, total = RUN.warmup_steps, RUN.train_steps  # linear warmup, then linear decay: our "poly"
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / (total - warmup))))

    def steps() -> None:
        for _ in range(FLAGS.steps):
            optimizer.zero_grad(set_to_none=True)
            loss = model(**args, **labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), RUN.clip)
            optimizer.step()
            schedule.step()
        loss.item()

    return median_seconds(steps, FLAGS.repeats) / FLAGS.steps, hidden


def part_ii() -> None:
    print(f"\n(ii) SQuAD finetuning train step, batch {FLAGS.batch_size} x length {FLAGS.seq_len}, float32, same "
          f"initial backbone (transformers' qa_outputs at random init; ours: the original's head); ours: XLA, "
          f"{FLAGS.steps} steps per host call, lr_layer_decay_rate {RUN.lr_layer_decay_rate}")
    print("model | transformers ex/s | ours ex/s | ours / transformers | max |diff| of initial decoder output | "
          "our head's weights not exported")
    for name in FLAGS.models:
        config = named_config(name)
        batch = training_batch(config, FLAGS.batch_size, FLAGS.seq_len)
        with tempfile.TemporaryDirectory() as hf_dir:
            ours, our_hidden, skipped = ours_step(config, batch, hf_dir)
            keras.utils.clear_session()  # free our weights and Adam slots before torch allocates its own
            theirs, their_hidden = torch_step(hf_dir, batch)
        diff = float(np.abs(our_hidden - their_hidden).max())
        rate, hf_rate = FLAGS.batch_size / ours, FLAGS.batch_size / theirs
        print(f"{name} | {hf_rate:.2f} | {rate:.2f} | {rate / hf_rate:.2f} | {diff:.1e} | {skipped}",
              flush=True)


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
