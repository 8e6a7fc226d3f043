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

echo "== proposals: class-agnostic segments with masks (selective-search hierarchy)" >&2
ws propose "$OUT/toy/train.json" -o "$OUT/proposals.h5" --workers 2 --force
# the same in two shards (Slurm arrays / GNU parallel), joined with ws merge
ws propose "$OUT/toy/train.json" -o "$OUT/proposals.0.h5" --shard 0/2 --force
ws propose "$OUT/toy/train.json" -o "$OUT/proposals.1.h5" --shard 1/2 --force
ws merge "$OUT/proposals.merged.h5" "$OUT/proposals.0.h5" "$OUT/proposals.1.h5" --force
ws info "$OUT/proposals.h5"
ws eval proposals "$OUT/proposals.h5" --gt "$OUT/toy/train.json" --objects all
# salient instances (Fan et al.'s starting point), kept to the 20 best after mask NMS
ws propose "$OUT/toy/train.json" -o "$OUT/salient.h5" --method saliency --nms 0.7 --top 20 --force

echo "== graph + cut: dataset-level tag assignment (Fan et al. Eq. 5-8, LIID multi-way cut)" >&2
ws toy "$OUT/feat" --train 0 --val 0 --features 400 --feature-dim 256 --seed 0 --force
ws graph "$OUT/feat/features.h5" -o "$OUT/graph_fan.h5" --knn 3 --weights fan --force
ws graph "$OUT/feat/features.h5" -o "$OUT/graph_liid.h5" --knn 3 --weights liid --delta 5 --force
ws cut "$OUT/graph_liid.h5" -o "$OUT/assign_multiway.h5" --method multiway --force
ws cut "$OUT/graph_fan.h5" -o "$OUT/assign_fan.h5" --method fan --beta 30 --retention 0.9 --force
ws cut "$OUT/graph_fan.h5" -o "$OUT/assign_attention.h5" --method attention --force
ws info "$OUT/assign_multiway.h5"

echo "== cam: multi-label classifier (colour and gray) and class activation maps" >&2
# the tiny residual CNN from scratch on the CPU (--recipe toy), on 3000 distinct toy images of 64 px
# of its own (same classes; more images generalise better than more epochs); real data: the
# default recipe with --weights imagenet (IRN's ResNet-50)
ws toy "$OUT/camtoy" --train 3000 --val 0 --size 64 --seed 1 --force
ws cam train "$OUT/camtoy/train.json" --recipe toy --device cpu --threads 1 --force -o "$OUT/cls.pt"
ws cam train "$OUT/camtoy/train.json" --gray --recipe toy --epochs 1 --device cpu --threads 1 --force \
    -o "$OUT/cls_gray.pt"
ws cam infer "$OUT/toy/train.json" --model "$OUT/cls.pt" --scales 1.0,0.5 --background features \
    --device cpu -o "$OUT/cams.h5" --force
ws cam infer "$OUT/toy/train.json" --model "$OUT/cls_gray.pt" --scales 1.0 --subtract-others \
    --device cpu -o "$OUT/cams_gray.h5" --force
ws info "$OUT/cams.h5"
ws eval cams "$OUT/cams.h5" --gt "$OUT/toy/train.json"

echo "== features: per-proposal probabilities + features from pixels -> graph -> cut -> eval (Fan, LIID)" >&2
# route 1: CAM probabilities (LIID Eq. 3 mean + max in the box) and ROI-Align features of the classifier
ws features "$OUT/toy/train.json" --proposals "$OUT/proposals.h5" --cams "$OUT/cams.h5" --model "$OUT/cls.pt" \
    --proposals-per-image 20 --device cpu -o "$OUT/features_cam.h5" --force
# route 2: LIID's proposal MIL network (Eq. 2-9), backbone from the classifier; real data: --arch resnet50
ws features train-mil "$OUT/toy/train.json" --proposals "$OUT/proposals.h5" --cams "$OUT/cams.h5" --arch tiny \
    --init "$OUT/cls.pt" --optimizer adam --lr 0.001 --epochs 1 --device cpu -o "$OUT/mil.pt" --force
ws features "$OUT/toy/train.json" --proposals "$OUT/proposals.h5" --model "$OUT/mil.pt" --device cpu \
    -o "$OUT/features_mil.h5" --force
for src in cam mil; do
  ws graph "$OUT/features_$src.h5" -o "$OUT/graph_$src.h5" --knn 3 --weights liid --delta 5 --force
  ws cut "$OUT/graph_$src.h5" -o "$OUT/assign_$src.h5" --method multiway --force
  ws eval assignment "$OUT/assign_$src.h5" --proposals "$OUT/proposals.h5" --gt "$OUT/toy/train.json"
done

