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

echo "== cam: multi-label classifier (colour and gray) and class activation maps" >&2
# tiny CNN from scratch on the CPU; real data: --arch resnet50 --weights imagenet (IRN's defaults)
TINY=(--arch tiny --optimizer adam --lr 0.002 --head-lr-mult 1 --weight-decay 0 --crop 96 --scales 0.75,1.25
      --batch-size 16 --epochs 2 --device cpu --force)
ws cam train "$OUT/toy/train.json" --val "$OUT/toy/val.json" "${TINY[@]}" -o "$OUT/cls.pt"
ws cam train "$OUT/toy/train.json" --gray "${TINY[@]}" -o "$OUT/cls_gray.pt"
ws cam infer "$OUT/toy/train.json" --model "$OUT/cls.pt" --scales 1.0,0.5 --background features \
    --device cpu -o "$OUT/cams.h5" --force
ws cam infer "$OUT/toy/train.json" --model "$OUT/cls_gray.pt" --scales 1.0,0.5 --subtract-others \
    --device cpu -o "$OUT/cams_gray.h5" --force
ws info "$OUT/cams.h5"
