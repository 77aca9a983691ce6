"""Real TriviaQA questions and their real evidence documents, converted to SQuAD v2.0 layout, through the SQuAD
reader, the sliding windows, the official-number scorer and the post-processing.

Data: the allennlp 0.9.0 wheel's `allennlp/tests/fixtures/data/triviaqa-sample.tgz` (fetched offline by URL and
sha256, see test_squad_eval). Its `qa/{web,wikipedia}-{train,dev}.json` hold 11 question entries, 9 distinct
questions (tc_3 and tc_33 are in a web and a wikipedia file), with 19 evidence documents (10 Wikipedia articles
under `evidence/wikipedia/`, 9 web pages under `evidence/web/`), 580 to 88,000 characters, 111,414 BERT-uncased
tokens in all. Every (question, own document) pair has the answer string in it: 19 REAL answerable pairs.

The contexts are whole documents, up to 17,430 tokens, so one question has up to 158 windows at
max_seq_length 128: that is the point. To have unanswerable questions as well, each question is also asked of
the documents of the next question (19 SYNTHETIC pairs, "foreign" below); the same rule decides whether such a
pair is answerable (the answer string occurs: only "Chicago" in the Super Bowl XX article) or not (18 pairs).
38 pairs in all: 20 answerable, 18 unanswerable.
"""

from __future__ import annotations

import io
import json
import re
import tarfile

import numpy as np
import pytest

from funnel_tfm.data import data_fetch
from funnel_tfm.data.squad_data import (ContextTokens, SquadFeature, answer_token_span, build_features, doc_windows,
                                        feature_index, read_squad, tokenize_contexts)
from funnel_tfm.data.tokenization import Tokenizer
from funnel_tfm.tasks.squad_metrics import evaluate, normalize_answer
from funnel_tfm.tasks.squad_postprocess import make_predictions
from test_squad_eval import ALLENNLP_WHEEL, official_v2, oracle_v2, wheel_member  # noqa: F401 (a fixture)

TRIVIAQA_SAMPLE = "allennlp/tests/fixtures/data/triviaqa-sample.tgz"
MAX_QUERY_LENGTH = 64
DOC_STRIDE = 128


# ------------------------------------------------------------------------------------------- the conversion
def triviaqa_sample() -> tuple[list[dict], dict[str, str]]:
    """(questions, documents) of the wheel's TriviaQA sample.

    questions: each distinct QuestionId once, in the order of first appearance in `qa/*.json` (files sorted by
    name), as the TriviaQA entry (`Question`, `Answer` with `Value` / `Aliases`) plus "documents": the `Filename`s
    of its `EntityPages` (under evidence/wikipedia/) and `SearchResults` (under evidence/web/), from every file
    that asks it, without repeats. documents: `Filename` -> the document's text (UTF-8)."""
    with tarfile.open(fileobj=io.BytesIO(wheel_member(ALLENNLP_WHEEL, TRIVIAQA_SAMPLE))) as archive:
        files = {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}
    questions: dict[str, dict] = {}
    documents: dict[str, str] = {}
    for name in sorted(n for n in files if n.startswith("qa/") and n.endswith(".json")):
        for entry in json.loads(files[name])["Data"]:
            question = questions.setdefault(entry["QuestionId"], {**entry, "documents": []})
            for folder, key in (("wikipedia", "EntityPages"), ("web", "SearchResults")):
                for page in entry.get(key, []):
                    filename = page["Filename"]
                    text = files[f"evidence/{folder}/{filename}"].decode("utf-8")
                    assert documents.setdefault(filename, text) == text, f"two documents named {filename}"
                    if filename not in question["documents"]:
                        question["documents"].append(filename)
    return list(questions.values()), documents


