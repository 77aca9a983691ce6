"""Finetuned models leaving their model_dir: SavedModels that take raw text (classification, RACE, SQuAD,
tagging), ONNX files checked with onnxruntime, Keras archives, Hugging Face directories, and batch inference.

    finetuned = load_finetuned("exp/cola", checkpoint="best")           # source.py: record + weights
    export_model("exp/cola", "saved_model", "serving/cola/1")          # exporter.py: written atomically
    predict_file("serving/cola/1", "texts.tsv", "predictions.jsonl")   # batch.py: bad lines counted

Rank 7.25 (tests/test_architecture.py): it reads what the training jobs record and builds the tasks' models;
only the entry points `funnel_tfm.export` and `funnel_tfm.predict` sit above it.
"""
