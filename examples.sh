#!/usr/bin/env bash
# The five papers' recipes end to end, `ws` commands only, every stage's output a file in a work
# folder, then the results table (benchmarks/results.py). Open any file with `ws info FILE`.
#
#   bash examples.sh                  # every recipe on fresh `ws toy` data, into examples-out/
#   bash examples.sh fan dsrg         # only these (plus the shared data / classifier / CAM stages)
#   bash examples.sh --data DIR       # your own manifests DIR/train.json and DIR/val.json (ws dataset ...)
#   bash examples.sh --data DIR --tiny  # the same with the tiny CPU networks: an offline smoke test of your data
#   bash examples.sh --gpu            # train and infer on CUDA
#   bash examples.sh --full           # the README's results tables: the default run with 3 seeds
#   bash examples.sh --seeds 0,1,2    # one run per seed into OUT/seed<S>/, then mean +- std tables
#   bash examples.sh --smoke          # the CI smoke size (tests/test_examples.py): minutes, not numbers
#   bash examples.sh --sam DIR --clip DIR  # SAM proposals / CLIP-ES CAMs from checkpoint folders (README) in every recipe
#   OUT=/tmp/x bash examples.sh       # another work folder
#
# Recipes: cam (reference: threshold the CAMs), fan, liid, prm, sun, dsrg, full (reference: GT labels).
set -euo pipefail

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
RECIPES=()
DATA=""
SIZE_PROFILE=default
DEVICE=cpu
SEEDS=""
TINY=""
SAM=""
CLIP=""
ARGS=("$@")
while [ $# -gt 0 ]; do
  case "$1" in
    cam|fan|liid|prm|sun|dsrg|full) RECIPES+=("$1") ;;
    all) RECIPES+=(cam fan liid prm sun dsrg full) ;;
    --data) DATA=${2:?--data needs a folder}; shift ;;
    --full) SIZE_PROFILE=full ;;
    --smoke) SIZE_PROFILE=smoke ;;
    --gpu) DEVICE=cuda ;;
    --tiny) TINY=1 ;;
    --sam) SAM=${2:?--sam needs a SAM checkpoint folder}; shift ;;
    --clip) CLIP=${2:?--clip needs a CLIP checkpoint folder}; shift ;;
    --seeds) SEEDS=${2:?--seeds needs a list such as 0,1,2}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "examples.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
[ ${#RECIPES[@]} -gt 0 ] || RECIPES=(cam fan liid prm sun dsrg full)
want() { local r; for r in "${RECIPES[@]}"; do [ "$r" = "$1" ] && return 0; done; return 1; }

OUT=${OUT:-examples-out}
[ -n "$SEEDS" ] || { [ "$SIZE_PROFILE" = full ] && SEEDS=0,1,2 || SEEDS=0; }
case $SEEDS in *[!0-9,]*|,*|*,|*,,*) echo "examples.sh: --seeds wants numbers separated by commas, got '$SEEDS'" >&2; exit 2 ;; esac
if [[ $SEEDS == *,* ]]; then
  # several seeds: one complete run per seed (its own toy data, classifier and networks), then the
  # tables of mean +- standard deviation over the runs
  FOLDERS=()
  for s in ${SEEDS//,/ }; do
    echo "=== seed $s" >&2
    OUT="$OUT/seed$s" WS_EXAMPLES_ONE_OF_SEEDS=1 bash "$0" "${ARGS[@]}" --seeds "$s" > /dev/null
    FOLDERS+=("$OUT/seed$s")
  done
  RESULTS=("$OUT/results.md")
  [ "$SIZE_PROFILE" = full ] && [ -z "$DATA" ] && RESULTS+=("$(dirname "$0")/benchmarks/results.md")
  for r in "${RESULTS[@]}"; do python "$(dirname "$0")/benchmarks/results.py" "${FOLDERS[@]}" -o "$r" > /dev/null; done
  cat "$OUT/results.md"
  exit 0
fi
SEED=$SEEDS
mkdir -p "$OUT"
# run.json and results.md mark a finished run (written last); run.json records the code's hash
# (benchmarks/results.py --source-hash) and the arguments: tests/test_examples.py reuses such a run
rm -f "$OUT/run.json" "$OUT/results.md"
SOURCE=$(python "$(dirname "$0")/benchmarks/results.py" --source-hash)
for r in common "${RECIPES[@]}"; do rm -f "$OUT/$r/times.tsv"; mkdir -p "$OUT/$r"; done

# Sizes. default: the README's main job (minutes on 2 CPU cores); full: the README's results table;
# smoke: the CI test (every stage runs, numbers mean little).
case $SIZE_PROFILE in
  default) NTRAIN=120 NVAL=40 SIZE=96  NCAM=4000 CAMSIZE=64 SEG_EPOCHS=27 MRCNN_EPOCHS=27 MIL_EPOCHS=1 MIL_STEPS=200 ICN_EPOCHS=1 ;;
  # full: the default sizes, three seeds (each seed its own toy data, classifier and networks)
  full)    NTRAIN=120 NVAL=40 SIZE=96  NCAM=4000 CAMSIZE=64 SEG_EPOCHS=27 MRCNN_EPOCHS=27 MIL_EPOCHS=1 MIL_STEPS=200 ICN_EPOCHS=1 ;;
  smoke)   NTRAIN=16 NVAL=8 SIZE=64    NCAM=200 CAMSIZE=64 SEG_EPOCHS=1 MRCNN_EPOCHS=1 MIL_EPOCHS=1 MIL_STEPS=1 ICN_EPOCHS=1 ;;
