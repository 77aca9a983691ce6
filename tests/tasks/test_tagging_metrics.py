"""Entity-level tagging metrics against seqeval (default mode) and the CoNLL scorer conlleval.pl.

The real data is the CoNLL-2000 chunking sample (gold + a chunker's predictions) and conlleval.pl, both from
seqeval 1.2.2's sdist (data_fetch). The random part covers IOB2, IOB1 and IOBES, well-formed and ill-formed
(I- after O, E- without B-, type switches inside a chunk, S- inside a chunk). The sdist carries conlleval's script
but no conlleval outputs, so conlleval.pl is run here (with perl) on the sample and on random IOB1/IOB2 files;
not on IOBES, which conlleval.pl predates (it has no S- rule and would merge "S-X S-X" into one chunk).
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
import warnings

import pytest

seqeval_metrics = pytest.importorskip("seqeval.metrics")
from seqeval.metrics.sequence_labeling import get_entities  # noqa: E402

from funnel_tfm.data import data_fetch  # noqa: E402
from funnel_tfm.data.conll import Sentence, read_conll, write_conll  # noqa: E402
from funnel_tfm.tasks.tagging_metrics import chunks, entity_scores  # noqa: E402

pytestmark = pytest.mark.smoke

TYPES = ("PER", "LOC", "ORG", "GPE-LOC")  # one type with a hyphen: the type is everything after the prefix's "-"
PREFIXES = {"IOB2": "BI", "IOB1": "BI", "IOBES": "BIES"}
AVERAGE_ROWS = ("micro avg", "macro avg", "weighted avg")


# ------------------------------------------------------------------------------------------------ helpers
def seqeval_scores(gold: list[list[str]], pred: list[list[str]]) -> dict:
    """entity_scores' dict, computed by seqeval."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # UndefinedMetricWarning for types never predicted (scores 0.0, as ours)
        report = seqeval_metrics.classification_report(gold, pred, output_dict=True)
        scores = {"precision": seqeval_metrics.precision_score(gold, pred),
                  "recall": seqeval_metrics.recall_score(gold, pred),
                  "f1": seqeval_metrics.f1_score(gold, pred),
                  "accuracy": seqeval_metrics.accuracy_score(gold, pred)}
    scores["per_type"] = {kind: {"precision": row["precision"], "recall": row["recall"], "f1": row["f1-score"],
                                 "support": int(row["support"])}
                          for kind, row in report.items() if kind not in AVERAGE_ROWS}
    micro = report["micro avg"]
    assert (micro["precision"], micro["recall"], micro["f1-score"]) == pytest.approx(
        (scores["precision"], scores["recall"], scores["f1"]), abs=1e-12)
    return scores


def assert_scores_equal(ours: dict, expected: dict) -> None:
    assert set(ours) == set(expected) == {"precision", "recall", "f1", "accuracy", "per_type"}
    for key in ("precision", "recall", "f1", "accuracy"):
        assert ours[key] == pytest.approx(expected[key], abs=1e-12), key
    assert list(ours["per_type"]) == list(expected["per_type"])  # same types, same (sorted) order
    for kind, row in expected["per_type"].items():
        assert ours["per_type"][kind]["support"] == row["support"], kind
        for key in ("precision", "recall", "f1"):
            assert ours["per_type"][kind][key] == pytest.approx(row[key], abs=1e-12), (kind, key)


def well_formed(rng: random.Random, scheme: str, length: int) -> list[str]:
    """A valid tag sequence: O tokens and chunks of 1-4 tokens, adjacent chunks of one type included."""
    tags: list[str] = []
    last_type = None  # type of the chunk that ends right before the next position, else None
    while len(tags) < length:
        if rng.random() < 0.4:
            tags.append("O")
            last_type = None
            continue
        kind, size = rng.choice(TYPES), rng.randint(1, 4)
        if scheme == "IOB2":
            chunk = ["B"] + ["I"] * (size - 1)
        elif scheme == "IOB1":  # B- only where a chunk follows one of the same type
            chunk = ["B" if kind == last_type else "I"] + ["I"] * (size - 1)
        else:
            chunk = ["S"] if size == 1 else ["B"] + ["I"] * (size - 2) + ["E"]
        tags += [f"{prefix}-{kind}" for prefix in chunk]
        last_type = kind
    return tags[:length]  # a cut last chunk is an ill-formed ending in IOBES (B- without E-)


