#!/usr/bin/env bash
# Rebuild the bundled model (tangrnn_core/models/tang-lstm.pt and its card) from its recipe, in one command:
# train configs/tang.yaml in two legs, fine-tune its best checkpoint on the regular forms
# (configs/tang-regular.yaml), score the result once on the test split, pack it into the package.
#
#   bash scripts/rebuild_bundled_model.sh                        # about 4 hours on 2 CPU cores with bf16 units
#   bash scripts/rebuild_bundled_model.sh --base BASE.ckpt       # skip the first stage: fine-tune BASE.ckpt (10 min)
#   bash scripts/rebuild_bundled_model.sh --ckpt_path BEST.ckpt  # skip training: evaluate and pack this one
#
# The card records the machine this runs on (CPU, cores, bf16 units), the run's wall-clock time and, for the
# fine-tuned model, the model it started from (whose checkpoint must still be there when it is packed).
set -euo pipefail
cd "$(dirname "$0")/.."

newest_best() {  # the best checkpoint by validation perplexity of the newest run under $1
  local run
  run=$(ls -td "$1"/lightning_logs/version_* | head -1)
  ls "$run"/checkpoints/best-step=*.ckpt | head -1
}

base=""
ckpt=""
case "${1:-}" in
  --ckpt_path) ckpt="$2" ;;
  --base) base="$2" ;;
  "") ;;
  *) echo "usage: $0 [--base BASE.ckpt | --ckpt_path BEST.ckpt]" >&2; exit 2 ;;
esac

if [[ -z "$ckpt" ]]; then
  if [[ -z "$base" ]]; then
    # Stage 1, leg 1: the config as it is (11,500 steps at most, 1 h 55 min). Leg 2: resumed with a longer
    # schedule; the cosine follows the new length from where leg 1 stopped (WarmupCosine keeps the config's shape
    # on resume), and the timer carries on, so max_time counts both legs (docs/tang-model.md, "How it trained").
    tangrnn fit --config configs/tang.yaml --trainer.enable_progress_bar false
    tangrnn fit --config configs/tang.yaml --ckpt_path last --trainer.enable_progress_bar false \
      --trainer.max_steps 18500 --trainer.max_time 00:04:05:00
    base=$(newest_best runs/tang)
  fi
  # Stage 2: the regular forms alone, from the first stage's weights and with its vocabulary.
  tangrnn fit --config configs/tang-regular.yaml --model.init_from "$base" --data.vocabulary_from "$base" \
    --trainer.enable_progress_bar false
  ckpt=$(newest_best runs/tang-regular)
fi

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
units=$(grep -o -w -E 'avx512_bf16|amx_bf16|avx512_vnni|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ' | sed 's/ $//')
trained_on="${cpu:-an unknown CPU}, $(nproc) cores (${units:-no AVX2}), torch $(python -c 'import torch; print(torch.__version__)')"

# Scored with the first stage's data options (every form for training, the regular forms for validation and
# test), which are also what the card records for a model fine-tuned on a subset of those forms.
evaluation=$(mktemp)
tangrnn evaluate --config configs/tang.yaml --ckpt_path "$ckpt" --form all --num_poems 200 --output json > "$evaluation"
tangrnn models pack --ckpt_path "$ckpt" --evaluation "$evaluation" --trained_on "$trained_on" \
  --output_dir tangrnn_core/models --force
rm -f "$evaluation"
tangrnn models
