#!/usr/bin/env bash
# RACE on one 16 GB GPU: the TPU recipe (length 512, 4 options per question, batch 16 questions = 64 sequences,
# lr 2e-5, 24,000 steps, warmup 2,400, every checkpoint evaluated, accuracy overall / middle / high) with the
# batch split into micro-batches (--gradient_accumulation_steps: the same update, the activation memory of one
# micro-batch) and mixed_float16.
#   RACE_DIR=~/RACE MODEL_DIR=B6-6-6H768-ELEC-TF ./scripts/race_one_gpu.sh
#   MICRO_BATCHES=16 MODEL_DIR=B10-10-10H1024-ELEC-TF ./scripts/race_one_gpu.sh       # a large model
# MICRO_BATCHES: 8 (2 questions = 8 sequences per micro-batch) for the base models on 16 GB, 16 for the large
# ones. These are estimates from the activation count of a 512-token sequence, not measured on a 16 GB card;
# lower the micro-batch if the first step runs out of memory. Further arguments go to python -m funnel_tfm.race.
set -euo pipefail
: "${RACE_DIR:?set RACE_DIR}" "${MODEL_DIR:?set MODEL_DIR (a released checkpoint)}"
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-exp/race}
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-0}
if [[ -f "$REPO/.venv/bin/activate" ]]; then
  . "$REPO/.venv/bin/activate"
fi
python -m funnel_tfm.race \
  --strategy=one_device --precision="${PRECISION:-mixed_float16}" \
  --data_dir="$RACE_DIR" --output_dir="$OUT/proc_data" --model_dir="$OUT/run" \
  --uncased=True --tokenizer_type=word_piece --tokenizer_path="${VOCAB:-$MODEL_DIR/vocab.uncased.txt}" \
  --model_config_path="$MODEL_DIR/net_config.json" --init_checkpoint="$MODEL_DIR/model.ckpt" \
  --max_seq_length=512 --max_qa_length=128 --do_train=True --do_eval=True \
  --train_batch_size="${BATCH:-16}" --gradient_accumulation_steps="${MICRO_BATCHES:-8}" --eval_batch_size=8 \
  --train_steps="${TRAIN_STEPS:-24000}" --save_steps=2400 --iterations=2400 \
  --warmup_steps="${WARMUP_STEPS:-2400}" --learning_rate="${LR:-2e-5}" "$@"
