"""The tokenizer files of a transformers directory, so that `AutoTokenizer.from_pretrained(export_dir)` packs text
exactly as the run did (`[CLS] A [SEP] B [SEP]`, the same ids, Funnel's `[CLS]` type id 2).

    notes = write_hf_tokenizer("vocab.uncased.txt", "out/cola_hf", uncased=True, max_seq_length=128, fnet=False)
    # out/cola_hf/vocab.txt + tokenizer_config.json (FunnelTokenizer): AutoTokenizer.from_pretrained works

A WordPiece vocabulary is written as transformers' `FunnelTokenizer` (FNet: `BertTokenizer`, whose `[CLS]` type id
0 is FNet's) with the vocabulary's own special entries (`<cls>` in the original's vocabularies, `[CLS]` in BERT's)
and `token_type_ids` among the model inputs: transformers' FunnelTokenizer leaves them out by default, and a
Funnel model then sees `[CLS]` as type 0 instead of 2. A SentencePiece model has no transformers tokenizer that
packs as this project does, so only `tokenizer/` holds it (the returned note says so).
"""

from __future__ import annotations

import json
import os

from funnel_tfm import file_io
from funnel_tfm.data.tokenization import SPECIAL_SYMBOLS, Tokenizer

HF_TOKENIZER_CONFIG = "tokenizer_config.json"
HF_VOCAB = "vocab.txt"
# transformers' keyword of each special token this project knows (bos / eos only where the vocabulary has them).
_HF_SPECIAL_NAMES = {"cls": "cls_token", "sep": "sep_token", "pad": "pad_token", "mask": "mask_token",
                     "unk": "unk_token", "bos": "bos_token", "eos": "eos_token"}


def write_hf_tokenizer(tokenizer_path: str, directory: str, uncased: bool, max_seq_length: int,
                       fnet: bool) -> list[str]:
    """Writes vocab.txt + tokenizer_config.json into `directory` for a WordPiece vocabulary; returns log notes."""
    tokenizer = Tokenizer.from_file(tokenizer_path, uncased=uncased)
    if tokenizer.kind != "wordpiece":
        return [f"tokenizer: {os.path.basename(tokenizer_path)} is a SentencePiece model, which no transformers "
                f"tokenizer packs as this project does; it is in tokenizer/ (pack text with funnel_tfm's Preprocessor)"]
    with file_io.open_file(tokenizer_path, "rb") as source:  # either may be gs:// (a TPU run's model_dir)
        file_io.atomic_write_bytes(os.path.join(directory, HF_VOCAB), source.read())
    config = {"tokenizer_class": "BertTokenizer" if fnet else "FunnelTokenizer", "do_lower_case": uncased,
              "model_max_length": max_seq_length,
              "model_input_names": ["input_ids", "token_type_ids"] + ([] if fnet else ["attention_mask"])}
    vocab = set(tokenizer.vocab)
    for name, hf_name in _HF_SPECIAL_NAMES.items():
        present = [symbol for symbol in SPECIAL_SYMBOLS[name] if symbol in vocab]
        config[hf_name] = present[0] if present else None  # None: transformers adds no token of its own
    file_io.atomic_write_text(os.path.join(directory, HF_TOKENIZER_CONFIG), json.dumps(config, indent=2,
                                                                                     sort_keys=True) + "\n")
    return [f"tokenizer: {HF_VOCAB} + {HF_TOKENIZER_CONFIG} ({config['tokenizer_class']}, "
            f"do_lower_case={uncased}, [CLS] = {config['cls_token']})"]
