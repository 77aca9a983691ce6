"""Entity-level scores for token classification (NER, chunking), on the host; pure Python, no TensorFlow.

    scores = entity_scores(gold=[["B-PER", "I-PER", "O", "B-LOC"]], pred=[["B-PER", "I-PER", "O", "O"]])
    scores["precision"], scores["recall"], scores["f1"]      # 1.0, 0.5, 0.6667 (micro over entities)
    scores["accuracy"]                                       # 0.75 (tokens)
    scores["per_type"]["PER"]            # {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}

The numbers are conlleval's, and seqeval's in its default mode (checked against both in the tests), for tags in
IOB1, IOB2 (BIO) or IOBES, well-formed or not. An entity (chunk) is a maximal run of tokens in which every token
after the first *continues* its predecessor; a token continues one when

* its prefix is I- or E-, the predecessor's is B- or I-, and both have the same type.

So every non-O token belongs to exactly one chunk, and a chunk starts at any B- or S-, at an I- or E- after O,
after an E- or S-, or after a token of another type; it ends at E-, S-, O, or before a token that does not
continue it. An I- after O thus opens a chunk (IOB1 and lenient BIO reading), an E- without B- is a one-token
chunk, a type switch inside a run splits it. Sentences never share a chunk.

Precision = correct / predicted chunks, recall = correct / gold chunks, a chunk being correct when type, start
and end all match; F1 = 2PR / (P + R); an undefined ratio is 0.0 (as seqeval, which also warns). Per type the
same ratios, `support` the number of gold chunks; types are those seen in gold or predictions, sorted.
"""

from __future__ import annotations

from typing import Sequence

from funnel_tfm.data.conll import split_tag

Chunk = tuple[str, int, int]  # (type, start, end): tokens start .. end-1


def chunks(tags: Sequence[str]) -> list[Chunk]:
    """The chunks of one sentence's tags, in order.

        chunks(["B-PER", "I-PER", "O", "I-LOC", "B-LOC", "E-LOC"])
        # [("PER", 0, 2), ("LOC", 3, 4), ("LOC", 4, 6)]

    A tag that is not O or B-/I-/E-/S- plus a type is a ValueError naming it.
    """
    found: list[Chunk] = []
    start, previous = 0, ("O", "")
    for position, tag in enumerate(tags):
        prefix, kind = split_tag(tag)
        continues = previous[0] in ("B", "I") and prefix in ("I", "E") and kind == previous[1]
        if not continues:
            if previous[0] != "O":
                found.append((previous[1], start, position))
            start = position
        previous = (prefix, kind)
    if previous[0] != "O":
        found.append((previous[1], start, len(tags)))
    return found


def _ratios(correct: int, predicted: int, actual: int) -> dict[str, float]:
    precision = correct / predicted if predicted else 0.0
    recall = correct / actual if actual else 0.0
    # The same operations in the same order as seqeval (2·P·R / (P + R)), so the floats agree bit for bit.
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def _check_shapes(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> None:
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences and {len(pred)} predicted; expected the same number")
    for number, (gold_tags, pred_tags) in enumerate(zip(gold, pred)):
        if len(gold_tags) != len(pred_tags):
            raise ValueError(f"sentence {number}: {len(gold_tags)} gold tags and {len(pred_tags)} predicted; "
                             f"expected one prediction per token")


def _chunk_set(sentences: Sequence[Sequence[str]]) -> set[tuple[int, str, int, int]]:
    """Every chunk of every sentence as (sentence, type, start, end)."""
    return {(number, *chunk) for number, tags in enumerate(sentences) for chunk in chunks(tags)}


def _count_by_type(found: set[tuple[int, str, int, int]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, kind, _, _ in found:
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def entity_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict:
    """Micro precision / recall / F1 over entities, token accuracy, and per-type scores (see the module doc).

        entity_scores([["B-PER", "O"]], [["B-PER", "O"]])
        # {"precision": 1.0, "recall": 1.0, "f1": 1.0, "accuracy": 1.0,
        #  "per_type": {"PER": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}}}

    `gold` and `pred` hold one tag list per sentence, of equal lengths (else a ValueError); no token gives
    accuracy 0.0.
    """
    _check_shapes(gold, pred)
    gold_chunks, pred_chunks = _chunk_set(gold), _chunk_set(pred)
    correct = gold_chunks & pred_chunks
    actual, predicted, hits = _count_by_type(gold_chunks), _count_by_type(pred_chunks), _count_by_type(correct)
    per_type = {kind: {**_ratios(hits.get(kind, 0), predicted.get(kind, 0), actual.get(kind, 0)),
                       "support": actual.get(kind, 0)}
                for kind in sorted(actual.keys() | predicted.keys())}
    tokens = sum(len(tags) for tags in gold)
    right = sum(g == p for gold_tags, pred_tags in zip(gold, pred) for g, p in zip(gold_tags, pred_tags))
    return {**_ratios(len(correct), len(pred_chunks), len(gold_chunks)),
            "accuracy": right / tokens if tokens else 0.0, "per_type": per_type}