def find_answer(text: str, answer: dict) -> tuple[int, str] | None:
    """(character offset, text) of the first occurrence in `text` of the answer's `Value` or any of its `Aliases`,
    as a whole word or words (no letter or digit right before or after it: "30s" is not found in "1930s"):
    case-sensitive first, case-insensitively only when nothing matched case-sensitively. The earliest offset
    wins, the longest string at the same offset ("York, England" before "York"). None when nothing occurs.
    (The `Normalized*` forms have no offsets in the text, so they are not searched.)"""
    candidates = list(dict.fromkeys([answer["Value"], *answer["Aliases"]]))
    for flags in (0, re.IGNORECASE):
        found = [match for candidate in candidates if candidate.strip()
                 for match in [re.search(r"(?<!\w)" + re.escape(candidate) + r"(?!\w)", text, flags)] if match]
        if found:
            best = min(found, key=lambda match: (match.start(), -len(match.group())))
            return best.start(), best.group()
    return None


def triviaqa_to_squad(questions: list[dict], documents: dict[str, str], foreign: bool = True) -> dict:
    """SQuAD v2.0 layout of the sample: one article per question, one paragraph per (question, document) pair,
    the whole document as the context and the pair's id `<QuestionId>--<Filename>`. The answer is `find_answer`'s
    occurrence at its real character offset; a pair without one is unanswerable (`is_impossible`).

    foreign: also ask each question of the documents of the next question (the last one: of the first one's) that
    are not its own (synthetic pairs, mostly unanswerable)."""
    data = []
    for q, question in enumerate(questions):
        asked = list(question["documents"])
        if foreign:
            asked += [f for f in questions[(q + 1) % len(questions)]["documents"] if f not in asked]
        paragraphs = []
        for filename in asked:
            context = documents[filename]
            found = find_answer(context, question["Answer"])
            qa = {"id": f"{question['QuestionId']}--{filename}", "question": question["Question"],
                  "answers": [] if found is None else [{"text": found[1], "answer_start": found[0]}],
                  "is_impossible": found is None}
            paragraphs.append({"context": context, "qas": [qa]})
        data.append({"title": question["QuestionId"], "paragraphs": paragraphs})
    return {"version": "v2.0", "data": data}


def entries(dataset: dict) -> list[tuple[str, dict]]:
    """(context, question entry) pairs of a SQuAD file."""
    return [(p["context"], qa) for article in dataset["data"] for p in article["paragraphs"] for qa in p["qas"]]


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def sample() -> tuple[list[dict], dict[str, str]]:
    return triviaqa_sample()


@pytest.fixture(scope="module")
def dataset(sample) -> dict:
    return triviaqa_to_squad(*sample)


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.from_file(data_fetch.bert_uncased_vocab())


@pytest.fixture(scope="module")
def squad(tmp_path_factory, dataset):
    path = tmp_path_factory.mktemp("triviaqa") / "triviaqa-v2.0.json"
    path.write_text(json.dumps(dataset, ensure_ascii=False), encoding="utf-8")
    return read_squad(str(path), is_training=True, version="v2")


@pytest.fixture(scope="module")
def contexts(squad, tokenizer) -> list[ContextTokens]:
    return tokenize_contexts(squad.contexts, tokenizer)


@pytest.fixture(scope="module", params=[64, 128, 512])
def windows(request, squad, contexts, tokenizer) -> tuple[int, list[SquadFeature], dict[str, int]]:
    """(max_seq_length, training features, counts) at 128 (windows shorter than the stride: they do not overlap)
    and 512 (windows overlap by ~360 tokens); and at 64, where a window boundary cuts one real answer (no size
    from 68 to 156 cuts any)."""
    features, counts = build_features(squad, contexts, tokenizer, max_seq_length=request.param,
                                      max_query_length=MAX_QUERY_LENGTH, doc_stride=DOC_STRIDE, is_training=True)
    return request.param, features, counts


def by_example(features: list[SquadFeature]) -> dict[int, list[SquadFeature]]:
    grouped: dict[int, list[SquadFeature]] = {}
    for feature in features:
        grouped.setdefault(feature.example_index, []).append(feature)
    return grouped


def token_text(context: str, tokens: ContextTokens, first: int, last: int) -> str:
    return context[tokens.starts[first]:tokens.ends[last]]


def gold_tokens(feature: SquadFeature) -> tuple[int, int]:
    """The paragraph tokens (first, last) a labelled window's start / end positions point at."""
    shift = feature.window_start - feature.doc_offset
    return feature.start_position + shift, feature.end_position + shift


