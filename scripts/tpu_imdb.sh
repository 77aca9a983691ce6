#!/usr/bin/env bash
# IMDB sentiment finetuning at length 512 on a single-host Cloud TPU (v2-8 / v3-8 / v4-8), bfloat16: the seed
# README's recipe (A.2): batch 32, lr 1e-5, 4,000 steps (~5 epochs of 25,000 reviews), 10% warmup, a checkpoint
# every 400 steps, every checkpoint evaluated on the 25,000 test reviews (the original's dev split for IMDB).
# Run it on the TPU VM, from this repository:
#   GS_ROOT=gs://my-bucket MODEL_DIR=~/B6-6-6H768-ELEC-TF ./scripts/tpu_imdb.sh
#   SETUP=1 GS_ROOT=gs://my-bucket MODEL_DIR=~/B6-6-6H768-ELEC-TF LR=2e-5 ./scripts/tpu_imdb.sh
# or from elsewhere: gcloud compute tpus tpu-vm ssh $TPU_NAME --zone=$ZONE --command="cd funnel_tfm && GS_ROOT=..."
# As in the README, the raw data and the vocabulary are local (tokenization runs on this host's CPUs, faster
# from local disk) while the records, the checkpoints and the initial checkpoint are on Cloud Storage.
# Any further arguments are passed on to python -m funnel_tfm.classifier.
set -euo pipefail
: "${GS_ROOT:?set GS_ROOT (gs://bucket/path)}"
REPO=$(cd "$(dirname "$0")/.." && pwd)
# `local` = the TPU of this TPU VM; TPU_NAME names a TPU node (older setup with a separate host).
TPU=${TPU_NAME:-local}
# Upload a released checkpoint first: gsutil -m cp -r B6-6-6H768-ELEC-TF/* $GS_ROOT/pretrained_ckpt/
GS_INIT_CKPT_DIR=${GS_INIT_CKPT_DIR:-$GS_ROOT/pretrained_ckpt}
GS_PROC_DATA_DIR=${GS_PROC_DATA_DIR:-$GS_ROOT/proc_data/imdb}
GS_MODEL_DIR=${GS_MODEL_DIR:-$GS_ROOT/exp/imdb}
IMDB_DIR=${IMDB_DIR:-$HOME/aclImdb}        # aclImdb_v1: train/{neg,pos}, test/{neg,pos}; downloaded if absent
IMDB_URL=${IMDB_URL:-http://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz}
MODEL_DIR=${MODEL_DIR:-}                   # a local copy of the released checkpoint, for its vocabulary
VOCAB=${VOCAB:-$MODEL_DIR/vocab.uncased.txt}
# The README: "For different model size, the optimal LR is different. Try [1e-5, 2e-5, 3e-5]."
LR=${LR:-1e-5}
TRAIN_STEPS=${TRAIN_STEPS:-4000}
WARMUP_STEPS=${WARMUP_STEPS:-400}
SAVE_STEPS=${SAVE_STEPS:-400}              # = iterations: one host call per checkpoint
MAX_SEQ_LENGTH=${MAX_SEQ_LENGTH:-512}      # IMDB reviews are long; 512 gives the best result (README)

if [[ "${SETUP:-0}" == 1 ]]; then
  # A fresh .venv with tensorflow-tpu 2.20 (the last TensorFlow with TPU wheels) and this package.
  "$REPO/scripts/tpu_vm_setup.sh"
fi
if [[ -f "$REPO/.venv/bin/activate" ]]; then
  . "$REPO/.venv/bin/activate"
fi
if [[ ! -f "$VOCAB" ]]; then
  echo "tpu_imdb.sh: no vocabulary at '$VOCAB': set MODEL_DIR (local checkpoint dir) or VOCAB" >&2
  exit 1
fi
if [[ ! -d "$IMDB_DIR/train" ]]; then
  echo "tpu_imdb.sh: downloading IMDB into $IMDB_DIR"
  mkdir -p "$IMDB_DIR"
  curl -fsSL "$IMDB_URL" | tar -xz -C "$IMDB_DIR" --strip-components=1
fi

python -m funnel_tfm.classifier \
  --use_tpu=True --tpu="$TPU" --use_bfloat16=True \
  --do_train=True --do_eval=True --eval_all_ckpt=True \
  --task_name=imdb --data_dir="$IMDB_DIR" --output_dir="$GS_PROC_DATA_DIR" --model_dir="$GS_MODEL_DIR" \
  --uncased=True --tokenizer_type=word_piece --tokenizer_path="$VOCAB" \
  --model_config_path="$GS_INIT_CKPT_DIR/net_config.json" --init_checkpoint="$GS_INIT_CKPT_DIR/model.ckpt" \
  --max_seq_length="$MAX_SEQ_LENGTH" --train_batch_size=32 --eval_batch_size=8 \
  --learning_rate="$LR" --train_steps="$TRAIN_STEPS" --warmup_steps="$WARMUP_STEPS" \
  --save_steps="$SAVE_STEPS" --iterations="$SAVE_STEPS" "$@"
