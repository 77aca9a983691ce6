"""The classifier's task readers on files laid out like the real GLUE / text-classification / IMDB downloads, the
user's own TSV / CSV / JSONL, every error case, and the real labelled data (VADER movie reviews, SpamAssassin)."""

from __future__ import annotations

import collections
import json
import os

import pytest

from funnel_tfm.data import data_fetch
from funnel_tfm.data.classifier_data import (ClassifierDataError, CustomFormat, Example, clean_web_text, get_task,
                                             task_names)

smoke = pytest.mark.smoke

MNLI_HEADER = ("index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
               "sentence2_parse\tsentence1\tsentence2")


def write(directory, name: str, text: str | bytes) -> str:
    path = os.path.join(str(directory), name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def tsv(*rows: str) -> str:
    return "".join(row + "\n" for row in rows)


def mnli_row(index: int, premise: str, hypothesis: str, labels: list[str]) -> str:
    parses = "\t".join([f"( {premise} )", f"( {hypothesis} )", f"(ROOT {premise})", f"(ROOT {hypothesis})"])
    return "\t".join([str(index), "31193", f"31193{index}", "government", parses, premise, hypothesis] + labels)


# ------------------------------------------------------------------------------------------------ clean_web_text
@smoke
@pytest.mark.parametrize("text, expected", [
    ("Great food.<br /><br />Bad service.", "Great food. Bad service."),
    ("He said &quot;wow&quot;", 'He said "wow"'),
    ("one<p>two", "one two"),
    ('see <a href="http://x.com/a">this link</a> now', "see this link now"),
    ('<a href="a">x</a> and <a href="b">y</a>', "x and y"),
    ('ab <a href="http://x', 'ab "'),                  # Q33: no closing ">": the prefix plus the 9th character
    ("ab <a href=", "ab"),                              # Q33 with nothing after the tag (the original crashed)
    ("left</a>right", "left</a>right"),                 # </a> goes only when there was a link, as in the original
    ("line one\\nline two", "line one line two"),       # the two characters backslash + n
    ("back\\slash", "back slash"),
    ("  spaced \t out\n text ", "spaced out text"),
])
def test_clean_web_text(text, expected):
    assert clean_web_text(text) == expected


# ---------------------------------------------------------------------------------------------------- task names
@smoke
def test_task_names_and_aliases(tmp_path):
    names = task_names()
    for name in ("cola", "sst-2", "mrpc", "qqp", "sts-b", "mnli_matched", "mnli_mismatched", "snli", "qnli", "rte",
                 "wnli", "diagnostic", "yelp5", "yelp2", "amazon5", "amazon2", "ag", "dbpedia", "imdb", "custom"):
        assert name in names
    for alias, name in [("SST2", "sst-2"), ("stsb", "sts-b"), ("MNLI", "mnli_matched"), ("mnli-m", "mnli_matched"),
                        ("mnli-mm", "mnli_mismatched"), ("AX", "diagnostic"), ("Yelp-5", "yelp5"),
                        ("yelp-2", "yelp2"), ("CoLA", "cola")]:
        assert get_task(alias, str(tmp_path)).spec.name == name
    with pytest.raises(ValueError, match="unknown task 'glue'.*cola.*mnli_matched.*custom"):
        get_task("glue", str(tmp_path))


@smoke
def test_glue_specs_follow_the_original():
    def spec(name):
        return get_task(name, "unused").spec
    assert spec("cola").main_metric == "mcc" and spec("cola").metrics == ("mcc",)
    assert spec("sts-b").is_regression and spec("sts-b").labels == () and spec("sts-b").main_metric == "pearson"
    assert spec("sts-b").metrics == ("pearson", "spearman")
    assert spec("mrpc").main_metric == spec("qqp").main_metric == "f1+accuracy"
    assert spec("mnli").labels == ("contradiction", "entailment", "neutral") == spec("snli").labels
    assert spec("qnli").labels == ("entailment", "not_entailment") == spec("rte").labels
    assert spec("wnli").labels == ("0", "1") and spec("rte").main_metric == "accuracy"
    assert spec("dbpedia").labels == tuple(str(i) for i in range(1, 15)) and spec("ag").labels == ("1", "2", "3", "4")
    assert spec("imdb").labels == ("neg", "pos")
    submit = {n: spec(n).submit_name for n in ("cola", "sst-2", "mrpc", "sts-b", "qqp", "mnli_matched",
                                                 "mnli_mismatched", "qnli", "rte", "wnli", "diagnostic", "snli")}
    assert submit == {"cola": "CoLA", "sst-2": "SST-2", "mrpc": "MRPC", "sts-b": "STS-B", "qqp": "QQP",
                      "mnli_matched": "MNLI-m", "mnli_mismatched": "MNLI-mm", "qnli": "QNLI", "rte": "RTE",
                      "wnli": "WNLI", "diagnostic": "AX", "snli": None}


# ---------------------------------------------------------------------------------------------------------- GLUE
@smoke
def test_cola_has_no_train_header_and_a_test_index(tmp_path):
    first = "Our friends won't buy this analysis, let alone the next one we propose."
    write(tmp_path, "train.tsv", tsv(f"gj04\t1\t\t{first}", "gj04\t0\t*\tThey drank the pub."))
    write(tmp_path, "dev.tsv", tsv("gj04\t1\t\tThe sailors rode the breeze clear of the rocks."))
    write(tmp_path, "test.tsv", tsv("index\tsentence", "0\tBill whistled past the house.", "1\tThe car honked."))
    task = get_task("cola", str(tmp_path))
    assert task.examples("train") == [Example("train-0", first, None, "1"),
                                      Example("train-1", "They drank the pub.", None, "0")]
    assert task.examples("dev")[0].label == "1"
    assert task.examples("test") == [Example("0", "Bill whistled past the house.", None, None),
                                     Example("1", "The car honked.", None, None)]
    assert task.split_files("dev") == [os.path.join(str(tmp_path), "dev.tsv")]


@smoke
def test_sst2_prefers_the_standard_files_and_falls_back_to_detok(tmp_path):
    write(tmp_path, "train.detok.tsv", tsv("sentence\tlabel", "hide new secretions from the parental units\t0"))
    write(tmp_path, "dev.detok.tsv", tsv("sentence\tlabel", "it 's a charming and often affecting journey . \t1"))
    write(tmp_path, "dev.tsv", tsv("sentence\tlabel", "unflinchingly bleak and desperate \t0"))
    write(tmp_path, "test.tsv", tsv("index\tsentence", "0\tuneasy mishmash of styles and genres ."))
    task = get_task("sst-2", str(tmp_path))
    assert task.examples("train") == [Example("train-1", "hide new secretions from the parental units", None, "0")]
    assert task.split_files("train")[0].endswith("train.detok.tsv")
    assert task.examples("dev") == [Example("dev-1", "unflinchingly bleak and desperate ", None, "0")]
    assert task.examples("test") == [Example("0", "uneasy mishmash of styles and genres .", None, None)]


@smoke
def test_mrpc_keeps_quote_characters_as_text(tmp_path):
    header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"
    write(tmp_path, "train.tsv", tsv(header, '1\t702876\t702977\tAmrozi accused his brother , whom he called " the '
                                     'witness " , of deliberately distorting his evidence .\tReferring to him as only '
                                     '" the witness " , Amrozi accused his brother of deliberately distorting his '
                                     'evidence .', "0\t2108705\t2108831\tYucaipa owned Dominick 's .\tYucaipa bought "
                                     "Dominick 's in 1995 ."))
    write(tmp_path, "test.tsv", tsv("index\t#1 ID\t#2 ID\t#1 String\t#2 String",
                                    "0\t1089874\t1089925\tPCCW 's chief operating officer will report to Mr So .\t"
                                    "Current Chief Operating Officer Mike Butcher will report to So ."))
    task = get_task("mrpc", str(tmp_path))
    first, second = task.examples("train")
    assert first.text_a.startswith('Amrozi accused his brother , whom he called " the witness "')
    assert first.text_b.startswith('Referring to him as only " the witness "') and first.label == "1"
    assert (second.guid, second.label) == ("train-2", "0")
    test = task.examples("test")[0]
    assert (test.guid, test.text_b, test.label) == ("0", "Current Chief Operating Officer Mike Butcher will report "
                                                         "to So .", None)


@smoke
def test_qqp_uses_its_own_test_columns_and_id(tmp_path):
    write(tmp_path, "train.tsv", tsv("id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate",
                                     "133273\t213221\t213222\tHow is the life of a math student?\tWhich level of "
                                     "prepration is enough for the exam jlpt5?\t0"))
    write(tmp_path, "test.tsv", tsv("id\tquestion1\tquestion2", "7\tWould the idea scare you?\tDo you think so?"))
    task = get_task("qqp", str(tmp_path))
    assert task.examples("train") == [Example("train-1", "How is the life of a math student?",
                                              "Which level of prepration is enough for the exam jlpt5?", "0")]
    assert task.examples("test") == [Example("7", "Would the idea scare you?", "Do you think so?", None)]


@smoke
def test_stsb_labels_are_floats(tmp_path):
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2"
    write(tmp_path, "train.tsv", tsv(header + "\tscore", "0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\t"
                                     "A plane is taking off.\tAn air plane is taking off.\t5.000",
                                     "1\tmain-captions\tMSRvid\t2012test\t0004\tnone\tnone\tA man is playing a large "
                                     "flute.\tA man is playing a flute.\t3.800"))
    write(tmp_path, "test.tsv", tsv(header, "0\tmain-news\theadlines\t2016\t0001\tnone\tnone\tGirl dies.\tGirl lives."))
    task = get_task("sts-b", str(tmp_path))
    train = task.examples("train")
    assert [e.label for e in train] == [5.0, 3.8] and isinstance(train[0].label, float)
    assert (train[0].text_a, train[0].text_b) == ("A plane is taking off.", "An air plane is taking off.")
    assert task.examples("test") == [Example("0", "Girl dies.", "Girl lives.", None)]
    write(tmp_path, "dev.tsv", tsv(header + "\tscore", "0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\ta\tb\t"
                                   "high"))
    with pytest.raises(ClassifierDataError, match=r"dev\.tsv:2: label 'high' is not a number"):
        task.examples("dev")


@smoke
def test_mnli_matched_and_mismatched_read_the_last_column(tmp_path):
    premise, hypothesis = "Conceptually cream skimming has two basic dimensions.", "Product and geography matter."
    write(tmp_path, "train.tsv", tsv(MNLI_HEADER + "\tlabel1\tgold_label",
                                     mnli_row(0, premise, hypothesis, ["neutral", "neutral"])))
    dev_header = MNLI_HEADER + "\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label"
    write(tmp_path, "dev_matched.tsv", tsv(dev_header, mnli_row(0, "The new rights are nice enough", "Everyone really "
                                           "likes the newest benefits", ["neutral", "entailment", "neutral",
                                                                         "neutral", "neutral", "neutral"])))
    write(tmp_path, "dev_mismatched.tsv", tsv(dev_header, mnli_row(0, "Your contribution helped.", "It helped.",
                                              ["entailment"] * 5 + ["entailment"])))
    write(tmp_path, "test_matched.tsv", tsv(MNLI_HEADER, mnli_row(9796, "Hierbas, ans seco.", "Hierbas is a name.",
                                                                  [])))
    write(tmp_path, "test_mismatched.tsv", tsv(MNLI_HEADER, mnli_row(0, "What a day.", "It was a day.", [])))
    matched, mismatched = get_task("mnli", str(tmp_path)), get_task("mnli-mm", str(tmp_path))
    assert matched.examples("train") == [Example("train-1", premise, hypothesis, "neutral")]
    assert matched.examples("dev")[0].label == "neutral" and mismatched.examples("dev")[0].label == "entailment"
    assert matched.examples("test") == [Example("9796", "Hierbas, ans seco.", "Hierbas is a name.", None)]
    assert mismatched.examples("test")[0].text_a == "What a day."
    assert mismatched.split_files("train") == matched.split_files("train")


@smoke
def test_snli_reads_sentence1_and_sentence2(tmp_path):
    header = ("index\tcaptionID\tpairID\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
              "sentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label")
    row = ("0\t3416050480.jpg#4\t3416050480.jpg#4r1n\t( ( A person ) )\t( ( A person ) )\t(ROOT (S))\t(ROOT (S))\t"
           "A person on a horse jumps over a broken down airplane.\tA person is training his horse for a competition."
           "\tneutral\tneutral")
    write(tmp_path, "train.tsv", tsv(header, row))
    assert get_task("snli", str(tmp_path)).examples("train") == [Example(
        "train-1", "A person on a horse jumps over a broken down airplane.",
        "A person is training his horse for a competition.", "neutral")]


@smoke
@pytest.mark.parametrize("task, header, row, label", [
    ("qnli", "index\tquestion\tsentence\tlabel", "0\tWhen did the third Digimon series begin?\tUnlike the two "
     "seasons before it, Digimon Tamers takes a darker approach.\tnot_entailment", "not_entailment"),
    ("rte", "index\tsentence1\tsentence2\tlabel", "0\tNo Weapons of Mass Destruction Found in Iraq Yet.\tWeapons of "
     "Mass Destruction Found in Iraq.\tnot_entailment", "not_entailment"),
    ("wnli", "index\tsentence1\tsentence2\tlabel", "0\tI stuck a pin through a carrot. When I pulled the pin out, it "
     "had a hole.\tThe carrot had a hole.\t1", "1"),
])
def test_index_text_text_label_tasks(tmp_path, task, header, row, label):
    write(tmp_path, "dev.tsv", tsv(header, row))
    write(tmp_path, "test.tsv", tsv(header.rsplit("\t", 1)[0], "\t".join(row.split("\t")[:3])))
    data = get_task(task, str(tmp_path))
    fields = row.split("\t")
    assert data.examples("dev") == [Example("dev-1", fields[1], fields[2], label)]
    assert data.examples("test") == [Example("0", fields[1], fields[2], None)]


@smoke
def test_empty_text_b_is_absent(tmp_path):
    write(tmp_path, "train.tsv", tsv("index\tsentence1\tsentence2\tlabel", "0\tA sentence.\t\t1"))
    assert get_task("wnli", str(tmp_path)).examples("train")[0].text_b is None


@smoke
def test_diagnostic_is_found_in_the_sibling_folder(tmp_path):
    mnli = tmp_path / "MNLI"
    mnli.mkdir()
    write(tmp_path, "diagnostic/diagnostic.tsv", tsv("index\tsentence1\tsentence2",
                                                      "0\tThe cat sat on the mat.\tThe cat did not sit on the mat."))
    task = get_task("diagnostic", str(mnli) + "/")
    assert task.examples("test") == [Example("0", "The cat sat on the mat.", "The cat did not sit on the mat.", None)]
    assert task.split_files("test") == [os.path.join(str(tmp_path), "diagnostic", "diagnostic.tsv")]
    write(mnli, "AX.tsv", tsv("index\tsentence1\tsentence2", "3\tDogs bark.\tDogs are silent."))  # the current name
    assert get_task("ax", str(mnli)).examples("test") == [Example("3", "Dogs bark.", "Dogs are silent.", None)]
    with pytest.raises(ClassifierDataError, match="has no train split"):
        task.examples("train")


# ------------------------------------------------------------------------------------------ GLUE error messages
@smoke
def test_missing_file_names_every_path_looked_for(tmp_path):
    with pytest.raises(ClassifierDataError) as error:
        get_task("sst-2", str(tmp_path)).examples("train")
    assert str(tmp_path / "train.tsv") in str(error.value) and str(tmp_path / "train.detok.tsv") in str(error.value)
    with pytest.raises(ClassifierDataError) as error:
        get_task("diagnostic", str(tmp_path / "MNLI")).examples("test")
    assert str(tmp_path / "diagnostic" / "AX.tsv") in str(error.value)
    assert str(tmp_path / "MNLI" / "diagnostic.tsv") in str(error.value)


@smoke
def test_mrpc_microsoft_files_alone_are_named_in_the_error(tmp_path):
    write(tmp_path, "msr_paraphrase_train.txt", tsv("\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String",
                                                    "1\t702876\t702977\tA b .\tB a ."))
    with pytest.raises(ClassifierDataError, match=r"looked for .*train\.tsv \(msr_paraphrase_train\.txt / "
                                                  r"msr_paraphrase_test\.txt are the Microsoft release.*--tasks=MRPC"):
        get_task("mrpc", str(tmp_path)).examples("train")


@smoke
def test_short_rows_are_errors_not_skipped(tmp_path):
    write(tmp_path, "train.tsv", tsv("index\tquestion\tsentence\tlabel", "0\tq?\ts.\tentailment", "1\tq only?"))
    with pytest.raises(ClassifierDataError, match=r"train\.tsv:3: 2 tab-separated columns, expected at least 4"):
        get_task("qnli", str(tmp_path)).examples("train")
    write(tmp_path, "test.tsv", tsv("index\tquestion\tsentence", "0\tq?\ts.", "", "1\tq only?"))
    with pytest.raises(ClassifierDataError, match=r"test\.tsv:4: 2 tab-separated columns, expected at least 3"):
        get_task("qnli", str(tmp_path)).examples("test")


@smoke
def test_a_few_broken_glue_rows_are_skipped_with_a_warning(tmp_path, caplog):
    """GLUE's QQP train.tsv has a few rows broken by a newline inside a question (both halves too short): the
    original skipped them, so training on the real file works; a warning names their lines."""
    header = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate"
    good = [f"{i}\t{2 * i}\t{2 * i + 1}\tHow do I learn {i}?\tWhat is {i}?\t{i % 2}" for i in range(2500)]
    broken = ["201841\t303951\t174364\tHow can I start an online shopping (e-commerce) website?",
              "\tWhich web technology is best suitable for building a big E-Commerce website?\t0"]
    write(tmp_path, "train.tsv", tsv(header, *good[:1000], *broken, *good[1000:]))
    with caplog.at_level("WARNING"):
        examples = get_task("qqp", str(tmp_path)).examples("train")
    assert len(examples) == 2500 and examples[1000] == Example("train-1003", "How do I learn 1000?", "What is 1000?",
                                                                "0")
    assert "skipped 2 of 2502 rows with too few columns" in caplog.text and "lines 1002, 1003" in caplog.text
    write(tmp_path, "test.tsv", tsv("id\tquestion1\tquestion2", *[f"{i}\tq{i}?\tp{i}?" for i in range(2500)],
                                    "2500\tbroken"))  # every test row must get a prediction: an error
    with pytest.raises(ClassifierDataError, match=r"test\.tsv:2502: 2 tab-separated columns, expected at least 3"):
        get_task("qqp", str(tmp_path)).examples("test")
    write(tmp_path, "dev.tsv", tsv(header, *good[:1000], *broken, "7\tonly four\tcolumns\there"))
    with pytest.raises(ClassifierDataError, match=r"dev\.tsv:1002: 4 tab-separated columns, expected at least 6 .*"
                                                  r"3 of the 1003 rows are that short"):
        get_task("qqp", str(tmp_path)).examples("dev")


@smoke
def test_unknown_label_names_the_label_and_the_allowed_ones(tmp_path):
    write(tmp_path, "dev_matched.tsv", tsv(MNLI_HEADER + "\tlabel1\tgold_label", mnli_row(0, "a", "b", ["-", "-"])))
    with pytest.raises(ClassifierDataError, match=r"dev_matched\.tsv:2: unknown label '-'.*'contradiction', "
                                                  r"'entailment', 'neutral'"):
        get_task("mnli", str(tmp_path)).examples("dev")


@smoke
def test_empty_header_only_and_invalid_utf8_files(tmp_path):
    write(tmp_path, "train.tsv", "")
    with pytest.raises(ClassifierDataError, match=r"train\.tsv:1: the file is empty"):
        get_task("rte", str(tmp_path)).examples("train")
    write(tmp_path, "dev.tsv", tsv("index\tsentence1\tsentence2\tlabel"))
    with pytest.raises(ClassifierDataError, match=r"dev\.tsv:1: only a header row"):
        get_task("rte", str(tmp_path)).examples("dev")
    write(tmp_path, "test.tsv", b"index\tsentence1\tsentence2\n0\tfine\tok\n1\tbad \xff byte\tok\n")
    with pytest.raises(ClassifierDataError, match=r"test\.tsv:3: invalid UTF-8 at byte 6"):
        get_task("rte", str(tmp_path)).examples("test")


@smoke
def test_crlf_and_byte_order_mark(tmp_path):
    write(tmp_path, "train.tsv", "\ufeffsentence\tlabel\r\nA gorgeous film .\t1\r\nA dull one .\t0\r\n")
    assert [(e.text_a, e.label) for e in get_task("sst-2", str(tmp_path)).examples("train")] == [
        ("A gorgeous film .", "1"), ("A dull one .", "0")]


# ----------------------------------------------------------------------------------------- text classification
@smoke
def test_yelp_csv_is_cleaned_and_test_csv_is_the_dev_split(tmp_path):
    write(tmp_path, "train.csv", '"1","Unfortunately, the frustration of being Dr. Goldberg\'s patient is a repeat.'
                                 '\\nGood doctor, ""terrible"" staff.<br />Avoid."\n"5","Multi\nline review &quot;ok'
                                 '&quot;"\n')
    write(tmp_path, "test.csv", '"2","Contrary to other reviews, I have zero complaints."\n')
    task = get_task("yelp5", str(tmp_path))
    assert task.examples("train") == [
        Example("train-0", "Unfortunately, the frustration of being Dr. Goldberg's patient is a repeat. Good doctor, "
                           '"terrible" staff. Avoid.', None, "1"),
        Example("train-1", 'Multi line review "ok"', None, "5")]
    assert task.examples("dev") == [Example("dev-0", "Contrary to other reviews, I have zero complaints.", None, "2")]
    assert task.split_files("test") == task.split_files("dev") == [str(tmp_path / "test.csv")]
    write(tmp_path, "train.csv", '"1","two\nlines"\n"6","out of range"\n')  # the error line counts both lines
    with pytest.raises(ClassifierDataError, match=r"train\.csv:3: unknown label '6'.*'1', '2', '3', '4', '5'"):
        task.examples("train")


@smoke
def test_ag_and_dbpedia_have_a_title_and_a_body(tmp_path):
    write(tmp_path, "train.csv", '"3","Wall St. Bears Claw Back Into the Black (Reuters)","Reuters - Short-sellers, '
                                 'Wall Street\'s dwindling\\band of ultra-cynics, are seeing green again."\n')
    assert get_task("ag", str(tmp_path)).examples("train") == [Example(
        "train-0", "Wall St. Bears Claw Back Into the Black (Reuters)",
        "Reuters - Short-sellers, Wall Street's dwindling band of ultra-cynics, are seeing green again.", "3")]
    write(tmp_path, "train.csv", '14,E. D. Abbott Ltd," Abbott of Farnham E D Abbott Limited was a British '
                                 'coachbuilding business."\n2,Only a title\n')
    with pytest.raises(ClassifierDataError, match=r"train\.csv:2: 2 comma-separated columns, expected at least 3"):
        get_task("dbpedia", str(tmp_path)).examples("train")
    write(tmp_path, "train.csv", '14,E. D. Abbott Ltd," Abbott of Farnham."\n')
    assert get_task("dbpedia", str(tmp_path)).examples("train")[0] == Example(
        "train-0", "E. D. Abbott Ltd", "Abbott of Farnham.", "14")


@smoke
def test_imdb_folders_in_sorted_order(tmp_path):
    write(tmp_path, "train/pos/10_9.txt", "Bromwell High is a cartoon comedy.<br /><br />It ran at the same time.")
    write(tmp_path, "train/pos/0_10.txt", "Homelessness (or Houselessness as George Carlin stated) has been an issue.")
    write(tmp_path, "train/neg/3_4.txt", "Story of a man who has unnatural feelings for a pig. \n")
    write(tmp_path, "train/neg/notes.md", "not a review")
    write(tmp_path, "test/neg/0_2.txt", "Once again Mr. Costner has dragged out a movie for far longer than needed.")
    write(tmp_path, "test/pos/0_10.txt", "I went and saw this movie last night.")
    task = get_task("imdb", str(tmp_path))
    assert task.examples("train") == [
        Example("train-0", "Story of a man who has unnatural feelings for a pig.", None, "neg"),
        Example("train-1", "Homelessness (or Houselessness as George Carlin stated) has been an issue.", None, "pos"),
        Example("train-2", "Bromwell High is a cartoon comedy. It ran at the same time.", None, "pos")]
    assert [e.label for e in task.examples("dev")] == ["neg", "pos"]
    assert task.split_files("dev") == [str(tmp_path / "test" / "neg"), str(tmp_path / "test" / "pos")]
    write(tmp_path, "test/pos/1_8.txt", b"caf\xe9\n")
    with pytest.raises(ClassifierDataError, match=r"1_8\.txt:1: invalid UTF-8"):
        task.examples("dev")
    with pytest.raises(ClassifierDataError, match=r"no train folders.*" + str(tmp_path / "none" / "train" / "neg")):
        get_task("imdb", str(tmp_path / "none")).examples("train")


# ---------------------------------------------------------------------------------------------------- custom
@smoke
def test_custom_tsv_with_header_names(tmp_path):
    write(tmp_path, "train.tsv", tsv("id\treview\tstars", "a\tGreat \"fun\" film\tgood", "b\tBoring\tbad",
                                     "c\tMeh\tbad"))
    write(tmp_path, "dev.tsv", tsv("id\treview\tstars", "d\tLovely\tgood"))
    write(tmp_path, "test.tsv", tsv("id\treview", "e\tUnseen"))
    task = get_task("custom", str(tmp_path), CustomFormat(text_column="review", label_column="stars"))
    assert task.spec.labels == ("bad", "good") and not task.spec.is_regression
    assert task.spec.metrics == ("accuracy", "f1", "mcc") and task.spec.submit_name is None
    assert task.examples("train")[0] == Example("train-1", 'Great "fun" film', None, "good")
    assert task.examples("dev") == [Example("dev-1", "Lovely", None, "good")]
    assert task.examples("test") == [Example("test-1", "Unseen", None, None)]


@smoke
def test_custom_csv_by_index_without_header(tmp_path):
    write(tmp_path, "train.csv", '2,"Premise, with a comma","Hypothesis ""quoted"""\n10,p2,h2\n1,p3,h3\n')
    write(tmp_path, "test.csv", "x,p4,h4\n")
    fmt = CustomFormat(text_column="1", text_b_column="2", label_column="0", has_header=False)
    task = get_task("custom", str(tmp_path), fmt)
    assert task.spec.labels == ("1", "2", "10")  # integer labels sort numerically
    assert task.examples("train")[0] == Example("train-0", "Premise, with a comma", 'Hypothesis "quoted"', "2")
    with pytest.raises(ClassifierDataError, match=r"test\.csv:1: unknown label 'x'"):
        task.examples("test")
    with pytest.raises(ClassifierDataError, match=r"train\.csv:1: column 'text' is not a 0-based index and the file "
                                                  r"has no header"):
        get_task("custom", str(tmp_path), CustomFormat(has_header=False))


@smoke
def test_custom_jsonl(tmp_path):
    rows = [{"text": "A fine day", "label": 1}, {"text": "A bad day", "label": 0, "extra": [1]}]
    write(tmp_path, "train.jsonl", "".join(json.dumps(r) + "\n" for r in rows) + "\n")
    write(tmp_path, "test.jsonl", json.dumps({"text": "Unlabelled"}) + "\n")
    task = get_task("custom", str(tmp_path))
    assert task.spec.labels == ("0", "1")
    assert task.examples("train") == [Example("train-0", "A fine day", None, "1"),
                                      Example("train-1", "A bad day", None, "0")]
    assert task.examples("test") == [Example("test-0", "Unlabelled", None, None)]
    write(tmp_path, "dev.jsonl", json.dumps(rows[0]) + "\n" + json.dumps(["a list"]) + "\n")
    with pytest.raises(ClassifierDataError, match=r"dev\.jsonl:2: a JSON list; expected one JSON object per line"):
        task.examples("dev")
    write(tmp_path, "dev.jsonl", json.dumps(rows[0]) + "\n{broken\n")
    with pytest.raises(ClassifierDataError, match=r"dev\.jsonl:2: not valid JSON"):
        task.examples("dev")
    write(tmp_path, "dev.jsonl", json.dumps(rows[0]) + "\n" + json.dumps({"label": 1}) + "\n")
    with pytest.raises(ClassifierDataError, match=r"dev\.jsonl:2: no value for the text_a key 'text'"):
        task.examples("dev")


@smoke
def test_custom_regression_is_inferred_from_many_numeric_labels(tmp_path):
    many = [f"sentence {i}\t{i / 4 - 2}" for i in range(12)]
    write(tmp_path, "train.tsv", tsv("sentence\tscore", *many))
    write(tmp_path, "dev.tsv", tsv("sentence\tscore", "fine\t0.5", "bad\tn/a"))
    fmt = CustomFormat(text_column="sentence", label_column="score")
    task = get_task("custom", str(tmp_path), fmt)
    assert task.spec.is_regression and task.spec.labels == () and task.spec.main_metric == "pearson"
    assert task.examples("train")[1].label == -1.75
    with pytest.raises(ClassifierDataError, match=r"dev\.tsv:3: label 'n/a' is not a number"):
        task.examples("dev")
    few = get_task("custom", str(tmp_path), CustomFormat("sentence", label_column="score", regression=False))
    assert len(few.spec.labels) == 12 and not few.spec.is_regression
    write(tmp_path, "train.tsv", tsv("sentence\tscore", *[f"s{i}\t{i % 3}" for i in range(30)]))
    assert get_task("custom", str(tmp_path), fmt).spec.labels == ("0", "1", "2")  # 3 distinct numbers: classes


@smoke
def test_custom_label_list_and_format_errors(tmp_path):
    write(tmp_path, "train.csv", "text,label\nnice,pos\nugly,neutral\n")
    fmt = CustomFormat(label_list=("neg", "pos"))
    task = get_task("custom", str(tmp_path), fmt)
    assert task.spec.labels == ("neg", "pos")
    with pytest.raises(ClassifierDataError, match=r"train\.csv:3: unknown label 'neutral'.*\['neg', 'pos'\]"):
        task.examples("train")
    with pytest.raises(ClassifierDataError, match=r"no dev file for the custom task; looked for .*dev\.tsv, "
                                                  r".*dev\.csv, .*dev\.jsonl"):
        task.examples("dev")
    write(tmp_path, "train.tsv", "text\tlabel\nnice\tpos\n")
    with pytest.raises(ClassifierDataError, match="both exist; pass file_format"):
        task.examples("train")
    assert get_task("custom", str(tmp_path), CustomFormat(file_format="tsv")).examples("train")[0].label == "pos"
    with pytest.raises(ClassifierDataError, match=r"train\.csv:1: column 'body' is not in the header "
                                                  r"\['text', 'label'\]"):
        get_task("custom", str(tmp_path), CustomFormat(text_column="body", file_format="csv"))
    with pytest.raises(ValueError, match="regression"):
        get_task("custom", str(tmp_path), CustomFormat(label_list=("a",), regression=True))
    write(tmp_path, "dev.csv", "text,label\nshort row\n")
    with pytest.raises(ClassifierDataError, match=r"dev\.csv:2: 1 comma-separated columns, expected 2 as the "
                                                  r"header has"):
        get_task("custom", str(tmp_path), CustomFormat(file_format="csv")).examples("dev")
    write(tmp_path, "dev.csv", 'text,label\n"unterminated quote,pos\n')
    with pytest.raises(ClassifierDataError, match=r"dev\.csv:2: unexpected end of data.*expected well-formed CSV"):
        get_task("custom", str(tmp_path), CustomFormat(file_format="csv")).examples("dev")


@smoke
@pytest.mark.parametrize("name, text, error", [
    # an unquoted comma in a text: its second half was read as the label, a new class "really"
    ("train.csv", "text,label\ngood,pos\nbad, really,neg\n", r"train\.csv:3: 3 comma-separated columns, expected 2 "
                                                             r"as the header has \(quote a text that holds a comma"),
    ("train.tsv", "text\tlabel\ngood\tpos\nbad\tneg\textra\n", r"train\.tsv:3: 3 tab-separated columns, expected 2"),
    ("train.tsv", "good\tpos\nbad\tneg\tx\n", r"train\.tsv:2: 3 tab-separated columns, expected 2 as the first "
                                            r"row"),  # no header: the first row sets the width
    # an empty label cell became a class "" of its own
    ("train.tsv", "text\tlabel\ngood\tpos\nbad\t\n", r"train\.tsv:3: the label column 'label' is empty; "
                                                      r"expected a label"),
    ("train.tsv", "text\tlabel\ngood\tpos\n \tneg\n", r"train\.tsv:3: the text_a column 'text' is empty; "
                                                       r"expected a text"),
    ("train.csv", 'text,label\ngood,pos\n"",neg\n', r"train\.csv:3: the text_a column 'text' is empty"),
    ("train.jsonl", '{"text": "good", "label": "pos"}\n{"text": "", "label": "neg"}\n',
     r"train\.jsonl:2: the text_a key 'text' is empty"),
])
def test_custom_rows_need_every_column_a_text_and_a_label(tmp_path, name, text, error):
    write(tmp_path, name, text)
    has_header = "label" in text
    fmt = CustomFormat() if has_header else CustomFormat(text_column="0", label_column="1", has_header=False)
    with pytest.raises(ClassifierDataError, match=error):
        get_task("custom", str(tmp_path), fmt).examples("train")


@smoke
def test_a_field_longer_than_csvs_default_limit(tmp_path):
    """A 200,000-character document: csv's default field limit (131,072) made it a 'well-formed CSV' error."""
    write(tmp_path, "train.csv", 'text,label\n"' + "word " * 40000 + '",pos\nshort,neg\n')
    assert len(get_task("custom", str(tmp_path)).examples("train")[0].text_a) == 200000


# ------------------------------------------------------------------------------- real data (downloaded once, cached)
@pytest.fixture(scope="module")
def snippets() -> list[tuple[str, float]]:
    return data_fetch.movie_review_snippets()


def test_movie_review_snippets(snippets):
    assert len(snippets) == 10605
    scores = [score for _, score in snippets]
    assert (sum(s > 0 for s in scores), sum(s < 0 for s in scores), sum(s == 0 for s in scores)) == (5242, 5326, 37)
    assert snippets[0][0].startswith("The Rock is destined to be the 21st Century's new ''Conan''")
    assert abs(snippets[0][1] - 2.26666666667) < 1e-9 and -4 <= min(scores) and max(scores) <= 4
    assert any("clichés" in text for text, _ in snippets)  # UTF-8 decoded, no "\r" left over
    assert not any("\r" in text or "\t" in text for text, _ in snippets)


def test_glue_style_movie_reviews_read_back(tmp_path, snippets):
    dirs = data_fetch.glue_style_movie_reviews(str(tmp_path / "a"), seed=1)
    sst = get_task("sst-2", dirs["SST-2"])
    counts = {split: collections.Counter(e.label for e in sst.examples(split)) for split in ("train", "dev", "test")}
    assert sum(sum(c.values()) for c in counts.values()) == 10605 - 37
    assert counts["train"]["1"] + counts["dev"]["1"] + _test_positives(dirs["SST-2"]) == 5242
    assert set(counts["test"]) == {None} and 1000 < sum(counts["dev"].values()) < 1120
    reg = get_task("custom", dirs["MR-REG"], CustomFormat(text_column="sentence", label_column="score"))
    assert reg.spec.is_regression
    regression = [e for split in ("train", "dev", "test") for e in reg.examples(split)]
    assert sorted((e.text_a, e.label) for e in regression) == sorted(snippets)
    again = data_fetch.glue_style_movie_reviews(str(tmp_path / "b"), seed=1)
    other = data_fetch.glue_style_movie_reviews(str(tmp_path / "c"), seed=2)
    read = lambda d: open(os.path.join(d, "dev.tsv"), encoding="utf-8").read()  # noqa: E731
    assert read(again["SST-2"]) == read(dirs["SST-2"]) != read(other["SST-2"])


def _test_positives(sst_dir: str) -> int:
    with open(os.path.join(sst_dir, "test_labels.tsv"), encoding="utf-8") as handle:
        return sum(line.rstrip("\n").split("\t")[1] == "1" for line in list(handle)[1:])


def test_spam_assassin_emails_and_csv(tmp_path):
    emails = data_fetch.spam_assassin_emails()
    assert len(emails) == 6046
    assert collections.Counter(label for _, label in emails) == {"ham": 3900 + 250, "spam": 1896}
    assert all(text.startswith("Subject:") for text, _ in emails)
    # The routing headers are dropped: only 2 bodies quote a "Received:" line.
    assert sum("Received: from" in text[:200] for text, _ in emails) == 2
    directory = data_fetch.spam_csv(str(tmp_path / "spam"), max_chars=5000)
    task = get_task("custom", directory)
    assert task.spec.labels == ("ham", "spam") and not task.spec.is_regression
    read = task.examples("train") + task.examples("dev")
    assert len(read) == 6046 and 550 < len(task.examples("dev")) < 660
    # Commas, quotes and newlines survive the CSV round trip.
    assert sorted((e.text_a, e.label) for e in read) == sorted((text[:5000], label) for text, label in emails)
    assert any('"' in e.text_a and "," in e.text_a and "\n" in e.text_a for e in read)

