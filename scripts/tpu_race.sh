#!/usr/bin/env bash
# RACE at length 512 on a single-host Cloud TPU, bfloat16: the seed README's recipe (section B): batch 16,
# lr 2e-5, 24,000 steps, warmup 2,400, a checkpoint every 2,400 steps, every checkpoint evaluated on dev
# (accuracy overall, middle, high), --max_qa_length=128. Preprocessing is part of the run (records written to
# GS_PROC_DATA_DIR once, reused after).
#   RACE_DIR=~/RACE GS_ROOT=gs://my-bucket MODEL_DIR=~/B6-6-6H768-ELEC-TF ./scripts/tpu_race.sh
# Base models run on a v2-8; large ones need a v3-16 for batch 16 and a v3-32 for batch 32 (the seed README).
# RACE_DIR is the official release unpacked: {train,dev,test}/{middle,high}/*.txt. Further arguments go to
# python -m funnel_tfm.race.
set -euo pipefail
: "${RACE_DIR:?set RACE_DIR}" "${GS_ROOT:?set GS_ROOT (gs://bucket/path)}" "${MODEL_DIR:?set MODEL_DIR}"
REPO=$(cd "$(dirname "$0")/.." && pwd)
TPU=${TPU_NAME:-local}
GS_INIT_CKPT_DIR=${GS_INIT_CKPT_DIR:-$GS_ROOT/pretrained_ckpt}   # gsutil -m cp -r $MODEL_DIR/* there first
GS_PROC_DATA_DIR=${GS_PROC_DATA_DIR:-$GS_ROOT/proc_data/race}
GS_MODEL_DIR=${GS_MODEL_DIR:-$GS_ROOT/exp/race}
VOCAB=${VOCAB:-$MODEL_DIR/vocab.uncased.txt}
if [[ "${SETUP:-0}" == 1 ]]; then
  "$REPO/scripts/tpu_vm_setup.sh"
fi
if [[ -f "$REPO/.venv/bin/activate" ]]; then
  . "$REPO/.venv/bin/activate"
fi
python -m funnel_tfm.race \
  --use_tpu=True --tpu="$TPU" --use_bfloat16=True --num_hosts=1 --num_core_per_host=8 \
  --data_dir="$RACE_DIR" --output_dir="$GS_PROC_DATA_DIR" --model_dir="$GS_MODEL_DIR" \
  --uncased=True --tokenizer_type=word_piece --tokenizer_path="$VOCAB" \
  --model_config_path="$GS_INIT_CKPT_DIR/net_config.json" --init_checkpoint="$GS_INIT_CKPT_DIR/model.ckpt" \
  --max_seq_length=512 --max_qa_length=128 --do_train=True --do_eval=True \
  --train_batch_size="${BATCH:-16}" --eval_batch_size=16 --train_steps="${TRAIN_STEPS:-24000}" \
  --save_steps=2400 --iterations=2400 --warmup_steps="${WARMUP_STEPS:-2400}" --learning_rate="${LR:-2e-5}" "$@"
