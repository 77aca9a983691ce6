#!/usr/bin/env bash
# Finetune, evaluate and write the GLUE server's file for one GLUE task on one GPU: the original's
# scripts/finetune.sh (RTE, B4-4-4H768, lr 1e-5, warmup 155, 1550 steps = ~10 epochs of 2,490 examples at
# batch 16, evaluate and save every 155 steps, do_train + do_eval + do_submit) with this package's entry point.
#   GLUE_DIR=glue_data MODEL_DIR=B4-4-4H768-ELEC-TF ./scripts/glue_one_gpu.sh
#   TASK=cola LR=1e-5 TRAIN_STEPS=5350 WARMUP_STEPS=535 SAVE_STEPS=535 PRECISION=mixed_float16 ./scripts/glue_one_gpu.sh
# GLUE_DIR holds the GLUE folders as data-scripts/download_glue.sh unpacks them (CoLA, SST-2, ..., diagnostic);
# MODEL_DIR a released checkpoint (net_config.json, model.ckpt.*, vocab.uncased.txt). Records go to
# OUT/proc_data/TASK, the run (checkpoints, eval/, best_result.json, submit/) to OUT/TASK. Any further
# arguments are passed on to python -m funnel_tfm.classifier (absl takes the last value of a repeated flag).
# scripts/glue_all.sh runs this once per task with each task's recipe.
set -euo pipefail
: "${GLUE_DIR:?set GLUE_DIR}" "${MODEL_DIR:?set MODEL_DIR}"
TASK=${TASK:-rte}
OUT=${OUT:-exp/glue}
# The task's folder in GLUE_DIR (download_glue.sh's names); MNLI matched and mismatched share MNLI.
if [[ -z "${DATA_DIR:-}" ]]; then
  case "${TASK,,}" in
    cola) DATA_DIR=$GLUE_DIR/CoLA ;; sst-2) DATA_DIR=$GLUE_DIR/SST-2 ;; mrpc) DATA_DIR=$GLUE_DIR/MRPC ;;
    sts-b) DATA_DIR=$GLUE_DIR/STS-B ;; qqp) DATA_DIR=$GLUE_DIR/QQP ;; qnli) DATA_DIR=$GLUE_DIR/QNLI ;;
    mnli_matched | mnli_mismatched) DATA_DIR=$GLUE_DIR/MNLI ;; rte) DATA_DIR=$GLUE_DIR/RTE ;;
    wnli) DATA_DIR=$GLUE_DIR/WNLI ;;
    *) echo "glue_one_gpu.sh: TASK=$TASK is not a GLUE task name; set DATA_DIR" >&2; exit 1 ;;
  esac
fi
RUN_DIR=${RUN_DIR:-$OUT/$TASK}
PROC_DIR=${PROC_DIR:-$OUT/proc_data/$TASK}   # outside RUN_DIR: FRESH=1 keeps the tokenized records
VOCAB=${VOCAB:-$MODEL_DIR/vocab.uncased.txt}
# The README's spelling: the config json and the checkpoint prefix of the released tarball.
MODEL_CONFIG=${MODEL_CONFIG:-$MODEL_DIR/net_config.json}
INIT_CHECKPOINT=${INIT_CHECKPOINT:-$MODEL_DIR/model.ckpt}
# Recipe (finetune.sh's RTE values).
LR=${LR:-1e-5}
BATCH=${BATCH:-16}
TRAIN_STEPS=${TRAIN_STEPS:-1550}
WARMUP_STEPS=${WARMUP_STEPS:-155}
SAVE_STEPS=${SAVE_STEPS:-155}              # every saved checkpoint is evaluated; the best one is submitted
ITERATIONS=${ITERATIONS:-$SAVE_STEPS}      # steps per host call (and per progress line)
MAX_SEQ_LENGTH=${MAX_SEQ_LENGTH:-128}
EVAL_BATCH=${EVAL_BATCH:-8}
# float32 as the original; mixed_float16 (float16 compute, dynamic loss scaling) runs on the GPU's tensor cores.
PRECISION=${PRECISION:-float32}
# The original's finetune.sh deleted the model dir first; here a rerun resumes from the last checkpoint
# unless FRESH=1.
FRESH=${FRESH:-0}
# One GPU as in the README's `CUDA_VISIBLE_DEVICES=0`; one_device takes the first visible one. An empty
# CUDA_VISIBLE_DEVICES (CPU only) is kept.
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-0}

if [[ "$FRESH" == 1 ]]; then
  rm -rf "$RUN_DIR"
fi
python -m funnel_tfm.classifier \
  --task_name="$TASK" --data_dir="$DATA_DIR" --output_dir="$PROC_DIR" --model_dir="$RUN_DIR" \
  --uncased=True --tokenizer_type=word_piece --tokenizer_path="$VOCAB" \
  --model_config_path="$MODEL_CONFIG" --init_checkpoint="$INIT_CHECKPOINT" \
  --strategy=one_device --precision="$PRECISION" \
  --do_train=True --do_eval=True --do_submit=True \
  --max_seq_length="$MAX_SEQ_LENGTH" --train_batch_size="$BATCH" --eval_batch_size="$EVAL_BATCH" \
  --learning_rate="$LR" --train_steps="$TRAIN_STEPS" --warmup_steps="$WARMUP_STEPS" \
  --save_steps="$SAVE_STEPS" --iterations="$ITERATIONS" "$@"