esac

# Every `ws` call is timed into OUT/<recipe>/times.tsv (stage<TAB>seconds) for the results table.
STAGE=common
ws() {
  local t0 ms
  t0=$(date +%s%N)
  command ws "$@"
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  printf '%s %s\t%d.%03d\n' "$1" "${2:-}" $((ms / 1000)) $((ms % 1000)) >> "$OUT/$STAGE/times.tsv"
}
# `ws eval ...` whose JSON summary line the results table reads: evaluate NAME eval ...
evaluate() { local name=$1; shift; ws "$@" > "$OUT/$STAGE/$name.json"; }
json_get() { python -c 'import json, sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])[sys.argv[2]])' "$@"; }

# Networks: tiny CNNs from scratch on toy data (and with --tiny); ImageNet-initialised ResNets on real
# data. Every segmentation network starts from the colour classifier's backbone (--init, Sun et al. Sect. 3.5).
if [ -z "$DATA" ] || [ -n "$TINY" ]; then
  CLS=(--recipe toy --threads 1)
  # 27 epochs of 15 batches: where the supervised reference levels off (benchmarks/seg_toy.py --tradeoff);
  # the boundary loss's CRF on logits pooled by 4 (DSRG / SEC: at the network's stride)
  SEG=(--arch tiny --optimizer adam --lr 0.001 --head-lr-mult 3 --crop "$SIZE" --scales 0.75,1.25 --loss-at input
       --batch-size 8 --boundary-stride 4)
  # the proposal-free contour network: AP50 0.37 supervised on toy data where maskrcnn_tiny reaches 0.10
  MRCNN=(--arch contour_tiny --optimizer adam --lr 0.001 --weight-decay 0 --batch-size 8)
  MIL=(--arch tiny --optimizer adam --lr 0.001 --batch-size 8)
  ICN=(--encoder tiny --size 64)
  PEAKS=(--max-peaks 3)     # a toy image holds at most a few instances of a class
  # the supervised reference's loss: background is 86 % of a toy image's pixels and cross-entropy leaves the
  # small classes under-recalled; DSRG's Eq. 1 on the GT maps (fore- and background normalised apart), tested
  # with the CRF, has the highest mean and the narrowest spread measured, level with cross-entropy
  # (benchmarks/supervised_loss.py; README, Results of the recipes)
  SUPERVISED=(--loss balanced-seed)
  # DSRG's stage 2 trains "in a fully-supervised way" (Sect. 4.4): as the supervised reference trains here.
  # On ws toy's 400-image val sets it beats ce beyond the spread (benchmarks/val_size.py; README)
  RETRAIN=(--retrain-loss balanced-seed)
