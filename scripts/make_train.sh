#!/usr/bin/env bash
# `make train`: the instruction fine-tuning benchmark of issue 13, through the product's own commands.
#
#   data   MEDI files from SciFact and NFCorpus train qrels (BM25 hard negatives) and STS-B train
#   A      the multi-task mix, with instructions          B  the same data and steps, no instructions
#   C      label-free adaptation on each corpus alone      base  the model before fine-tuning
#   (C runs what `instructor-search adapt` runs, minus the re-embedding into a new collection,
#   which the evaluation does itself)
#
# Each model is evaluated on the test splits (dense and hybrid, with the dataset's domain
# instructions and without) and on STS-B test; results go to docs/results/training and
# docs/benchmarks.md. Every step leaves a stamp in $TRAIN_DIR, so a killed run resumes where it
# stopped (training itself resumes from its checkpoints). Choose what runs with STAGES.
set -euo pipefail

BIN=${BIN:-.venv/bin}
CLI="$BIN/instructor-search"
SHARED=${SHARED_DATA:-../shared/data}
DIR=${TRAIN_DIR:-data/train}
STAGES=${STAGES:-"data A base B C"}
TRAIN_FLAGS=${TRAIN_FLAGS:-"--max-seq-length 128 --batch-size 32 --mini-batch-size 16 --epochs 1"}
NFCORPUS_RECORDS=${NFCORPUS_RECORDS:-1500}
STS_MIN_SCORE=${STS_MIN_SCORE:-4.0}
C_MAX_PER_KIND=${C_MAX_PER_KIND:-400}
C_INSTRUCTIONS=${C_INSTRUCTIONS:-"default none"}
LOG="$DIR/train.log"
mkdir -p "$DIR"
[ -d "$SHARED/beir/scifact" ] || { echo "make train needs $SHARED (set SHARED_DATA)" >&2; exit 2; }

step() {  # step NAME COMMAND...: run once; the stamp $DIR/NAME.done marks it finished
  local name=$1; shift
  if [ -e "$DIR/$name.done" ]; then echo "== $name: done before, skipped" | tee -a "$LOG"; return; fi
  echo "== $name: $* ($(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg))" | tee -a "$LOG"
  "$@" 2>&1 | tee -a "$LOG"
  touch "$DIR/$name.done"
}

evaluate() {  # evaluate LABEL MODEL [DATASET:DOMAIN ...]
  local label=$1 model=$2; shift 2
  local pairs=("$@"); [ ${#pairs[@]} -gt 0 ] || pairs=(scifact:science nfcorpus:medicine)
  for pair in "${pairs[@]}"; do
    local dataset=${pair%%:*} domain=${pair##*:}
    for instructions in ${EVAL_INSTRUCTIONS:-default none}; do
      for mode in dense hybrid; do
        step "$label-$dataset-$mode-$instructions" "$CLI" eval beir "$SHARED/beir/$dataset" --model "$model" \
          --domain "$domain" --instructions "$instructions" --mode "$mode" --record --label "$label"
      done
    done
  done
  step "$label-sts" "$CLI" eval sts "$SHARED/sts/stsbenchmark/sts-test.csv" --model "$model" --record --label "$label"
}

DATA=("$DIR/scifact.jsonl" "$DIR/nfcorpus.jsonl" "$DIR/stsb.jsonl")
for stage in $STAGES; do
  case $stage in
    data)
      step data-scifact "$CLI" dataset beir "$SHARED/beir/scifact" --split train --out "$DIR/scifact.jsonl"
      step data-nfcorpus "$CLI" dataset beir "$SHARED/beir/nfcorpus" --split train \
        --max-records "$NFCORPUS_RECORDS" --out "$DIR/nfcorpus.jsonl"
      step data-stsb "$CLI" dataset sts "$SHARED/sts/stsbenchmark/sts-train.csv" --min-score "$STS_MIN_SCORE" \
        --out "$DIR/stsb.jsonl" ;;
    A)
      # shellcheck disable=SC2086
      step train-A "$CLI" train "${DATA[@]}" --output "$DIR/model-A" --resume --record A $TRAIN_FLAGS
      evaluate A "$DIR/model-A" ;;
    B)
      # shellcheck disable=SC2086
      step train-B "$CLI" train "${DATA[@]}" --output "$DIR/model-B" --resume --no-instructions --record B $TRAIN_FLAGS
      evaluate B "$DIR/model-B" ;;
    base)
      evaluate base default ;;
    C)
      # Label-free: the corpus as a user's collection (kept by eval beir --store), pseudo-queries
      # from its own chunks (dataset collection), fine-tuning on them alone (what `adapt` runs).
      for pair in scifact:science nfcorpus:medicine; do
        dataset=${pair%%:*} domain=${pair##*:}
        step "C-$dataset-store" "$CLI" eval beir "$SHARED/beir/$dataset" --domain "$domain" --instructions default \
          --mode dense --store "$DIR/store-$dataset"
        step "C-$dataset-data" "$CLI" dataset collection --collection "beir-$dataset-json" \
          --qdrant-path "$DIR/store-$dataset" --domain "$domain" --max-per-kind "$C_MAX_PER_KIND" \
          --out "$DIR/C-$dataset.jsonl"
        # shellcheck disable=SC2086
        step "C-$dataset-train" "$CLI" train "$DIR/C-$dataset.jsonl" --output "$DIR/model-C-$dataset" --resume \
          --record "C-$dataset" $TRAIN_FLAGS
        EVAL_INSTRUCTIONS=$C_INSTRUCTIONS evaluate "C-$dataset" "$DIR/model-C-$dataset" "$pair"
      done ;;
    *) echo "unknown stage $stage (use: data A base B C)" >&2; exit 2 ;;
  esac
done
echo "== make train finished ($(date -u +%FT%TZ)); results in docs/benchmarks.md" | tee -a "$LOG"