echo "== grow + export-coco: seed cues, region growing, CRF, pseudo labels out (Sun et al., DSRG, LIID)" >&2
ws grow seeds "$OUT/cams.h5" --fg top:0.2 --bg cams:0.05 -o "$OUT/seeds.h5" --force
# Sun et al.: colour cues (background from the features map) and gray cues, snapped, fused by OR
ws grow seeds "$OUT/cams.h5" --fg rel:0.3 --bg features:0.2 --snap felzenszwalb \
    --manifest "$OUT/toy/train.json" -o "$OUT/seeds_rgb.h5" --force
ws grow seeds "$OUT/cams_gray.h5" --fg rel:0.3 --bg cams:0.05 --snap felzenszwalb \
    --manifest "$OUT/toy/train.json" -o "$OUT/seeds_gray.h5" --force
ws grow seeds "$OUT/seeds_rgb.h5" "$OUT/seeds_gray.h5" -o "$OUT/seeds_sun.h5" --force
ws grow region "$OUT/seeds.h5" --probs "$OUT/cams.h5" -o "$OUT/grown.h5" --force
ws grow crf "$OUT/cams.h5" --manifest "$OUT/toy/train.json" -o "$OUT/crf.h5" --force
ws eval semantic "$OUT/grown.h5" --gt "$OUT/toy/train.json" --unlabeled ignore
ws export-coco "$OUT/assign_cam.h5" --proposals "$OUT/proposals.h5" --manifest "$OUT/toy/train.json" \
    -o "$OUT/pseudo.json" --semantic "$OUT/pseudo_png" --force
ws export-coco "$OUT/grown.h5" --manifest "$OUT/toy/train.json" --semantic "$OUT/grown_png" --force

echo "== prm + icn + match: instances from peak response maps and proposals (Huang et al. 2021)" >&2
# peaks (Eq. 1) and one back-propagated response map per peak (Eq. 2) on the training and val images
ws cam peaks "$OUT/toy/train.json" --model "$OUT/cls.pt" --device cpu -o "$OUT/prm.h5" --force
ws cam peaks "$OUT/toy/val.json" --model "$OUT/cls.pt" --device cpu -o "$OUT/prm_val.h5" --force
ws propose "$OUT/toy/val.json" -o "$OUT/proposals_val.h5" --force
# ICN enhancer (tiny encoder on the CPU; real data: --encoder vgg16 --epochs 120) on top-3 proposal unions
ws icn train "$OUT/toy/train.json" --responses "$OUT/prm.h5" --proposals "$OUT/proposals.h5" --encoder tiny \
    --size 64 --epochs 1 --device cpu -o "$OUT/icn.pt" --force
ws icn infer "$OUT/toy/val.json" --responses "$OUT/prm_val.h5" --model "$OUT/icn.pt" --steps 3 --device cpu \
    -o "$OUT/prm_val_icn.h5" --force
# proposal matching (Eq. 5) + NMS -> COCO results; the plain score of Zhou et al. for comparison
ws match "$OUT/toy/val.json" --responses "$OUT/prm_val_icn.h5" --proposals "$OUT/proposals_val.h5" \
    -o "$OUT/prm_results.json" --force
ws match "$OUT/toy/val.json" --responses "$OUT/prm_val.h5" --proposals "$OUT/proposals_val.h5" --score plain \
    -o "$OUT/prm_results_plain.json" --force
ws eval instance "$OUT/prm_results.json" --gt "$OUT/toy/val.json"
ws eval instance "$OUT/prm_results_plain.json" --gt "$OUT/toy/val.json"

echo "== train-seg + predict: segmentation network on label maps, scored by ws eval (DSRG, Sun et al.)" >&2
# tiny network from scratch on the CPU (backbone from the colour classifier, Sun et al.); real data:
# --arch deeplabv3_resnet101 --init cls.pt with the DSRG defaults (SGD 1e-3, batch 20, crop 321)
SEG=(--arch tiny --optimizer adam --lr 0.003 --crop 96 --scales 0.75,1.25 --loss-at input --batch-size 16
     --epochs 2 --device cpu --force)
# the fully supervised upper bound: the ground-truth label maps (a folder of <id>.png)
ws train-seg "$OUT/toy/train.json" --labels "$OUT/toy/semantic" --val "$OUT/toy/val.json" --init "$OUT/cls.pt" \
    "${SEG[@]}" -o "$OUT/seg_gt.pt"
# multi-scale + flip, prediction-amended testing with the classifier; labels + probabilities
ws predict "$OUT/toy/val.json" --model "$OUT/seg_gt.pt" --scales 1,0.75 --flip --classifier "$OUT/cls.pt" \
    --device cpu -o "$OUT/seg_val.h5" --probs "$OUT/seg_val_probs.h5" --force
ws eval semantic "$OUT/seg_val.h5" --gt "$OUT/toy/val.json"
