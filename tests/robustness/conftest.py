"""Tiny models and data for the robustness suite: every test runs a real entry point in a subprocess
(helpers in robust_helpers.py)."""

import pytest

from funnel_tfm.data import data_fetch
from helpers import tiny_config


@pytest.fixture(scope="session")
def vocab() -> str:
    return data_fetch.bert_uncased_vocab()


@pytest.fixture(scope="session")
def tiny_model_config(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("config") / "tiny.json")
    tiny_config(block_size="1_1", decoder_size="1", vocab_size=30522).to_json(path)
    return path
