#!/usr/bin/env bash
# All of GLUE on one GPU, one task after the other (scripts/glue_one_gpu.sh with each task's recipe), then one
# table of every task's best dev result and one zip of the test predictions for gluebenchmark.com.
#   GLUE_DIR=glue_data MODEL_DIR=B6-6-6H768-ELEC-TF OUT=exp/glue ./scripts/glue_all.sh
#   TASKS="rte mrpc sts-b" PRECISION=mixed_float16 ./scripts/glue_all.sh      # a subset, float16
#   TASKS="rte sts-b" MAX_STEPS=4 MAX_SEQ_LENGTH=32 ./scripts/glue_all.sh     # smoke test: every recipe capped
# Each task's run (checkpoints, eval/, best_result.json, submit/) is OUT/<task>; the table is OUT/summary.md,
# the zip OUT/glue_submission.zip. A task that fails is reported at the end and the others still run.
# GLUE_DIR, MODEL_DIR, PRECISION, MAX_SEQ_LENGTH, EVAL_BATCH, FRESH are read by glue_one_gpu.sh (see there);
# further arguments are passed on to every python -m funnel_tfm.classifier.
set -euo pipefail
: "${GLUE_DIR:?set GLUE_DIR}" "${MODEL_DIR:?set MODEL_DIR}"
HERE=$(cd "$(dirname "$0")" && pwd)
export GLUE_DIR MODEL_DIR
export OUT=${OUT:-exp/glue}
# In GLUE's order. mnli_mismatched trains its own model, as the original did (its head scope is the task name,
# so the matched model's head does not load); drop it from TASKS to save the second MNLI training.
TASKS=${TASKS:-cola sst-2 mrpc sts-b qqp mnli_matched mnli_mismatched qnli rte wnli}
MAX_STEPS=${MAX_STEPS:-}   # caps every recipe (smoke tests): steps, warmup (at a tenth of them), save interval

# Recipe per task: "learning_rate batch train_steps warmup_steps save_steps" (length: MAX_SEQ_LENGTH, 128).
# Every checkpoint is evaluated on dev and the best one predicts test, so save_steps is about one epoch.
# The original published two: CoLA (the README's GPU example: ~10 epochs, 10% warmup, save every epoch) and
# RTE (scripts/finetune.sh). The others are ours, the usual BERT-style ones where the original gave none:
# batch 32, 10% warmup, 3 epochs of the large sets (lr 1e-5), 10 epochs of the small ones (MRPC, STS-B: lr 2e-5),
# 5 of WNLI; steps = epochs x ceil(train examples / 32).
declare -A RECIPES=(
  [cola]="1e-5 16 5350 535 535"              # README (A.1): 8,551 examples
  [sst-2]="1e-5 32 6315 631 2105"            # ours: 67,349 examples, 3 epochs
  [mrpc]="2e-5 32 1150 115 115"              # ours: 3,668 examples, 10 epochs
  [sts-b]="2e-5 32 1800 180 180"             # ours: 5,749 examples, 10 epochs
  [qqp]="1e-5 32 34110 3411 11370"           # ours: 363,846 examples, 3 epochs
  [mnli_matched]="1e-5 32 36816 3682 12272"  # ours: 392,702 examples, 3 epochs; its submit also writes AX.tsv
  [mnli_mismatched]="1e-5 32 36816 3682 12272"
  [qnli]="1e-5 32 9822 982 3274"             # ours: 104,743 examples, 3 epochs
  [rte]="1e-5 16 1550 155 155"               # scripts/finetune.sh: 2,490 examples, ~10 epochs
  [wnli]="1e-5 32 100 10 20"                 # ours: 635 examples, 5 epochs (the original submitted all 0)
)

min() { echo $(( $1 < $2 ? $1 : $2 )); }
failed=()
for task in $TASKS; do
  if [[ -z "${RECIPES[$task]:-}" ]]; then
    echo "glue_all.sh: no recipe for $task (have: ${!RECIPES[*]})" >&2
    failed+=("$task")
    continue
  fi
  read -r lr batch steps warmup save <<< "${RECIPES[$task]}"
  if [[ -n "$MAX_STEPS" ]]; then
    steps=$(min "$steps" "$MAX_STEPS"); warmup=$(min "$warmup" $(( steps / 10 ))); save=$(min "$save" "$steps")
  fi
  echo "=== $task: lr $lr, batch $batch, $steps steps, warmup $warmup, save every $save"
  # Empty DATA_DIR / RUN_DIR / PROC_DIR: glue_one_gpu.sh derives them from the task, whatever the caller exported.
  if ! TASK=$task LR=$lr BATCH=$batch TRAIN_STEPS=$steps WARMUP_STEPS=$warmup SAVE_STEPS=$save ITERATIONS=$save \
       DATA_DIR= RUN_DIR= PROC_DIR= "$HERE/glue_one_gpu.sh" "$@"; then
    echo "glue_all.sh: $task failed" >&2
    failed+=("$task")
  fi
done

# One table of the best dev results, and every submit/*.tsv (AX.tsv from mnli_matched included) in one zip.
python - "$OUT" $TASKS <<'EOF'
import glob, json, os, sys, zipfile

out, tasks = sys.argv[1], sys.argv[2:]
metrics = ("accuracy", "f1", "mcc", "pearson", "spearman")
lines = ["| task | best step | " + " | ".join(metrics) + " | dev examples |", "|---" * (len(metrics) + 3) + "|"]
for task in tasks:
    path = os.path.join(out, task, "best_result.json")
    if not os.path.exists(path):
        lines.append(f"| {task} | (no result) |" + " |" * (len(metrics) + 1))
        continue
    best = json.load(open(path))
    cells = [f"{best[m]:.4f}" if m in best else "" for m in metrics]
    lines.append(f"| {task} | {best['step']} | " + " | ".join(cells) + f" | {best.get('num_examples', '')} |")
table = "\n".join(lines) + "\n"
with open(os.path.join(out, "summary.md"), "w") as handle:
    handle.write(table)
print(table + f"(also in {os.path.join(out, 'summary.md')})")
files = sorted(f for task in tasks for f in glob.glob(os.path.join(out, task, "submit", "*.tsv")))
if files:
    archive = os.path.join(out, "glue_submission.zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        for name in files:
            handle.write(name, os.path.basename(name))  # the server wants the files at the zip's root
    print(f"{archive}: {', '.join(os.path.basename(f) for f in files)}")
EOF

if (( ${#failed[@]} )); then
  echo "glue_all.sh: failed: ${failed[*]}" >&2
  exit 1
fi
