#!/usr/bin/env bash
# SQuAD v2.0 finetuning at length 512 on a single-host Cloud TPU, bfloat16: the original's scripts/tpu_squad.sh
# recipe (lr 3e-5, layer-wise decay 0.75, 8,000 steps, warmup 1,000, batch 48, a checkpoint every 1,000 steps,
# every checkpoint evaluated on dev-v2.0 with the official numbers, best by best_f1), preprocessing included
# (scripts/prepro_squad.sh; skipped when the records exist). The original's script had three bugs (an undefined
# ${output_dir}, a ${GS_MODeL_DIR} typo, and --eval_batch_size, which its squad.py did not define); not here.
#   GS_ROOT=gs://my-bucket MODEL_DIR=~/B10-10-10H1024-ELEC-FULL-TF ./scripts/tpu_squad.sh
#   SETUP=1 GS_ROOT=gs://my-bucket MODEL_DIR=~/B6-6-6H768-ELEC-FULL-TF ./scripts/tpu_squad.sh
# Large models (B10-10-10H1024, B8-8-8H1024) need a v3-8; base models run on a v2-8 (the seed README).
# The FULL checkpoints hold the decoder, which SQuAD reads; a checkpoint without one starts its decoder afresh.
# Further arguments go to python -m funnel_tfm.squad.
set -euo pipefail
: "${GS_ROOT:?set GS_ROOT (gs://bucket/path)}" "${MODEL_DIR:?set MODEL_DIR (local copy of the released checkpoint)}"
REPO=$(cd "$(dirname "$0")/.." && pwd)
TPU=${TPU_NAME:-local}
# Upload the released checkpoint first: gsutil -m cp -r $MODEL_DIR/* $GS_ROOT/pretrained_ckpt/
GS_INIT_CKPT_DIR=${GS_INIT_CKPT_DIR:-$GS_ROOT/pretrained_ckpt}
GS_PROC_DATA_DIR=${GS_PROC_DATA_DIR:-$GS_ROOT/proc_data/squad}
GS_MODEL_DIR=${GS_MODEL_DIR:-$GS_ROOT/exp/squad}
SQUAD_DIR=${SQUAD_DIR:-$HOME/squad}
VOCAB=${VOCAB:-$MODEL_DIR/vocab.uncased.txt}
LR=${LR:-3e-5}
TRAIN_STEPS=${TRAIN_STEPS:-8000}
WARMUP_STEPS=${WARMUP_STEPS:-1000}
SAVE_STEPS=${SAVE_STEPS:-1000}
BATCH=${BATCH:-48}

if [[ "${SETUP:-0}" == 1 ]]; then
  "$REPO/scripts/tpu_vm_setup.sh"
fi
if [[ -f "$REPO/.venv/bin/activate" ]]; then
  . "$REPO/.venv/bin/activate"
fi
SQUAD_DIR=$SQUAD_DIR VOCAB=$VOCAB OUTPUT_DIR=$GS_PROC_DATA_DIR "$REPO/scripts/prepro_squad.sh"
python -m funnel_tfm.squad \
  --use_tpu=True --tpu="$TPU" --use_bfloat16=True \
  --do_train=True --do_predict=True \
  --train_file="$SQUAD_DIR/train-v2.0.json" --predict_file="$SQUAD_DIR/dev-v2.0.json" \
  --output_dir="$GS_PROC_DATA_DIR" --model_dir="$GS_MODEL_DIR" --predict_dir="$GS_MODEL_DIR/predict" \
  --uncased=True --tokenizer_type=word_piece --tokenizer_path="$VOCAB" \
  --model_config_path="$GS_INIT_CKPT_DIR/net_config.json" --init_checkpoint="$GS_INIT_CKPT_DIR/model.ckpt" \
  --max_seq_length=512 --max_query_length=64 --doc_stride=128 --train_version=v2 --eval_version=v2 \
  --num_proc="${NUM_PROC:-$(nproc)}" \
  --learning_rate="$LR" --lr_layer_decay_rate=0.75 --train_steps="$TRAIN_STEPS" --warmup_steps="$WARMUP_STEPS" \
  --train_batch_size="$BATCH" --predict_batch_size=32 --save_steps="$SAVE_STEPS" --iterations="$SAVE_STEPS" \
  --target_eval_key=best_f1 "$@"
