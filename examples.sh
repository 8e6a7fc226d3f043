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
ws viz "$OUT/toy/train.json" --first 4 -o "$OUT/toy_gt.png" --force