# ------------------------------------------------------------------------------------------------ the data
def test_the_sample_is_what_the_docstring_says(sample, dataset, squad, contexts):
    questions, documents = sample
    assert len(questions) == 9 and len(documents) == 19
    assert sum(len(q["documents"]) for q in questions) == 19  # each document is evidence of one question
    assert sum(len(t) for t in documents.values()) == 542_327  # characters (620 KB of UTF-8)
    pairs = entries(dataset)
    own = [qa for _, qa in pairs if qa["id"].split("--", 1)[1] in
           next(q for q in questions if q["QuestionId"] == qa["id"].split("--", 1)[0])["documents"]]
    assert len(own) == 19 and all(not qa["is_impossible"] for qa in own)  # every real pair has its answer
    assert len({qa["id"] for _, qa in pairs}) == len(pairs) == squad.counts["questions"] == len(squad.examples)
    unanswerable = sum(qa["is_impossible"] for _, qa in pairs)
    assert (len(pairs), unanswerable, squad.counts["unanswerable"]) == (38, 18, 18)
    foreign_answerable = [qa["id"] for _, qa in pairs if not qa["is_impossible"] and qa not in own]
    assert foreign_answerable == ["tc_9--Super_Bowl_XX.txt"]
    # Real answers at their real offsets, e.g. Judi Dench's IMDb page and David Soul's article.
    answers = {qa["id"]: (qa["answers"][0]["text"], qa["answers"][0]["answer_start"])
               for _, qa in pairs if qa["answers"]}
    assert answers["tc_3--100/100_1957043.txt"] == ("York, England", 86)
    assert answers["tc_9--David_Soul.txt"] == ("Chicago, Illinois", 294)
    assert answers["tc_5--112/112_148.txt"][0] == "30's"  # an alias; never inside "1930s"
    lengths = sorted(len(c.ids) for c in contexts)
    assert lengths[0] < 200 and lengths[-1] > 17_000


def test_find_answer_rules():
    answer = {"Value": "York", "Aliases": ["York, England", "YORK"]}
    assert find_answer("New york; born in York, England.", answer) == (18, "York, England")
    assert find_answer("born in new york", answer) == (12, "york")  # case-insensitive only when needed
    assert find_answer("Yorkshire and the 1930s", answer) is None
    assert find_answer("the 1930s and the 30's", {"Value": "30s", "Aliases": ["30's"]}) == (18, "30's")


# ------------------------------------------------------------------------------------------------ windows
def test_every_answer_is_labelled_at_its_real_offset(windows, squad, contexts, tokenizer):
    max_seq_length, features, counts = windows
    grouped = by_example(features)
    assert counts["features"] == len(features) == sum(len(v) for v in grouped.values())
    assert sorted(grouped) == list(range(len(squad.examples)))
    queries = tokenizer.encode_batch([e.question for e in squad.examples])
    split = outside = labelled_questions = 0
    for index, example in enumerate(squad.examples):
        context, tokens = squad.contexts[example.context_index], contexts[example.context_index]
        query = queries[index][:MAX_QUERY_LENGTH]
        # The windows are doc_windows' and hold the paragraph's tokens.
        expected = doc_windows(len(tokens.ids), max_seq_length - len(query) - 3, DOC_STRIDE)
        own = grouped[index]
        assert [(f.window_start, f.window_length) for f in own] == expected
        for feature in own:
            assert feature.doc_offset == len(query) + 2
            assert feature.input_ids[:feature.doc_offset] == [tokenizer.cls_id] + query + [tokenizer.sep_id]
            start, end = feature.window_start, feature.window_start + feature.window_length
            assert feature.input_ids[feature.doc_offset:feature.doc_offset + feature.window_length] == \
                tokens.ids[start:end]
        # Every paragraph token is at its best context in exactly one window.
        best = np.zeros(len(tokens.ids), np.int64)
        for feature in own:
            best[feature.window_start:feature.window_start + feature.window_length] += feature.max_context
        assert np.all(best == 1), (example.qas_id, np.flatnonzero(best != 1)[:5])
        labelled = [f for f in own if not f.is_impossible]
        if example.is_impossible:
            assert not labelled
            continue
        # Every labelled window spells the answer; the others do not hold it whole.
        span = answer_token_span(tokens, example.answer_start, example.answer_start + len(example.answer_text))
        assert normalize_answer(token_text(context, tokens, *span)) == normalize_answer(example.answer_text)
        for feature in labelled:
            assert gold_tokens(feature) == span
            assert normalize_answer(token_text(context, tokens, *gold_tokens(feature))) == \
                normalize_answer(example.answer_text), example.qas_id
        for feature in own:
            holds = feature.window_start <= span[0] and span[1] < feature.window_start + feature.window_length
            assert holds == (not feature.is_impossible)
            if feature.is_impossible:
                assert feature.start_position == feature.end_position == 0
        if labelled:
            labelled_questions += 1
        elif any(f.window_start <= t < f.window_start + f.window_length for f in own for t in span):
            split += 1
        else:
            outside += 1
    answerable = sum(not e.is_impossible for e in squad.examples)
    assert labelled_questions + split + outside == answerable
    assert (counts["answers_split_across_windows"], counts["answers_outside_windows"]) == (split, outside)
    assert outside == 0  # the whole document is windowed
    if max_seq_length == 512:
        assert split == 0  # windows overlap by far more than any answer is long
    if max_seq_length == 64:
        # "Sir Henry Campbell-Bannerman", tokens 9847-9852 of the Prime Minister article, windows (9800, 50) and
        # (9850, 50): counted, and no window is labelled with it
        assert split == 1
    assert labelled_questions >= 0.8 * answerable
    print(f"max_seq_length={max_seq_length}: {len(features)} windows, {answerable} answerable pairs, "
          f"{labelled_questions} labelled, {split} split across windows")


