#!/usr/bin/env bash
# SQuAD v2.0 on one 16 GB GPU: the TPU recipe (length 512, batch 48, lr 3e-5, layer-wise decay 0.75, 8,000 steps,
# warmup 1,000, every checkpoint scored on dev-v2.0, best by best_f1) with the batch of 48 split into
# micro-batches (--gradient_accumulation_steps: the same update, the activation memory of one micro-batch) and
# mixed_float16 (float16 compute on the tensor cores, float32 weights, dynamic loss scaling). Preprocessing
# included (scripts/prepro_squad.sh, skipped when the records exist).
#   SQUAD_DIR=~/squad MODEL_DIR=B6-6-6H768-ELEC-FULL-TF ./scripts/squad_one_gpu.sh
#   MICRO_BATCHES=12 MODEL_DIR=B10-10-10H1024-ELEC-FULL-TF ./scripts/squad_one_gpu.sh     # a large model
# MICRO_BATCHES: 6 (micro-batch 8) for the base models on 16 GB, 12 (micro-batch 4) for the large ones; 1 on an
# 80 GB card. These sizes are estimates from the activation count of one 512-token example, not measured on a
# 16 GB card; lower the micro-batch if the first step runs out of memory. Further arguments go to
# python -m funnel_tfm.squad.
set -euo pipefail
: "${SQUAD_DIR:?set SQUAD_DIR}" "${MODEL_DIR:?set MODEL_DIR (a released checkpoint: net_config.json, model.ckpt.*)}"
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-exp/squad}
VOCAB=${VOCAB:-$MODEL_DIR/vocab.uncased.txt}
PROC_DIR=${PROC_DIR:-$OUT/proc_data}
RUN_DIR=${RUN_DIR:-$OUT/run}
BATCH=${BATCH:-48}
MICRO_BATCHES=${MICRO_BATCHES:-6}
PRECISION=${PRECISION:-mixed_float16}
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-0}
if [[ -f "$REPO/.venv/bin/activate" ]]; then
  . "$REPO/.venv/bin/activate"
fi
SQUAD_DIR=$SQUAD_DIR VOCAB=$VOCAB OUTPUT_DIR=$PROC_DIR "$REPO/scripts/prepro_squad.sh"
python -m funnel_tfm.squad \
  --strategy=one_device --precision="$PRECISION" \
  --do_train=True --do_predict=True \
  --train_file="$SQUAD_DIR/train-v2.0.json" --predict_file="$SQUAD_DIR/dev-v2.0.json" \
  --output_dir="$PROC_DIR" --model_dir="$RUN_DIR" --predict_dir="$RUN_DIR/predict" \
  --uncased=True --tokenizer_type=word_piece --tokenizer_path="$VOCAB" \
  --model_config_path="$MODEL_DIR/net_config.json" --init_checkpoint="$MODEL_DIR/model.ckpt" \
  --max_seq_length=512 --max_query_length=64 --doc_stride=128 --train_version=v2 --eval_version=v2 \
  --num_proc="${NUM_PROC:-$(nproc)}" \
  --learning_rate="${LR:-3e-5}" --lr_layer_decay_rate=0.75 --train_steps="${TRAIN_STEPS:-8000}" \
  --warmup_steps="${WARMUP_STEPS:-1000}" --train_batch_size="$BATCH" \
  --gradient_accumulation_steps="$MICRO_BATCHES" --predict_batch_size=16 \
  --save_steps="${SAVE_STEPS:-1000}" --iterations="${SAVE_STEPS:-1000}" --target_eval_key=best_f1 "$@"