def corrupted(rng: random.Random, scheme: str, tags: list[str], rate: float) -> list[str]:
    """Each tag replaced at `rate` by a random tag of the scheme: I- after O, E- without B-, type switches..."""
    choices = ["O"] + [f"{p}-{t}" for p in PREFIXES[scheme] for t in TYPES]
    out = list(tags)
    for position in range(len(out)):
        roll = rng.random()
        if roll < rate:
            out[position] = rng.choice(choices)
        elif roll < 1.5 * rate and out[position] != "O":  # keep the prefix, switch the type
            out[position] = f"{out[position][0]}-{rng.choice(TYPES)}"
    return out


def random_corpus(rng: random.Random, scheme: str, num_sentences: int) -> tuple[list[list[str]], list[list[str]]]:
    gold_rate, pred_rate = rng.choice([(0.0, 0.1), (0.0, 0.4), (0.1, 0.2), (0.5, 1.0)])
    gold, pred = [], []
    for _ in range(num_sentences):
        tags = well_formed(rng, scheme, rng.randint(1, 25))
        gold_tags = corrupted(rng, scheme, tags, gold_rate)
        gold.append(gold_tags)
        pred.append(corrupted(rng, scheme, gold_tags, pred_rate))
    return gold, pred


def as_inclusive(found: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    return [(kind, start, end - 1) for kind, start, end in found]  # seqeval's end is the last token


# ------------------------------------------------------------------------------------------------ seqeval
def test_real_conll2000_sample_equals_seqeval():
    path = data_fetch.conll2000_chunking_sample()
    gold = [list(s.tags) for s in read_conll(path, tag_column=2)]
    pred = [list(s.tags) for s in read_conll(path, tag_column=3)]
    ours = entity_scores(gold, pred)
    assert_scores_equal(ours, seqeval_scores(gold, pred))
    assert sum(row["support"] for row in ours["per_type"].values()) == 459  # conlleval: "with 459 phrases"
    assert ours["f1"] == pytest.approx(0.7434869739478958, abs=1e-15)


@pytest.mark.parametrize("scheme", ["IOB2", "IOB1", "IOBES"])
def test_random_sequences_equal_seqeval(scheme):
    rng = random.Random(f"tagging-{scheme}")
    sentences = 0
    for trial in range(40):
        gold, pred = random_corpus(rng, scheme, num_sentences=rng.randint(1, 60))
        sentences += len(gold)
        for tags in gold + pred:
            assert as_inclusive(chunks(tags)) == get_entities(tags), tags
        assert_scores_equal(entity_scores(gold, pred), seqeval_scores(gold, pred))
    assert sentences > 1000


@pytest.mark.parametrize("gold, pred", [
    ([["O", "O"]], [["O", "O"]]),                                  # no entity anywhere: every ratio 0.0
    ([["B-PER", "O"]], [["O", "O"]]),                              # nothing predicted
    ([["O", "O"]], [["I-PER", "E-LOC"]]),                          # nothing to find
    ([["I-PER", "I-PER", "B-PER", "E-PER", "S-PER"]], [["B-PER", "I-LOC", "I-LOC", "E-LOC", "S-PER"]]),
    ([["B-PER"], ["I-PER"]], [["B-PER"], ["I-PER"]]),              # sentences never share a chunk
])
def test_edge_cases_equal_seqeval(gold, pred):
    assert_scores_equal(entity_scores(gold, pred), seqeval_scores(gold, pred))


def test_chunk_rules_on_ill_formed_sequences():
    assert chunks(["O", "I-PER", "I-PER"]) == [("PER", 1, 3)]                  # I- after O opens a chunk
    assert chunks(["E-PER", "E-PER"]) == [("PER", 0, 1), ("PER", 1, 2)]        # E- without B-: one token each
    assert chunks(["B-PER", "I-LOC", "E-LOC"]) == [("PER", 0, 1), ("LOC", 1, 3)]  # a type switch splits the run
    assert chunks(["B-PER", "S-PER", "I-PER"]) == [("PER", 0, 1), ("PER", 1, 2), ("PER", 2, 3)]
    assert chunks(["I-PER", "B-PER", "I-PER"]) == [("PER", 0, 1), ("PER", 1, 3)]  # IOB1's B- between chunks


def test_bad_input_is_an_error_naming_it():
    with pytest.raises(ValueError, match="'X-PER'"):
        entity_scores([["X-PER"]], [["O"]])
    with pytest.raises(ValueError, match="sentence 1: 2 gold tags and 1 predicted"):
        entity_scores([["O"], ["O", "O"]], [["O"], ["O"]])
    with pytest.raises(ValueError, match="2 gold sentences and 1 predicted"):
        entity_scores([["O"], ["O"]], [["O"]])


# ------------------------------------------------------------------------------------------------ conlleval.pl
def conlleval(path: str) -> dict:
    """conlleval.pl's totals and per-type (precision, recall, F1 in %, found) for a `word gold pred` file."""
    perl = shutil.which("perl")
    if perl is None:
        pytest.skip("perl is not installed")
    with open(path, "rb") as handle:
        output = subprocess.run([perl, data_fetch.conlleval_script()], stdin=handle, capture_output=True,
                                check=True, timeout=120).stdout.decode("utf-8")
    counts = re.search(r"processed (\d+) tokens with (\d+) phrases; found: (\d+) phrases; correct: (\d+)", output)
    totals = re.search(r"accuracy:\s*([\d.]+)%; precision:\s*([\d.]+)%; recall:\s*([\d.]+)%; FB1:\s*([\d.]+)", output)
    per_type = {m[0]: (float(m[1]), float(m[2]), float(m[3]), int(m[4])) for m in re.findall(
        r"^\s*(\S+): precision:\s*([\d.]+)%; recall:\s*([\d.]+)%; FB1:\s*([\d.]+)\s+(\d+)$", output, re.M)}
    return {"tokens": int(counts[1]), "gold": int(counts[2]), "found": int(counts[3]), "correct": int(counts[4]),
            "totals": tuple(float(x) for x in totals.groups()), "per_type": per_type}


def assert_same_as_conlleval(path: str, gold: list[list[str]], pred: list[list[str]]) -> None:
    ours, theirs = entity_scores(gold, pred), conlleval(path)
    found = [chunk for tags in pred for chunk in chunks(tags)]
    assert theirs["tokens"] == sum(map(len, gold))
    assert theirs["gold"] == sum(row["support"] for row in ours["per_type"].values())
    assert theirs["found"] == len(found)
    assert theirs["correct"] == round(ours["precision"] * len(found))
    percent = 0.005 + 1e-9  # conlleval prints two decimals
    expected = (ours["accuracy"], ours["precision"], ours["recall"], ours["f1"])
    assert theirs["totals"] == pytest.approx(tuple(100 * x for x in expected), abs=percent)
    assert set(theirs["per_type"]) == set(ours["per_type"])
    for kind, (precision, recall, f1, num_found) in theirs["per_type"].items():
        row = ours["per_type"][kind]
        assert (precision, recall, f1) == pytest.approx((100 * row["precision"], 100 * row["recall"],
                                                         100 * row["f1"]), abs=percent), kind
        assert num_found == sum(chunk[0] == kind for chunk in found), kind


def test_real_conll2000_sample_equals_conlleval():
    path = data_fetch.conll2000_chunking_sample()
    gold = [list(s.tags) for s in read_conll(path, tag_column=2)]
    pred = [list(s.tags) for s in read_conll(path, tag_column=3)]
    assert_same_as_conlleval(path, gold, pred)


@pytest.mark.parametrize("scheme", ["IOB2", "IOB1"])
def test_random_sequences_written_by_write_conll_equal_conlleval(scheme, tmp_path):
    rng = random.Random(f"conlleval-{scheme}")
    for trial in range(8):
        gold, pred = random_corpus(rng, scheme, num_sentences=rng.randint(20, 80))
        sentences = [Sentence(tuple(f"w{i}" for i in range(len(tags))), tuple(tags), 1) for tags in gold]
        path = str(tmp_path / f"{trial}.txt")
        write_conll(path, sentences, pred)
        assert_same_as_conlleval(path, gold, pred)
