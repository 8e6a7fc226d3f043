#!/usr/bin/env bash
# End-to-end recipes on the synthetic `ws toy` data. Each stage is one command that
# reads files and writes one file; open any of them with `ws info FILE`.
#   bash examples.sh            # everything, into examples-out/
#   OUT=/tmp/x bash examples.sh
set -euo pipefail
OUT=${OUT:-examples-out}
mkdir -p "$OUT"
ws() { command ws "$@"; }

echo "== data: a synthetic weakly-labelled dataset" >&2
ws toy "$OUT/toy" --train 120 --val 40 --size 96 --seed 0 --force
ws dataset check "$OUT/toy/train.json"
ws info "$OUT/toy/train.json"

echo "== graph + cut: dataset-level tag assignment (Fan et al. Eq. 5-8, LIID multi-way cut)" >&2
ws toy "$OUT/feat" --train 0 --val 0 --features 400 --feature-dim 256 --seed 0 --force
ws graph "$OUT/feat/features.h5" -o "$OUT/graph_fan.h5" --knn 3 --weights fan --force
ws graph "$OUT/feat/features.h5" -o "$OUT/graph_liid.h5" --knn 3 --weights liid --delta 5 --force
ws cut "$OUT/graph_liid.h5" -o "$OUT/assign_multiway.h5" --method multiway --force
ws cut "$OUT/graph_fan.h5" -o "$OUT/assign_fan.h5" --method fan --beta 30 --retention 0.9 --force
ws cut "$OUT/graph_fan.h5" -o "$OUT/assign_attention.h5" --method attention --force
ws info "$OUT/assign_multiway.h5"
