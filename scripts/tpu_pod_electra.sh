#!/usr/bin/env bash
# ELECTRA pretraining of B6-6-6H768 on a TPU VM pod slice (e.g. v4-32), bfloat16, the paper's large-batch recipe.
# Run from a machine with gcloud; every host of the slice runs the same command (TPUStrategy on all hosts).
#   TPU_NAME=my-pod ZONE=us-central2-b BUCKET=gs://my-bucket ./scripts/tpu_pod_electra.sh
# The repository must be at $REPO (relative to the home directory) on every host. SETUP=1 first (re)creates its
# .venv on every host with scripts/tpu_vm_setup.sh: tensorflow-tpu 2.20, because tensorflow-tpu 2.20.0 is the
# last TensorFlow release with TPU wheels (funnel_tfm supports TensorFlow 2.20 and 2.21; CI tests both).
# Records: create_pretrain_data --save_dir=$BUCKET/records/seq512 --seq_len=512 (one task per host with
# --num_proc/--proc_id, or --parallel on one big machine).
set -euo pipefail
: "${TPU_NAME:?set TPU_NAME}" "${ZONE:?set ZONE}" "${BUCKET:?set BUCKET}"
RECORDS=${RECORDS:-$BUCKET/records/seq512}
MODEL_DIR=${MODEL_DIR:-$BUCKET/runs/electra-B6-6-6H768}
VOCAB=${VOCAB:-$BUCKET/vocab/vocab.uncased.txt}
REPO=${REPO:-funnel_tfm}

if [[ "${SETUP:-0}" == 1 ]]; then
  gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" --worker=all --command="
    cd $REPO && ./scripts/tpu_vm_setup.sh"
fi

gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" --worker=all --command="
  cd $REPO && . .venv/bin/activate &&
  python -m funnel_tfm.pretrain \
    --strategy=tpu --tpu=local --precision=mixed_bfloat16 \
    --record_dir=$RECORDS --tokenizer_path=$VOCAB --model_dir=$MODEL_DIR \
    --model_config=B6-6-6H768 --loss_type=electra --width_shrink=0.25 --disc_coeff=50 \
    --seq_len=512 --num_predict=85 --sample_strategy=single_token \
    --train_batch_size=256 --train_steps=1000000 --warmup_steps=10000 --learning_rate=1e-4 \
    --iterations=1000 --save_steps=10000 --max_save=5"
