"""Data: tokenizers, preprocessors, readers and writers, tf.data pipelines, shared ids and file names.

No model code. `data_utils` (ids, file names), `tokenization`, `preprocessing` (tokenize and pack
`[CLS] A [SEP] B [SEP]`), `pretrain_records` (raw text -> records), `input_func_builder` (tf.data + masking),
`classifier_data` (GLUE, text-classification and custom readers), `classifier_records` (finetuning records and
pipelines), `example_proto` (in-graph Example serializer), `race_data` (RACE), `conll` (CoNLL files, sub-token
alignment), `tagging_records` (the tagger's records and pipelines), `data_fetch` (real data by exact version).
"""
