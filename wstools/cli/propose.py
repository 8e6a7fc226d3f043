"""``ws propose MANIFEST -o proposals.h5``: class-agnostic segment proposals with masks."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from ..errors import InputError
from .. import masks as mask_io
from ..io.dataset import load_manifest
from ..io.proposals import write_proposals_group
from ..io.store import create_store, parse_shard, shard_items
from ..parallel import worker_map
from .common import (Timer, command, device_option, emit, force_option, log, parse_floats, progress, resolve_device,
                     resume_option, seed_option, shard_option, workers_option)

METHODS = ("hierarchy", "saliency", "import", "sam")
SAM_DEFAULTS = "Kirillov et al., Segment Anything, ICCV 2023, App. A; the official SamAutomaticMaskGenerator"


def _parse_list(text, name, allowed=None):
    items = [x.strip().lower() for x in str(text).split(",") if x.strip()]
    if not items:
        raise InputError(f"{name} is empty")
    if allowed is not None:
        bad = [x for x in items if x not in allowed]
        if bad:
            raise InputError(f"{name}: unknown value {bad[0]!r} (choose from {', '.join(allowed)})")
    return items


def _generate(job):
    """Worker: proposals of one image -> (image id, h, w, boxes, scores, counts); bad input raises InputError."""
    image_id, image_path, size, cfg = job
    from ..io.images import read_image
    from ..proposals import filtering

    method = cfg["method"]
    if method == "import":
        h, w = size
        if cfg["import_kind"] == "png":
            from ..io.proposal_files import read_instance_png

            counts = read_instance_png(cfg["pngs"][image_id], h, w, image_id)
            scores = np.ones(len(counts), dtype=np.float32)
        else:
            items = cfg["records"].get(image_id, [])
            order = sorted(range(len(items)), key=lambda i: -items[i][1])   # stable: file order on ties
            counts = [items[i][0] for i in order]
            scores = np.array([items[i][1] for i in order], dtype=np.float32)
        if cfg["max"]:
            counts, scores = counts[:cfg["max"]], scores[:cfg["max"]]
        boxes = mask_io.boxes(counts, h, w)
    else:
        image = read_image(image_path, image_id=image_id)
        if image.shape[:2] != tuple(size):
            raise InputError(f"image is {image.shape[1]}x{image.shape[0]} px but the manifest says "
                             f"{size[1]}x{size[0]}", path=image_path, image_id=image_id)
        h, w = image.shape[:2]
        if method == "sam":
            from ..proposals.sam import sam_masks

            masks, scores, boxes = sam_masks(image, cfg["model"], **cfg["sam"])
            counts = mask_io.encode(masks)
            if cfg["max"]:
                boxes, scores, counts = boxes[:cfg["max"]], scores[:cfg["max"]], counts[:cfg["max"]]
        elif method == "hierarchy":
            from ..proposals.hierarchy import hierarchy_proposals

            boxes, scores, counts = hierarchy_proposals(
                image, ks=cfg["k"], sigma=cfg["sigma"], colour_spaces=cfg["colour_spaces"],
                strategies=cfg["strategies"], max_proposals=cfg["max"], min_area=cfg["min_area"],
                max_aspect=cfg["max_aspect"], seed=cfg["seed"], min_size=cfg["min_size"] or None, dedupe=cfg["dedupe"])
        else:
            from ..proposals.saliency import saliency_proposals

            boxes, scores, counts = saliency_proposals(
                image, threshold=tuple(cfg["saliency_thresholds"]), k=cfg["k"][0], sigma=cfg["sigma"],
                min_size=cfg["min_size"] or None, split=cfg["split"], min_area=cfg["min_area"], max_proposals=cfg["max"])
    keep = filtering.select(boxes, counts, h, w, min_area=cfg["min_area"], max_aspect=cfg["max_aspect"],
                            nms=cfg["nms"], top=cfg["top"])
    return image_id, h, w, boxes[keep], scores[keep], [counts[i] for i in keep]


@command("propose")
@click.argument("manifest", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Output proposals store (.h5).")
@click.option("--method", type=click.Choice(METHODS), default="hierarchy", show_default=True,
              help="hierarchy: selective-search grouping with masks (Uijlings et al. 2013); saliency: salient "
                   "instances (after Fan et al. 2018); import: masks made by another program (--from); sam: "
                   "Segment Anything's automatic masks from a local --checkpoint (Kirillov et al. 2023; needs "
                   "the extra: pip install 'wstools[sam]').")
@click.option("--from", "source", type=click.Path(), default=None,
              help="--method import: a COCO-style JSON of masks (RLE or polygons; keyed by image id, or file name "
                   "through 'images') or a folder of instance-id PNGs named after the image ids (255 in an 8-bit PNG is "
                   "VOC's void border, not an instance).")
@click.option("--k", "k_text", default="50,100", show_default=True,
              help="Felzenszwalb-Huttenlocher scale(s) k of tau(C) = k/|C| (Felzenszwalb & Huttenlocher 2004, "
                   "Eq. 5), one superpixel map each; Uijlings et al. 2013 Sec. 5.2 'fast' uses 50,100. "
                   "--method saliency uses the first.")
@click.option("--sigma", type=click.FloatRange(0, 10), default=0.8, show_default=True,
              help="Gaussian smoothing before the superpixels (Felzenszwalb & Huttenlocher 2004 Sec. 5; "
                   "Uijlings et al. 2013 use 0.8).")
@click.option("--colour-spaces", "colour_text", default="hsv,lab", show_default=True,
              help="Colour spaces of the colour/texture histograms, one hierarchy each (Uijlings et al. 2013 "
                   "Table 1; 'fast' = hsv,lab): hsv, lab, rgb, rgi, gray.")
@click.option("--strategies", "strategy_text", default="ctsf,tsf", show_default=True,
              help="Similarity strategies, letters of c(olour) t(exture) s(ize) f(ill) summed as in Uijlings "
                   "et al. 2013 Eq. 6 ('fast' = ctsf,tsf), one hierarchy each.")
@click.option("--saliency-thresholds", "sal_text", default="0.3,0.5,0.7", show_default=True,
              help="--method saliency: salient superpixels are those above each fraction of the saliency range "
                   "(background-connectivity saliency, Zhu et al. CVPR 2014 Eq. 9), one set of instances each.")
@click.option("--split", type=click.FloatRange(0), default=40.0, show_default=True,
              help="--method saliency: salient components are also cut along superpixel boundaries whose mean "
                   "Lab colour difference exceeds this (our choice; Fan et al. 2018 use S4Net instead).")
@click.option("--min-size", type=click.IntRange(0), default=0, show_default=True,
              help="Smallest superpixel in pixels (Felzenszwalb & Huttenlocher 2004 Sec. 4). 0 = scaled: selective "
                   "search's min_size = k (Uijlings et al. 2013 Sec. 3.2) at 500x375 px, k times the image area over "
                   "500*375 elsewhere, at least 20 (our choice by experiment on ws toy: keeps the small objects of "
                   "small images, and halves the time at 500x375).")
@click.option("--dedupe", type=click.Choice(["box", "mask"]), default="box", show_default=True,
              help="--method hierarchy: drop regions whose mask (mask) or box (box) a better ranked region has, "
                   "so the first N proposals are N distinct boxes (Uijlings et al. 2013 Sec. 4.1 remove duplicates).")
@click.option("--max", "max_proposals", type=click.IntRange(0), default=500, show_default=True,
              help="Candidates per image before --nms/--top, best ranked first (0 = all); LIID starts from "
                   "500 MCG proposals (Liu et al., Sec. 6).")
@click.option("--min-area", type=click.FloatRange(0), default=0, show_default=True,
              help="Drop proposals with fewer mask pixels.")
@click.option("--max-aspect", type=click.FloatRange(0), default=0, show_default=True,
              help="Drop proposals whose box is more elongated than this (max(w/h, h/w); 0 = keep all).")
@click.option("--nms", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="Mask-IoU non-maximum suppression threshold (1 = off; LIID uses NMS at 0.4 on its final "
                   "proposals, Liu et al. Sec. 5.3).")
@click.option("--top", type=click.IntRange(0), default=0, show_default=True,
              help="Keep the best N per image after filtering (0 = all; LIID keeps 20 on VOC, 40 on COCO).")
@click.option("--checkpoint", type=click.Path(), default=None,
              help="--method sam: a SAM checkpoint folder as transformers' save_pretrained writes it (config.json + "
                   "model.safetensors, e.g. a download of facebook/sam-vit-huge). Loaded offline; pickle "
                   "files (.pth/.bin) are refused, never unpickled (convert Meta's sam_vit_h_4b8939.pth once "
                   "with transformers' convert_sam_to_hf.py).")
@click.option("--model-type", type=click.Choice(["auto", "vit_b", "vit_l", "vit_h"]), default="auto",
              show_default=True,
              help="--method sam: check that the checkpoint is this SAM (ViT width 768 / 1024 / 1280); auto = "
                   "whatever the folder holds (the official generator's default model is vit_h).")
@click.option("--points-per-side", type=click.IntRange(1), default=32, show_default=True,
              help=f"--method sam: the point prompts form an N x N grid ({SAM_DEFAULTS}: 32, i.e. 1024 points).")
@click.option("--points-per-batch", type=click.IntRange(1), default=64, show_default=True,
              help="--method sam: point prompts decoded at once (memory only, not the result; official: 64).")
@click.option("--pred-iou-thresh", type=click.FloatRange(0, 1), default=0.88, show_default=True,
              help=f"--method sam: keep masks whose predicted IoU is at least this ({SAM_DEFAULTS}: 0.88).")
@click.option("--stability-thresh", type=click.FloatRange(0, 1), default=0.95, show_default=True,
              help="--method sam: keep masks whose stability score (IoU of the mask logits thresholded at "
                   f"+-offset) is at least this ({SAM_DEFAULTS}: 0.95).")
@click.option("--stability-offset", type=click.FloatRange(0, min_open=True), default=1.0, show_default=True,
              help="--method sam: the logit offset of the stability score (official: 1.0).")
@click.option("--box-nms", type=click.FloatRange(0, 1), default=0.7, show_default=True,
              help="--method sam: box-IoU NMS between SAM's masks (official box_nms_thresh 0.7); --nms is the "
                   "mask-IoU NMS every method gets afterwards.")
@click.option("--crop-layers", type=click.IntRange(0, 4), default=0, show_default=True,
              help="--method sam: also run on 2^i x 2^i overlapping crops for i = 1..N (SAM App. A uses 2 for "
                   "SA-1B; the official generator's default is 0).")
@click.option("--crop-nms", type=click.FloatRange(0, 1), default=0.7, show_default=True,
              help="--method sam, --crop-layers > 0: box NMS between crops, masks of smaller crops preferred "
                   "(official: 0.7).")
@click.option("--crop-overlap", type=click.FloatRange(0, 1, max_open=True), default=round(512 / 1500, 6),
              show_default=True,
              help="--method sam: neighbouring crops overlap by this fraction of the image's shorter side, "
                   "scaled by the crop's size (official: 512/1500).")
@click.option("--crop-points-downscale", type=click.IntRange(1), default=1, show_default=True,
              help="--method sam: layer i's grid has points-per-side / this^i points a side (official: 1).")
@click.option("--min-region-area", type=click.IntRange(0), default=0, show_default=True,
              help="--method sam: fill holes and delete islands smaller than this many pixels in each mask, "
                   f"then NMS again ({SAM_DEFAULTS}: 0 = off; SA-1B used 100). Not --min-area, which drops "
                   "whole proposals.")
@device_option
@seed_option
@workers_option
@shard_option
@resume_option
@force_option
def propose(manifest, output, method, source, k_text, sigma, colour_text, strategy_text, sal_text, split,
            min_size, dedupe, max_proposals, min_area, max_aspect, nms, top, checkpoint, model_type, points_per_side,
            points_per_batch, pred_iou_thresh, stability_thresh, stability_offset, box_nms, crop_layers, crop_nms,
            crop_overlap, crop_points_downscale, min_region_area, device, seed, workers, shard, resume, force):
    """Class-agnostic segment proposals with masks for every image of MANIFEST.

    Writes a `proposals` store: per image `boxes` (N x 4 xyxy pixels), `scores`
    (N) and COCO RLE `masks`, ranked best first, with the method and its
    parameters in the provenance. These are the segment-based object proposals
    that LIID and Huang et al. start from (MCG in the papers) and the salient
    instances of Fan et al.

    hierarchy (default) is selective search with masks: Felzenszwalb superpixels
    at each --k, greedy grouping by colour, texture, size and fill similarity in
    each colour space and strategy, every region of every hierarchy a proposal,
    ranked by (position in the hierarchy) x random (Uijlings et al. 2013 Sec.
    4.1), duplicates removed. saliency thresholds a background-connectivity
    saliency map (Zhu et al. 2014) and splits it into instances along connected
    components and superpixels. import reads masks made by another program (MCG,
    SAM, S4Net) from --from. sam runs Segment Anything's automatic mask generator
    (Kirillov et al. 2023, App. A) on a local checkpoint: a grid of point prompts,
    three masks per point, kept when predicted IoU >= --pred-iou-thresh and
    stability >= --stability-thresh, box NMS; score = predicted IoU x stability.
    It runs the model in this process (--device; no --workers), one image at a
    time, and keeps --shard / --resume like every method.

    Then, for every method: duplicates, --min-area, --max-aspect, --nms and
    --top.

    \b
    Example:
      ws propose train.json -o proposals.h5 --workers 4
      ws propose train.json -o sop.h5 --max 500 --nms 0.9 --top 40
      ws propose train.json -o sam.h5 --method import --from sam_masks.json
      ws propose train.json -o sam.h5 --method sam --checkpoint sam-vit-huge/ --device cuda
      ws propose train.json -o p0.h5 --shard 0/2; ws propose train.json -o p1.h5 --shard 1/2
      ws merge proposals.h5 p0.h5 p1.h5
    """
    man = load_manifest(manifest)
    shard_t = parse_shard(shard)
    ks = parse_floats(k_text, "--k")
    if any(k <= 0 for k in ks):
        raise InputError("--k values must be positive")
    cfg = {"method": method, "max": max_proposals, "min_area": min_area, "max_aspect": max_aspect, "nms": nms,
           "top": top}
    params = dict(cfg)
    if method == "hierarchy":
        spaces = _parse_list(colour_text, "--colour-spaces", ("hsv", "lab", "rgb", "rgi", "gray"))
        strategies = _parse_list(strategy_text, "--strategies")
        from ..proposals.hierarchy import strategy_weights

        for s in strategies:
            try:
                strategy_weights(s)
            except ValueError as e:
                raise InputError(f"--strategies: {e}") from None
        extra = {"k": ks, "sigma": sigma, "colour_spaces": spaces, "strategies": strategies, "seed": seed,
                 "min_size": min_size, "dedupe": dedupe}
        params["ranking"] = "1/(1 + j*r): j position in the hierarchy (1 = top), r ~ U[0,1] (Uijlings 2013 Sec. 4.1)"
    elif method == "saliency":
        thresholds = parse_floats(sal_text, "--saliency-thresholds")
        if any(not 0 <= t <= 1 for t in thresholds):
            raise InputError("--saliency-thresholds must lie in [0, 1]")
        extra = {"k": ks[:1], "sigma": sigma, "saliency_thresholds": thresholds, "split": split,
                 "min_size": min_size}
        params["ranking"] = "mean saliency of the instance's superpixels"
    elif method == "sam":
        if checkpoint is None:
            raise InputError("--method sam needs --checkpoint FOLDER (a SAM save_pretrained folder)")
        if workers:
            raise InputError("--method sam runs the model in this process: --workers is not used with it "
                             "(shard over processes or machines with --shard I/N)")
        extra = {"checkpoint": str(checkpoint), "model_type": model_type, "sam": {
            "points_per_side": points_per_side, "points_per_batch": points_per_batch,
            "pred_iou_thresh": pred_iou_thresh, "stability_thresh": stability_thresh,
            "stability_offset": stability_offset, "box_nms": box_nms, "crop_layers": crop_layers,
            "crop_nms": crop_nms, "crop_overlap": crop_overlap, "crop_points_downscale": crop_points_downscale,
            "min_region_area": min_region_area}}
        params["ranking"] = "predicted IoU x stability score (SAM automatic mask generation)"
    else:
        if source is None:
            raise InputError("--method import needs --from FILE.json or --from FOLDER")
        src = Path(source)
        if src.is_dir():
            from ..io.proposal_files import find_instance_pngs

            extra = {"import_kind": "png", "source": str(src)}
            cfg["pngs"] = find_instance_pngs(src, man)
        else:
            from ..io.proposal_files import load_proposal_json

            extra = {"import_kind": "json", "source": str(src)}
            cfg["records"] = load_proposal_json(src, man)
        params["ranking"] = "the imported scores (descending)"
    if method != "import" and source is not None:
        raise InputError("--from is only for --method import")
    if method != "sam" and checkpoint is not None:
        raise InputError("--checkpoint is only for --method sam")
    cfg.update(extra)
    params.update(extra)
    if method == "sam":
        from ..io.foundation import load_sam

        dev = resolve_device(device)
        params["device"] = dev
        cfg["model"] = load_sam(checkpoint, dev, model_type)
    params["shard"] = shard
    records = shard_items(man.images, shard_t)
    n_done = n_props = 0
    with Timer() as t, create_store(output, "proposals", classes=man.classes, params=params, dataset=man,
                                    force=force, resume=resume) as store:
        todo = [r for r in records if not (resume and store.has_image(r.id))]
        skipped = len(records) - len(todo)
        if skipped:
            log(f"resuming: {skipped} images already done")
        jobs = ((r.id, str(man.image_path(r)), (r.height, r.width), cfg) for r in todo)
        with worker_map(_generate, jobs, workers,
                        hint="rerun with --resume to keep what was written") as results:
            for image_id, h, w, boxes, scores, counts in progress(results, total=len(todo), desc="propose"):
                with store.write_image(image_id) as grp:
                    write_proposals_group(grp, h, w, boxes, scores, counts)
                n_done += 1
                n_props += len(counts)
    emit({"output": output, "method": method, "images": n_done, "skipped": skipped, "proposals": n_props,
          "per_image": round(n_props / max(n_done, 1), 2), "seconds": round(t.seconds, 3),
          "seconds_per_image": round(t.seconds / max(n_done, 1), 4)})