else
  CLS=(--weights imagenet)
  SEG=(--arch deeplabv3_resnet50)   # its backbone from the ResNet-50 classifier (--init)
  MRCNN=(--arch maskrcnn_resnet50_fpn)
  MIL=(--arch resnet50)
  PEAKS=(--max-peaks 0)
  ICN=(--encoder vgg16)             # VGG-16 from random weights (no --weights for ICN yet)
  SUPERVISED=(--loss ce)            # DeepLab's own supervised training
  RETRAIN=(--retrain-loss ce)       # DSRG's stage 2: the paper's DeepLab (its released SoftmaxWithLoss)
  SEG_EPOCHS=20 MRCNN_EPOCHS=12 MIL_EPOCHS=10 MIL_STEPS=0 ICN_EPOCHS=120
fi
DEV=(--device "$DEVICE")
RUN_SEED=(--seed "$SEED")   # every training command: initialisation, shuffling, augmentation
# --sam: SAM's automatic masks are both the segment proposals and the salient instances (WeakSAM's swap)
if [ -n "$SAM" ]; then
  # --smoke: an 8 x 8 grid of point prompts instead of SAM's 32 x 32 (the stage runs; numbers mean little)
  SAM_GRID=(); [ "$SIZE_PROFILE" = smoke ] && SAM_GRID=(--points-per-side 8)
  PROPOSE=(--method sam --checkpoint "$SAM" "${SAM_GRID[@]}" "${DEV[@]}")
  SALIENT=(--method sam --checkpoint "$SAM" "${SAM_GRID[@]}" --nms 0.7 --top 20 "${DEV[@]}")
else
  PROPOSE=(--workers 2)
  SALIENT=(--method saliency --nms 0.7 --top 20 --workers 2)
fi

echo "== shared: data, classifier, class activation maps" >&2
if [ -z "$DATA" ]; then
  D=$OUT/toy
  ws toy "$D" --train "$NTRAIN" --val "$NVAL" --size "$SIZE" --seed "$SEED" --force
  # the classifier learns from its own, larger toy set of the same classes (--recipe toy: 8 epochs;
  # it underfits, so images x epochs is what counts); real data: the train manifest with --weights imagenet
  ws toy "$OUT/camtoy" --train "$NCAM" --val 0 --size "$CAMSIZE" --seed $((SEED + 1000)) --force
  CLS_TRAIN=$OUT/camtoy/train.json
else
  D=$DATA
  CLS_TRAIN=$D/train.json
fi
TRAIN=$D/train.json
VAL=$D/val.json
ws dataset check "$TRAIN"
ws dataset check "$VAL"
ws viz "$TRAIN" --first 4 -o "$OUT/common/gt.png" --force
ws cam train "$CLS_TRAIN" "${CLS[@]}" "${DEV[@]}" "${RUN_SEED[@]}" -o "$OUT/common/cls.pt" --force
if [ -n "$CLIP" ]; then
  # --clip: training-free CLIP-ES CAMs replace the classifier's as the recipes' shared CAMs
  ws cam clip "$TRAIN" --checkpoint "$CLIP" "${DEV[@]}" -o "$OUT/common/cams.h5" --force
else
  ws cam infer "$TRAIN" --model "$OUT/common/cls.pt" --scales 1.0,0.5 --background features "${DEV[@]}" \
      -o "$OUT/common/cams.h5" --force
fi
ws viz "$OUT/common/cams.h5" --first 4 -o "$OUT/common/cams.png" --force
if want liid || want prm; then
  # segment proposals with masks (selective-search hierarchy), for LIID's MIL network and Huang et al.'s matching
  ws propose "$TRAIN" "${PROPOSE[@]}" -o "$OUT/common/proposals.h5" --force
fi
if want fan || want liid; then
  # class-agnostic salient instances (Fan et al. Sect. 3.1), the nodes of Fan's and LIID's graphs
  ws propose "$TRAIN" "${SALIENT[@]}" -o "$OUT/common/salient.h5" --force
