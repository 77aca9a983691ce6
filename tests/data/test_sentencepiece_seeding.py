"""A SentencePiece `Tokenizer` made before seeding keeps working after it: `keras.utils.set_random_seed` (through
`tf.random.set_seed`) clears TensorFlow's eager kernel cache, which deletes a model that tensorflow-text keeps
private to its op's kernel. Every job makes its tokenizer first and seeds afterwards."""

from __future__ import annotations

import keras
import pytest
import tensorflow as tf
import tensorflow_text as text

from funnel_tfm.data.tokenization import Tokenizer, sp_preprocess_with_sources
from spm_helpers import train_sentencepiece

LINES = ["The Congress shall assemble at least once in every year.",
         "  “Naïve”  CAFÉ ‘quotes’   and ``more''  ", "Fellow-Citizens of the Senate and House of Representatives:"]


@pytest.fixture(scope="module")
def sentencepiece_models(tmp_path_factory) -> tuple[str, str]:
    """Two different models (1,000 and 600 pieces)."""
    return (train_sentencepiece(str(tmp_path_factory.mktemp("spm1000"))),
            train_sentencepiece(str(tmp_path_factory.mktemp("spm600")), vocab_size=600))


def test_tokenizer_made_before_seeding_works_after_it(sentencepiece_models):
    import sentencepiece
    path, other_path = sentencepiece_models
    with open(path, "rb") as handle:
        proto = handle.read()
    tokenizer, other = Tokenizer.from_file(path), Tokenizer.from_file(other_path)
    expected = [sentencepiece.SentencePieceProcessor(model_file=path).encode(sp_preprocess_with_sources(
        line, True).text) for line in LINES]
    expected_other = [sentencepiece.SentencePieceProcessor(model_file=other_path).encode(sp_preprocess_with_sources(
        line, True).text) for line in LINES]
    assert expected != expected_other  # two models: a resource shared between them would show
    raw = text.SentencepieceTokenizer(model=proto, out_type=tf.int32)  # tensorflow-text's own, for contrast
    assert raw.tokenize(tf.constant(["the congress"])).to_list() == [expected[0][:2]]
    offsets = tokenizer.encode_batch_with_offsets(LINES)
    # a tf.data pipeline and a traced function made before seeding hold the model's handle
    dataset = tf.data.Dataset.from_tensor_slices(LINES).batch(3).map(lambda s: tokenizer.tokenize(s).to_tensor(-1))
    traced = tf.function(lambda s: tokenizer.tokenize(s).to_tensor(-1))
    traced(tf.constant(LINES))

    keras.utils.set_random_seed(1)

    # tensorflow-text's tokenizer loses its model: what this test guards against (if this stops failing, a
    # tensorflow-text release keeps the model itself and `_SharedSentencepieceModel` may go)
    with pytest.raises(tf.errors.NotFoundError, match="does not exist"):
        raw.tokenize(tf.constant(["the congress"]))
    assert tokenizer.encode_batch(LINES) == expected
    assert other.encode_batch(LINES) == expected_other
    assert tokenizer.encode_batch_with_offsets(LINES) == offsets
    padded = [ids + [-1] * (max(map(len, expected)) - len(ids)) for ids in expected]
    assert next(iter(dataset)).numpy().tolist() == padded
    assert traced(tf.constant(LINES)).numpy().tolist() == padded
    assert tokenizer.trackables()["sentencepiece"].vocab_size().numpy() == tokenizer.vocab_size == 1000
    assert Tokenizer.from_file(path).encode_batch(LINES) == expected  # a second tokenizer of the model: shared


def test_saved_model_tokenizes_after_seeding(sentencepiece_models, tmp_path):
    """The shared model resource saves and loads: a SavedModel that tracks the tokenizer (as the raw-text exports
    do) rebuilds it on load and keeps it through seeding."""
    path = sentencepiece_models[0]
    tokenizer = Tokenizer.from_file(path)
    module = tf.Module()
    module.tokenizer = tokenizer.trackables()["sentencepiece"]
    module.serve = tf.function(lambda s: tokenizer.tokenize(s).to_tensor(-1),
                               input_signature=[tf.TensorSpec([None], tf.string)])
    expected = module.serve(tf.constant(LINES)).numpy().tolist()
    tf.saved_model.save(module, str(tmp_path / "saved"))
    loaded = tf.saved_model.load(str(tmp_path / "saved"))
    keras.utils.set_random_seed(2)
    assert loaded.serve(tf.constant(LINES)).numpy().tolist() == expected
