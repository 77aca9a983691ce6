#!/usr/bin/env bash
# MLM pretraining on all GPUs of one machine (MirroredStrategy), float16 with dynamic loss scaling, XLA.
#   RECORDS=records/seq512 VOCAB=vocab.txt MODEL_DIR=runs/mlm ./scripts/multi_gpu_mlm.sh
# Several machines: set TF_CONFIG on each (cluster of workers, this task's index) and use
# --strategy=multi_worker; the global batch is split over every GPU of every worker.
set -euo pipefail
: "${RECORDS:?set RECORDS}" "${VOCAB:?set VOCAB}" "${MODEL_DIR:?set MODEL_DIR}"
python -m funnel_tfm.pretrain \
  --strategy=mirrored --precision=mixed_float16 --jit_compile=true \
  --record_dir="$RECORDS" --tokenizer_path="$VOCAB" --model_dir="$MODEL_DIR" \
  --model_config=B4-4-4H768 --loss_type=mlm --sample_strategy=word_span \
  --seq_len=512 --num_predict=85 \
  --train_batch_size="${BATCH:-64}" --train_steps="${STEPS:-500000}" --warmup_steps=10000 --learning_rate=1e-4 \
  --iterations=200 --save_steps=5000 --max_save=5 "$@"