fi

if want cam; then
  echo "== CAM only (reference): every pixel labelled argmax(t, CAMs), t the best threshold on train" >&2
  STAGE=cam
  evaluate eval_pseudo_train eval cams "$OUT/common/cams.h5" --gt "$TRAIN"
  T=$(json_get "$OUT/cam/eval_pseudo_train.json" best_threshold)
  # the val images' tagged classes: an oracle a test set lacks, so an upper reference for the recipes
  ws cam infer "$VAL" --model "$OUT/common/cls.pt" --scales 1.0,0.5 "${DEV[@]}" -o "$OUT/cam/cams_val.h5" --force
  evaluate eval_semantic_val eval cams "$OUT/cam/cams_val.h5" --gt "$VAL" --thresholds "$T"
  # oracle input: CAMs that are the blurred GT masks (the ceiling of thresholding)
  ws oracle cams "$TRAIN" -o "$OUT/cam/oracle_cams.h5" --force
  evaluate eval_oracle_train eval cams "$OUT/cam/oracle_cams.h5" --gt "$TRAIN"
fi

# Segmentation training + prediction + scoring on val, shared by the recipes: seg_on NAME LABELS [options]
seg_on() {
  local name=$1 labels=$2; shift 2
  ws train-seg "$TRAIN" --labels "$labels" --init "$OUT/common/cls.pt" --epochs "$SEG_EPOCHS" "${SEG[@]}" \
      "${DEV[@]}" "${RUN_SEED[@]}" "$@" -o "$OUT/$STAGE/$name.pt" --force
}
predict_eval() {
  local name=$1 json=$2; shift 2
  ws predict "$VAL" --model "$OUT/$STAGE/$name.pt" "${DEV[@]}" "$@" -o "$OUT/$STAGE/${name}_val.h5" --force
  evaluate "$json" eval semantic "$OUT/$STAGE/${name}_val.h5" --gt "$VAL"
}
# oracle input for the proposal recipes: the perfect assignment of PROPOSALS (ws oracle assignment),
# exported like the recipe's own: oracle_on PROPOSALS [export-coco options]
oracle_on() {
  local proposals=$1; shift
  ws oracle assignment "$proposals" --gt "$TRAIN" -o "$OUT/$STAGE/assignment_oracle.h5" --force
  ws export-coco "$OUT/$STAGE/assignment_oracle.h5" --proposals "$proposals" --manifest "$TRAIN" "$@" \
      --semantic "$OUT/$STAGE/oracle_png" --force
  evaluate eval_oracle_train eval semantic "$OUT/$STAGE/oracle_png" --gt "$TRAIN"
}
mask_rcnn_on() {
  ws train-seg "$TRAIN" --task instance --coco "$1" --init "$OUT/common/cls.pt" --epochs "$MRCNN_EPOCHS" \
      "${MRCNN[@]}" "${DEV[@]}" "${RUN_SEED[@]}" -o "$OUT/$STAGE/maskrcnn.pt" --force
  ws predict "$VAL" --model "$OUT/$STAGE/maskrcnn.pt" "${DEV[@]}" -o "$OUT/$STAGE/instances_val.json" --force
  evaluate eval_instance_val eval instance "$OUT/$STAGE/instances_val.json" --gt "$VAL"
}

