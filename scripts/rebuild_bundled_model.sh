#!/usr/bin/env bash
# Rebuild the bundled model (tangrnn_core/models/tang-lstm.pt and its card) from its recipe, in one command:
# train configs/tang.yaml in two legs, score the best checkpoint once on the test split, pack it into the package.
#
#   bash scripts/rebuild_bundled_model.sh                        # about 4 hours on 2 CPU cores with bf16 units
#   bash scripts/rebuild_bundled_model.sh --ckpt_path BEST.ckpt  # skip training: evaluate and pack this one
#
# The card records the machine this runs on (CPU, cores, bf16 units) and the run's wall-clock time.
set -euo pipefail
cd "$(dirname "$0")/.."

ckpt=""
if [[ "${1:-}" == "--ckpt_path" ]]; then
  ckpt="$2"
else
  # Leg 1: the config as it is (11,500 steps at most, 1 h 55 min). Leg 2: resumed with a longer schedule; the
  # cosine follows the new length from where leg 1 stopped (WarmupCosine keeps the config's shape on resume), and
  # the timer carries on, so max_time counts both legs (docs/tang-model.md, "How it trained").
  tangrnn fit --config configs/tang.yaml --trainer.enable_progress_bar false
  tangrnn fit --config configs/tang.yaml --ckpt_path last --trainer.enable_progress_bar false \
    --trainer.max_steps 18500 --trainer.max_time 00:04:05:00
  # The best checkpoint by validation perplexity of the newest run (leg 2).
  run=$(ls -td runs/tang/lightning_logs/version_* | head -1)
  ckpt=$(ls "$run"/checkpoints/best-step=*.ckpt | head -1)
fi

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
units=$(grep -o -w -E 'avx512_bf16|amx_bf16|avx512_vnni|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ' | sed 's/ $//')
trained_on="${cpu:-an unknown CPU}, $(nproc) cores (${units:-no AVX2}), torch $(python -c 'import torch; print(torch.__version__)')"

evaluation=$(mktemp)
tangrnn evaluate --config configs/tang.yaml --ckpt_path "$ckpt" --form all --num_poems 200 --output json > "$evaluation"
tangrnn models pack --ckpt_path "$ckpt" --evaluation "$evaluation" --trained_on "$trained_on" \
  --output_dir tangrnn_core/models --force
rm -f "$evaluation"
tangrnn models
