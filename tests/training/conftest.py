"""Fixtures of the pretraining tests: the real BERT vocabulary and small real-text records (one set per module)."""

from __future__ import annotations

import pytest

from funnel_tfm.data import data_fetch
from funnel_tfm.data.tokenization import Tokenizer
from pretrain_helpers import write_records


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.from_file(data_fetch.bert_uncased_vocab())


@pytest.fixture(scope="module")
def records(tmp_path_factory, tokenizer) -> str:
    return write_records(str(tmp_path_factory.mktemp("records")), tokenizer)