if want fan; then
  echo "== Fan et al. (ECCV 2018): salient instances, CAM box means + ROI features, kNN graph, Eq. 8 cut" >&2
  STAGE=fan; F=$OUT/fan
  ws features "$TRAIN" --proposals "$OUT/common/salient.h5" --cams "$OUT/common/cams.h5" --model "$OUT/common/cls.pt" \
      --prob box-mean "${DEV[@]}" -o "$F/features.h5" --force
  ws graph "$F/features.h5" --knn 3 --weights fan -o "$F/graph.h5" --force
  ws cut "$F/graph.h5" --method fan --beta 30 --retention 0.9 -o "$F/assignment.h5" --force
  evaluate eval_assignment eval assignment "$F/assignment.h5" --proposals "$OUT/common/salient.h5" --gt "$TRAIN"
  ws export-coco "$F/assignment.h5" --proposals "$OUT/common/salient.h5" --manifest "$TRAIN" -o "$F/pseudo.json" \
      --semantic "$F/pseudo_png" --force
  evaluate eval_pseudo_train eval semantic "$F/pseudo_png" --gt "$TRAIN"
  evaluate eval_pseudo_instances eval instance "$F/pseudo.json" --gt "$TRAIN"
  # the paper's ablation: the attention (probabilities) alone, without the graph
  ws cut "$F/graph.h5" --method attention -o "$F/assignment_attention.h5" --force
  ws export-coco "$F/assignment_attention.h5" --proposals "$OUT/common/salient.h5" --manifest "$TRAIN" \
      -o "$F/pseudo_attention.json" --force
  evaluate ablation_off eval instance "$F/pseudo_attention.json" --gt "$TRAIN"
  oracle_on "$OUT/common/salient.h5"
  seg_on deeplab "$F/pseudo_png"
  predict_eval deeplab eval_semantic_val
  mask_rcnn_on "$F/pseudo.json"
  ws viz "$OUT/common/salient.h5" --first 4 --top 5 -o "$F/proposals.png" --force
  ws viz "$F/pseudo.json" --dataset "$TRAIN" --gt --first 4 -o "$F/pseudo.png" --force
fi

if want liid; then
  echo "== LIID (TPAMI): MIL network on segment proposals, knowledge graph on salient instances, multi-way cut" >&2
  STAGE=liid; L=$OUT/liid; SAL=$OUT/common/salient.h5
  # the MIL network learns from 20 segment proposals per image (Sect. 4), for enough optimizer steps that
  # its probabilities rank true instances above noise (--min-steps; benchmarks/features_quality.py)
  ws features train-mil "$TRAIN" --proposals "$OUT/common/proposals.h5" --cams "$OUT/common/cams.h5" "${MIL[@]}" \
      --init "$OUT/common/cls.pt" --proposals-per-image 20 --epochs "$MIL_EPOCHS" --min-steps "$MIL_STEPS" \
      "${DEV[@]}" "${RUN_SEED[@]}" -o "$L/mil.pt" --force
  # the knowledge graph is built on salient instances (Sect. 6.1, following Fan et al.), each node linked to
  # at most its strongest neighbours (Sect. 5.3): ws graph --weights liid's defaults
  ws features "$TRAIN" --proposals "$SAL" --model "$L/mil.pt" --proposals-per-image 20 "${DEV[@]}" \
      -o "$L/features.h5" --force
  ws graph "$L/features.h5" --weights liid -o "$L/graph.h5" --force
  ws cut "$L/graph.h5" --method multiway -o "$L/assignment.h5" --force
  evaluate eval_assignment eval assignment "$L/assignment.h5" --proposals "$SAL" --gt "$TRAIN"
  ws export-coco "$L/assignment.h5" --proposals "$SAL" --manifest "$TRAIN" --nms-iou 0.4 \
      -o "$L/pseudo.json" --semantic "$L/pseudo_png" --force
  evaluate eval_pseudo_train eval semantic "$L/pseudo_png" --gt "$TRAIN"
  evaluate eval_pseudo_instances eval instance "$L/pseudo.json" --gt "$TRAIN"
  # the paper's ablation (Table 1): the MIL network's probabilities alone, without the cut
  ws cut "$L/graph.h5" --method attention -o "$L/assignment_mil.h5" --force
  ws export-coco "$L/assignment_mil.h5" --proposals "$SAL" --manifest "$TRAIN" --nms-iou 0.4 \
      -o "$L/pseudo_mil.json" --force
  evaluate ablation_off eval instance "$L/pseudo_mil.json" --gt "$TRAIN"
  oracle_on "$SAL" --nms-iou 0.4
  seg_on deeplab "$L/pseudo_png"
  predict_eval deeplab eval_semantic_val
  mask_rcnn_on "$L/pseudo.json"
  ws viz "$L/pseudo.json" --dataset "$TRAIN" --gt --first 4 -o "$L/pseudo.png" --force