# ------------------------------------------------------------------------------------------------ scoring
def gold_predictions(dataset: dict) -> dict[str, str]:
    return {qa["id"]: qa["answers"][0]["text"] if qa["answers"] else "" for _, qa in entries(dataset)}


def partly_wrong_predictions(dataset: dict) -> tuple[dict[str, str], dict[str, float]]:
    """By position: answerable pairs get the gold answer, nothing, the answer with the next words of the document
    (a partial match), or the document's first words; unanswerable ones nothing or the first words. No-answer
    probabilities on a coarse grid (ties matter to the threshold sweep)."""
    predictions, na_probs, seen = {}, {}, {True: 0, False: 0}
    for i, (context, qa) in enumerate(entries(dataset)):
        first_words = " ".join(context.split()[:3])
        k = seen[bool(qa["answers"])]
        seen[bool(qa["answers"])] += 1
        if qa["answers"]:
            text, start = qa["answers"][0]["text"], qa["answers"][0]["answer_start"]
            widened = text + " " + " ".join(context[start + len(text):].split()[:2])
            predictions[qa["id"]] = (text, "", widened, first_words)[k % 4]
        else:
            predictions[qa["id"]] = ("", first_words)[k % 2]
        na_probs[qa["id"]] = round((i * 0.37) % 1.0, 1)
    return predictions, na_probs


def test_gold_answers_score_100_with_the_official_numbers(oracle_v2, dataset):
    predictions = gold_predictions(dataset)
    ours = evaluate(dataset["data"], predictions)
    assert list(ours.items()) == list(official_v2(oracle_v2, dataset["data"], predictions).items())
    assert ours["exact"] == ours["f1"] == ours["HasAns_exact"] == ours["NoAns_exact"] == 100.0
    assert ours["total"] == len(entries(dataset)) and ours["NoAns_total"] >= 10
    na_probs = {qid: 0.0 if text else 1.0 for qid, text in predictions.items()}
    ours = evaluate(dataset["data"], predictions, na_probs, 0.5, precision_recall_ap=True)
    assert list(ours.items()) == list(official_v2(oracle_v2, dataset["data"], predictions, na_probs, 0.5,
                                                  pr=True).items())
    assert ours["best_exact"] == ours["best_f1"] == 100.0


