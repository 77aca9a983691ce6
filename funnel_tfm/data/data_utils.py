"""Ids and file names that the data writers, the input pipelines and the model agree on.

    data_utils.CLS_SEGMENT_ID                                     # 2: the segment id of [CLS]
    data_utils.record_name("train", 0, 512, True, 0, 1)           # data.train.pass-0.seq-512.uncased.tfrecord-...
    data_utils.meta_glob("train", 512, True)                      # meta.train.pass-*.seq-512.uncased.json*

Segment ids follow the original (docs/original_semantics.md, D3): [CLS] has its own id 2, the first segment
(with its [SEP]) 0, the second 1. The attention treats [CLS] as belonging to every segment.
"""

from __future__ import annotations

SEGMENT_A_ID = 0
SEGMENT_B_ID = 1
CLS_SEGMENT_ID = 2


def _case(uncased: bool) -> str:
    return "uncased" if uncased else "cased"


def record_name(split: str, pass_id: int, seq_len: int, uncased: bool, task: int, num_task: int) -> str:
    """File name of one task's pretraining records (the original's naming)."""
    return f"data.{split}.pass-{pass_id}.seq-{seq_len}.{_case(uncased)}.tfrecord-{task:05d}-of-{num_task:05d}"


def meta_name(split: str, pass_id: int, seq_len: int, uncased: bool, task: int, num_task: int) -> str:
    """File name of the meta json (file list, example count) that goes with `record_name`."""
    return f"meta.{split}.pass-{pass_id}.seq-{seq_len}.{_case(uncased)}.json-{task:05d}-of-{num_task:05d}"


def meta_glob(split: str, seq_len: int, uncased: bool) -> str:
    """Glob of the meta jsons of every pass and task of one split / length / casing."""
    return f"meta.{split}.pass-*.seq-{seq_len}.{_case(uncased)}.json*"