fi

if want prm; then
  echo "== Huang et al. (PRM + ICN): peak response maps, ICN enhancement, proposal matching" >&2
  STAGE=prm; P=$OUT/prm
  ws cam peaks "$TRAIN" --model "$OUT/common/cls.pt" "${PEAKS[@]}" "${DEV[@]}" -o "$P/prm.h5" --force
  ws icn train "$TRAIN" --responses "$P/prm.h5" --proposals "$OUT/common/proposals.h5" "${ICN[@]}" \
      --epochs "$ICN_EPOCHS" "${DEV[@]}" "${RUN_SEED[@]}" -o "$P/icn.pt" --force
  # pseudo instances on train (scored as semantic labels by merging)
  ws icn infer "$TRAIN" --responses "$P/prm.h5" --model "$P/icn.pt" --steps 3 "${DEV[@]}" -o "$P/prm_icn.h5" --force
  ws match "$TRAIN" --responses "$P/prm_icn.h5" --proposals "$OUT/common/proposals.h5" -o "$P/instances_train.json" --force
  ws export-coco "$P/instances_train.json" --manifest "$TRAIN" --semantic "$P/pseudo_png" --force
  evaluate eval_pseudo_train eval semantic "$P/pseudo_png" --gt "$TRAIN"
  oracle_on "$OUT/common/proposals.h5"
  # val: the method itself is the predictor (no network trained on its output)
  # val: no tags at test time, the classifier's predicted classes
  ws cam peaks "$VAL" --model "$OUT/common/cls.pt" --classes-from predicted "${PEAKS[@]}" "${DEV[@]}" \
      -o "$P/prm_val.h5" --force
  ws propose "$VAL" "${PROPOSE[@]}" -o "$P/proposals_val.h5" --force
  ws icn infer "$VAL" --responses "$P/prm_val.h5" --model "$P/icn.pt" --steps 3 "${DEV[@]}" \
      -o "$P/prm_val_icn.h5" --force
  ws match "$VAL" --responses "$P/prm_val_icn.h5" --proposals "$P/proposals_val.h5" \
      -o "$P/instances_val.json" --force
  evaluate eval_instance_val eval instance "$P/instances_val.json" --gt "$VAL"
  ws export-coco "$P/instances_val.json" --manifest "$VAL" --semantic "$P/val_png" --force
  evaluate eval_semantic_val eval semantic "$P/val_png" --gt "$VAL"
  # the paper's ablation (Table 1, semantic mIoU): naive PRMs (no ICN), matched and merged the same way
  ws match "$VAL" --responses "$P/prm_val.h5" --proposals "$P/proposals_val.h5" \
      -o "$P/instances_val_naive.json" --force
  ws export-coco "$P/instances_val_naive.json" --manifest "$VAL" --semantic "$P/val_naive_png" --force
  evaluate ablation_off eval semantic "$P/val_naive_png" --gt "$VAL"
  ws viz "$P/prm_val_icn.h5" --first 4 --top 4 -o "$P/responses.png" --force
  ws viz "$P/instances_val.json" --dataset "$VAL" --gt --first 4 -o "$P/instances.png" --force
fi

