#!/usr/bin/env bash
# SQuAD v2.0 download and preprocessing, as the original's scripts/prepro_squad.sh: fetch train-v2.0.json and
# dev-v2.0.json into SQUAD_DIR (when absent), then write the training records with NUM_PROC parallel processes
# (each writes every NUM_PROC-th question; training reads them all) and the evaluation records and feature index.
#   SQUAD_DIR=~/squad VOCAB=B6-6-6H768-ELEC-TF/vocab.uncased.txt OUTPUT_DIR=gs://bucket/proc_data/squad \
#     ./scripts/prepro_squad.sh
#   NUM_PROC=8 MAX_SEQ_LENGTH=384 ./scripts/prepro_squad.sh      # more processes; another length
# The raw files and the vocabulary are local (tokenization runs on this host's CPUs); OUTPUT_DIR may be on Cloud
# Storage. Records already written with the same settings are reused. Further arguments go to every process.
# The seed README's three fields, data_dir, tokenizer_path and output_dir, may be set here or in the environment
# under those names too.
set -euo pipefail
data_dir=${data_dir:-}
tokenizer_path=${tokenizer_path:-}
output_dir=${output_dir:-}
SQUAD_DIR=${SQUAD_DIR:-$data_dir} VOCAB=${VOCAB:-$tokenizer_path} OUTPUT_DIR=${OUTPUT_DIR:-$output_dir}
: "${SQUAD_DIR:?set SQUAD_DIR or data_dir (local directory of the raw json)}"
: "${VOCAB:?set VOCAB or tokenizer_path (vocab.uncased.txt)}"
: "${OUTPUT_DIR:?set OUTPUT_DIR or output_dir (records; local or gs://)}"
REPO=$(cd "$(dirname "$0")/.." && pwd)
SQUAD_URL=${SQUAD_URL:-https://rajpurkar.github.io/SQuAD-explorer/dataset}
VERSION=${VERSION:-v2}                    # v1: train-v1.1.json / dev-v1.1.json
NUM_PROC=${NUM_PROC:-$(nproc)}
MAX_SEQ_LENGTH=${MAX_SEQ_LENGTH:-512}
MAX_QUERY_LENGTH=${MAX_QUERY_LENGTH:-64}
DOC_STRIDE=${DOC_STRIDE:-128}
if [[ "$VERSION" == v1 ]]; then SUFFIX=v1.1; else SUFFIX=v2.0; fi
if [[ -f "$REPO/.venv/bin/activate" ]]; then
  . "$REPO/.venv/bin/activate"
fi
mkdir -p "$SQUAD_DIR"
for split in train dev; do
  if [[ ! -f "$SQUAD_DIR/$split-$SUFFIX.json" ]]; then
    echo "prepro_squad.sh: downloading $split-$SUFFIX.json into $SQUAD_DIR"
    curl -fsSL -o "$SQUAD_DIR/$split-$SUFFIX.json.part" "$SQUAD_URL/$split-$SUFFIX.json"
    mv "$SQUAD_DIR/$split-$SUFFIX.json.part" "$SQUAD_DIR/$split-$SUFFIX.json"
  fi
done
COMMON=(--train_file="$SQUAD_DIR/train-$SUFFIX.json" --predict_file="$SQUAD_DIR/dev-$SUFFIX.json"
        --output_dir="$OUTPUT_DIR" --uncased=True --tokenizer_type=word_piece --tokenizer_path="$VOCAB"
        --max_seq_length="$MAX_SEQ_LENGTH" --max_query_length="$MAX_QUERY_LENGTH" --doc_stride="$DOC_STRIDE"
        --train_version="$VERSION" --eval_version="$VERSION")
pids=()
for ((proc = 0; proc < NUM_PROC; proc++)); do
  python -m funnel_tfm.squad --prepro_split=train --num_proc="$NUM_PROC" --proc_id="$proc" "${COMMON[@]}" "$@" &
  pids+=($!)
done
python -m funnel_tfm.squad --prepro_split=eval "${COMMON[@]}" "$@"
for pid in "${pids[@]}"; do
  wait "$pid"   # set -e: a failed process fails the script
done
echo "prepro_squad.sh: records in $OUTPUT_DIR"