def test_partly_wrong_answers_score_what_the_official_script_says(oracle_v2, dataset):
    predictions, na_probs = partly_wrong_predictions(dataset)
    for threshold in (1.0, 0.5, 0.0):
        ours = evaluate(dataset["data"], predictions, na_probs, threshold, precision_recall_ap=True)
        assert list(ours.items()) == list(official_v2(oracle_v2, dataset["data"], predictions, na_probs, threshold,
                                                      pr=True).items())
    plain = evaluate(dataset["data"], predictions)
    assert list(plain.items()) == list(official_v2(oracle_v2, dataset["data"], predictions).items())
    assert plain["HasAns_exact"] == 25.0 and 25.0 < plain["HasAns_f1"] < 60.0 and plain["NoAns_exact"] == 50.0
    print({key: round(value, 2) for key, value in plain.items()})


# ------------------------------------------------------------------------------------------------ post-processing
def beams_on_gold(features: list[SquadFeature]) -> dict[str, np.ndarray]:
    """Model outputs (start_n_top = end_n_top = 2, ends conditioned on starts) whose best beam is each labelled
    window's gold (start, end), log probs -0.1 each; decoys elsewhere: the window's first tokens at -2 to -3 each;
    cls_logits -5 on labelled windows, +5 on the others."""
    n = len(features)
    outputs = {"start_top_index": np.zeros((n, 2), np.int64), "start_top_log_probs": np.zeros((n, 2), np.float32),
               "end_top_index": np.zeros((n, 4), np.int64), "end_top_log_probs": np.zeros((n, 4), np.float32),
               "cls_logits": np.zeros(n, np.float32)}
    for f, feature in enumerate(features):
        d = feature.doc_offset
        if feature.is_impossible:
            starts, start_lps, ends, end_lps, cls = [d, d + 1], [-2.0, -2.5], [d, d + 2, d + 1, d + 2], \
                [-2.0, -3.0, -2.0, -3.0], 5.0
        else:
            starts, start_lps = [feature.start_position, d], [-0.1, -2.0]
            ends, end_lps = [feature.end_position, d + 1, d, d + 1], [-0.1, -2.0, -2.0, -3.0]
            cls = -5.0
        outputs["start_top_index"][f], outputs["start_top_log_probs"][f] = starts, start_lps
        outputs["end_top_index"][f], outputs["end_top_log_probs"][f] = ends, end_lps
        outputs["cls_logits"][f] = cls
    return outputs


def test_post_processing_finds_the_gold_answers(windows, squad, contexts, dataset, oracle_v2):
    max_seq_length, features, _ = windows
    index = feature_index(features, contexts, squad.examples)  # meant for eval features; the fields are the same
    answers = make_predictions(beams_on_gold(features), index, squad.contexts, n_best_size=5, max_answer_length=64)
    assert set(answers.predictions) == {e.qas_id for e in squad.examples}
    grouped = by_example(features)
    checked = answerable = 0
    for i, example in enumerate(squad.examples):
        labelled = [f for f in grouped[i] if not f.is_impossible]
        assert answers.null_odds[example.qas_id] == (-5.0 if labelled else 5.0)
        if example.is_impossible:
            continue
        answerable += 1
        at_best_context = [f for f in labelled if f.max_context[f.start_position - f.doc_offset]]
        if not at_best_context:  # the gold start's best window does not hold the whole answer: beams dropped
            continue
        checked += 1
        predicted = answers.predictions[example.qas_id]
        assert normalize_answer(predicted) == normalize_answer(example.answer_text), (example.qas_id, predicted)
        assert answers.nbest[example.qas_id][0]["text"] == predicted
        assert answers.nbest[example.qas_id][0]["probability"] > 0.9
    assert checked >= 0.8 * answerable
    if max_seq_length == 512:
        assert checked == answerable
    # The job's numbers for these predictions: every checked answer right, every unanswerable pair abstained.
    result = evaluate(dataset["data"], answers.predictions, answers.null_odds, 0.0)
    assert list(result.items()) == list(official_v2(oracle_v2, dataset["data"], answers.predictions,
                                                    answers.null_odds, 0.0).items())
    assert result["NoAns_exact"] == 100.0 and result["HasAns_exact"] >= 100.0 * checked / answerable - 1e-9
    print(f"max_seq_length={max_seq_length}: {checked} of {answerable} answerable pairs checked, "
          f"exact {result['exact']:.2f}")