if want sun; then
  echo "== Sun et al.: colour + gray cues with other-class subtraction, superpixel snapping, OR fusion" >&2
  STAGE=sun; S=$OUT/sun
  SUN_CUES=(--fg rel:0.3 --bg features:0.2)        # Sect. 3.2: above 30 % of the max; features below 0.2
  SNAP=(--snap felzenszwalb --manifest "$TRAIN")   # Sect. 3.3: mean per superpixel
  # both classifiers trained alike and both cue sources with the feature-map background (Sect. 3.2)
  ws cam train "$CLS_TRAIN" --gray "${CLS[@]}" "${DEV[@]}" "${RUN_SEED[@]}" -o "$S/cls_gray.pt" --force
  ws cam infer "$TRAIN" --model "$OUT/common/cls.pt" --scales 1.0,0.5 --subtract-others --background features \
      "${DEV[@]}" -o "$S/cams_rgb.h5" --force
  ws cam infer "$TRAIN" --model "$S/cls_gray.pt" --scales 1.0,0.5 --subtract-others --background features \
      "${DEV[@]}" -o "$S/cams_gray.h5" --force
  ws grow seeds "$S/cams_rgb.h5" "${SUN_CUES[@]}" -o "$S/cues_rgb_raw.h5" --force
  ws grow seeds "$S/cams_rgb.h5" "${SUN_CUES[@]}" "${SNAP[@]}" -o "$S/cues_rgb.h5" --force
  ws grow seeds "$S/cams_gray.h5" "${SUN_CUES[@]}" "${SNAP[@]}" -o "$S/cues_gray.h5" --force
  ws grow seeds "$S/cues_rgb.h5" "$S/cues_gray.h5" -o "$S/cues.h5" --force
  evaluate eval_cues_train eval semantic "$S/cues.h5" --gt "$TRAIN" --unlabeled ignore
  # the paper's ablation, scored as the paper scores cues (unlabelled = background): snapped + fused
  # against the raw colour cues (no snapping, no gray fusion)
  evaluate eval_cues_bg_train eval semantic "$S/cues.h5" --gt "$TRAIN"
  evaluate ablation_off eval semantic "$S/cues_rgb_raw.h5" --gt "$TRAIN"
  # oracle input: CAMs = blurred GT masks, through the same cue rule and snapping
  ws oracle cams "$TRAIN" -o "$S/oracle_cams.h5" --force
  ws grow seeds "$S/oracle_cams.h5" "${SUN_CUES[@]}" "${SNAP[@]}" -o "$S/cues_oracle.h5" --force
  evaluate eval_oracle_train eval semantic "$S/cues_oracle.h5" --gt "$TRAIN" --unlabeled ignore
  # seeding + boundary loss, the network initialised from the colour classifier; amended testing + CRF
  seg_on deeplab "$S/cues.h5" --loss seed --boundary-weight 1
  predict_eval deeplab eval_semantic_val --classifier "$OUT/common/cls.pt" --crf
  # dense pseudo labels, like the other rows': the trained network's labels of the training images
  ws predict "$TRAIN" --model "$S/deeplab.pt" --classifier "$OUT/common/cls.pt" --crf "${DEV[@]}" \
      -o "$S/deeplab_train.h5" --force
  evaluate eval_pseudo_train eval semantic "$S/deeplab_train.h5" --gt "$TRAIN"
  ws viz "$S/cues.h5" --first 4 --dataset "$TRAIN" --gt -o "$S/cues.png" --force
  ws viz "$S/deeplab_val.h5" --first 4 --dataset "$VAL" --gt -o "$S/predictions.png" --force
fi

if want dsrg; then
  echo "== DSRG (CVPR 2018): CAM seeds + saliency background, balanced seeding loss, region growing, retraining" >&2
  STAGE=dsrg; G=$OUT/dsrg
  # Sect. 4.1 "top 20% of the largest value" read as SEC's cue rule (CAM > 0.2 x max, --fg rel:0.2); the
  # background threshold 0.06 was for DRFI saliency: 0.3 for the toolkit's detector (README, ws grow)
  DSRG_SEEDS=(--fg rel:0.2 --bg saliency:0.3 --manifest "$TRAIN")
  ws grow seeds "$OUT/common/cams.h5" "${DSRG_SEEDS[@]}" -o "$G/seeds.h5" --force
  evaluate eval_cues_train eval semantic "$G/seeds.h5" --gt "$TRAIN" --unlabeled ignore
  # oracle input: CAMs = blurred GT masks, through the same seed rules
  ws oracle cams "$TRAIN" -o "$G/oracle_cams.h5" --force
  ws grow seeds "$G/oracle_cams.h5" "${DSRG_SEEDS[@]}" -o "$G/seeds_oracle.h5" --force
  evaluate eval_oracle_train eval semantic "$G/seeds_oracle.h5" --gt "$TRAIN" --unlabeled ignore
  # dynamic supervision on the CRF-refined softmax, restarting from the seeds each step (Sect. 3.3);
  # --retrain: stage 2 on the stage-1 labels, from the stage-1 network (the released run-s.sh)
  seg_on deeplab "$G/seeds.h5" --loss balanced-seed --boundary-weight 1 --grow --grow-crf --retrain "${RETRAIN[@]}"
  # dense pseudo labels: the stage-1 network's labels of the training images, which stage 2 trains on
  evaluate eval_pseudo_train eval semantic "$G/deeplab.stage1_labels.h5" --gt "$TRAIN"
  predict_eval deeplab eval_semantic_val --crf
  # Table 2's "+DSRG" row apart from "+Retrain": the stage-1 network, tested alike
  predict_eval deeplab.stage1 eval_stage1_val --crf
  # the paper's ablation: the balanced seeding loss alone (no growing, no retraining)
  seg_on deeplab_seed_only "$G/seeds.h5" --loss balanced-seed --boundary-weight 1
  predict_eval deeplab_seed_only ablation_off --crf
  ws viz "$G/seeds.h5" --first 4 --dataset "$TRAIN" --gt -o "$G/seeds.png" --force
  ws viz "$G/deeplab_val.h5" --first 4 --dataset "$VAL" --gt -o "$G/predictions.png" --force
