"""Tiny finetuning runs of the tasks beyond classification, on real text, shared by the export, Hugging Face and
batch-inference tests (registered in conftest.py, so each run happens once per session, and only when a test
asks for it; every test that does is marked slow).

    def test_something(race_run, race_saved_model): ...
    race_run["model_dir"], race_run["examples"], race_run["predictions"]      # the job's --do_predict output

Each run is the CLI (`python -m funnel_tfm.race` / `tagger` / `squad`) with `--do_train --do_predict` on the
tiny config of test_classifier; the `*_saved_model` fixtures export its best checkpoint with
`funnel_tfm.export --format=saved_model`.
"""

from __future__ import annotations

import json
import os

import pytest


def _tiny_config(path) -> str:
    from funnel_tfm.config import ModelConfig
    from test_classifier import TINY
    ModelConfig(**TINY).to_json(str(path))
    return str(path)


def _export(model_dir: str, export_dir: str) -> str:
    from test_classifier import run_entry_point
    run_entry_point("export", f"--model_dir={model_dir}", "--format=saved_model", f"--export_dir={export_dir}")
    return export_dir


@pytest.fixture(scope="session")
def race_run(tmp_path_factory) -> dict:
    """A tiny RACE run (real review sentences as articles; qa cut to 9 tokens, articles to 48 - 3 - qa), 4 steps."""
    from funnel_tfm.data import data_fetch
    from funnel_tfm.data.race_data import read_race
    from test_classifier import run_entry_point
    from test_race import synthetic_race
    root = tmp_path_factory.mktemp("race_export")
    synthetic_race(str(root / "RACE"), limit=64)
    model_dir = str(root / "exp")
    run_entry_point("race", f"--data_dir={root / 'RACE'}", f"--output_dir={root / 'proc'}", f"--model_dir={model_dir}",
                    "--uncased=True", f"--tokenizer_path={data_fetch.bert_uncased_vocab()}",
                    f"--model_config_path={_tiny_config(root / 'tiny.json')}", "--max_seq_length=48",
                    "--max_qa_length=9", "--do_train=True", "--do_predict=True", "--train_batch_size=8",
                    "--eval_batch_size=8", "--train_steps=4", "--save_steps=4", "--learning_rate=3e-3",
                    "--jit_compile=False", "--use_tpu=False")
    examples = read_race(str(root / "RACE"), "dev")
    predictions = [json.loads(line) for line in open(os.path.join(model_dir, "predict", "dev.jsonl"))]
    assert [p["guid"] for p in predictions] == [e.guid for e in examples]
    return {"root": root, "model_dir": model_dir, "examples": examples, "predictions": predictions}


@pytest.fixture(scope="session")
def tagger_run(tmp_path_factory) -> dict:
    """A tiny tagger run on the real CoNLL-2000 chunking sample (25 words a sentence on average) at
    max_seq_length 24, so words are cut; `predicted`: the job's `predict/dev.conll` sentences."""
    from funnel_tfm.data import data_fetch
    from funnel_tfm.data.conll import read_conll
    from test_classifier import run_entry_point
    from test_tagger import GOLD_COLUMN, write_chunking_dir
    root = tmp_path_factory.mktemp("tagger_export")
    chunking_dir = write_chunking_dir(root / "chunking")
    model_dir = root / "exp"
    run_entry_point("tagger", f"--data_dir={chunking_dir}", f"--output_dir={root / 'proc'}",
                    f"--tokenizer_path={data_fetch.bert_uncased_vocab()}", f"--tag_column={GOLD_COLUMN}",
                    "--max_seq_length=24", f"--model_dir={model_dir}",
                    f"--model_config={_tiny_config(root / 'tiny.json')}", "--do_train=True", "--do_predict=True",
                    "--predict_split=dev", "--train_batch_size=8", "--eval_batch_size=8", "--train_steps=20",
                    "--save_steps=20", "--learning_rate=5e-3", "--jit_compile=False")
    predicted = read_conll(str(model_dir / "predict" / "dev.conll"), tag_column=-1)
    return {"root": root, "model_dir": str(model_dir), "predicted": predicted}


@pytest.fixture(scope="session")
def squad_run(tmp_path_factory) -> dict:
    """A tiny SQuAD run: real State of the Union paragraphs (synthetic questions) at length 160, 4 steps;
    `rows`: the dev questions ({id, question, context}), `predictions` / `null_odds`: the job's files."""
    from funnel_tfm.data import data_fetch
    from test_classifier import run_entry_point
    from test_squad import synthetic_squad
    root = tmp_path_factory.mktemp("squad_export")
    data = synthetic_squad(str(root), n_train=48, n_dev=40)
    model_dir = root / "exp"
    run_entry_point("squad", f"--train_file={data['train']['path']}", f"--predict_file={data['dev']['path']}",
                    f"--output_dir={root / 'proc'}", f"--tokenizer_path={data_fetch.bert_uncased_vocab()}",
                    "--uncased=True", "--max_seq_length=160", "--max_query_length=48", "--doc_stride=32",
                    f"--model_dir={model_dir}", f"--model_config_path={_tiny_config(root / 'tiny.json')}",
                    "--do_train=True", "--do_predict=True", "--train_batch_size=8", "--predict_batch_size=16",
                    "--train_steps=4", "--save_steps=4", "--learning_rate=3e-3", "--jit_compile=False",
                    "--use_tpu=False")
    dev = json.load(open(data["dev"]["path"]))["data"][0]["paragraphs"]
    rows = [{"id": p["qas"][0]["id"], "question": p["qas"][0]["question"], "context": p["context"]} for p in dev]
    return {"root": root, "model_dir": str(model_dir), "rows": rows,
            "predictions": json.load(open(model_dir / "predict" / "4.predictions.json")),
            "null_odds": json.load(open(model_dir / "predict" / "4.null_odds.json"))}


@pytest.fixture(scope="session")
def race_saved_model(race_run) -> str:
    return _export(race_run["model_dir"], str(race_run["root"] / "serving" / "1"))


@pytest.fixture(scope="session")
def tagger_saved_model(tagger_run) -> str:
    return _export(tagger_run["model_dir"], str(tagger_run["root"] / "serving" / "1"))


@pytest.fixture(scope="session")
def squad_saved_model(squad_run) -> str:
    return _export(squad_run["model_dir"], str(squad_run["root"] / "serving" / "1"))