fi

if want full; then
  echo "== fully supervised (reference): the same network on the ground-truth label maps" >&2
  STAGE=full
  [ -d "$D/semantic" ] || echo "examples.sh: no $D/semantic/<id>.png (GT label maps): no fully supervised row" >&2
  if [ -d "$D/semantic" ]; then
    # tested like the DSRG and Sun et al. rows: with the dense CRF (DeepLab's post-processing)
    seg_on deeplab "$D/semantic" "${SUPERVISED[@]}"
    predict_eval deeplab eval_semantic_val --crf
  fi
  # the instance reference: the same instance network on the GT instances (where the manifest has them)
  if ws oracle instances "$TRAIN" -o "$OUT/full/gt_instances.json" --force > /dev/null; then
    mask_rcnn_on "$OUT/full/gt_instances.json"
  else
    echo "examples.sh: no instance ground truth in $TRAIN: no fully supervised instance row" >&2
  fi
fi

echo "== results" >&2
# the README's table comes from the --full run (benchmarks/results.md)
RESULTS=("$OUT/results.md")
[ "$SIZE_PROFILE" = full ] && [ -z "$DATA" ] && [ -z "${WS_EXAMPLES_ONE_OF_SEEDS:-}" ] && \
    RESULTS+=("$(dirname "$0")/benchmarks/results.md")
printf '{"caption": "bash examples.sh%s: %s train / %s val toy images of %s px, %s classifier images, seg %s epochs, instance network %s, MIL %s (at least %s steps), ICN %s; device %s", "seed": %s}\n' \
    "$([ "$SIZE_PROFILE" = default ] || echo " --$SIZE_PROFILE")" "$NTRAIN" "$NVAL" "$SIZE" "$NCAM" "$SEG_EPOCHS" \
    "$MRCNN_EPOCHS" "$MIL_EPOCHS" "$MIL_STEPS" "$ICN_EPOCHS" "$DEVICE" "$SEED" > "$OUT/run.json"
# the code changed while it ran: no hash (a run of mixed code is reused by nothing)
[ "$(python "$(dirname "$0")/benchmarks/results.py" --source-hash)" = "$SOURCE" ] || SOURCE=""
python - "$OUT/run.json" "$SOURCE" "${ARGS[@]}" <<'PY'
import json, sys
path, source, args = sys.argv[1], sys.argv[2], sys.argv[3:]
run = json.load(open(path))
run.update(source=source or None, args=args)
open(path, "w").write(json.dumps(run) + "\n")
PY
[ -n "$DATA" ] && printf '{"caption": "bash examples.sh --data %s", "seed": %s}\n' "$DATA" "$SEED" > "$OUT/run.json"
for r in "${RESULTS[@]}"; do python "$(dirname "$0")/benchmarks/results.py" "$OUT" -o "$r" > /dev/null; done
cat "$OUT/results.md"
