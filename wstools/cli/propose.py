"""``ws propose MANIFEST -o proposals.h5``: class-agnostic segment proposals with masks."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from ..errors import InputError
from .. import masks as mask_io
from ..io.dataset import load_manifest
from ..io.proposals import write_proposals_group
from .common import command, device_option, emit, output_option, parse_floats, seed_option
from .propose_sam import load_sam_model, sam_options
from .stage import per_image_options, run_per_image

METHODS = ("hierarchy", "saliency", "import", "sam")


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
@output_option("Output proposals store (.h5).")
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
@sam_options
@device_option
@seed_option
@per_image_options()
def propose(manifest, output, method, source, k_text, sigma, colour_text, strategy_text, sal_text, split,
            min_size, dedupe, max_proposals, min_area, max_aspect, nms, top, checkpoint, model_type, sam, device, seed,
            workers, shard, resume, force):
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
        extra = {"checkpoint": str(checkpoint), "model_type": model_type, "sam": sam}
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
        cfg["model"], params["device"] = load_sam_model(checkpoint, model_type, device)
    params["shard"] = shard
    n_props = 0

    def write(grp, result):         # result: image id, height, width, boxes, scores, masks
        nonlocal n_props
        write_proposals_group(grp, *result[1:])
        n_props += len(result[-1])

    run = run_per_image(output, "proposals", man.images, write, classes=man.classes, params=params, dataset=man,
                        job=_generate, workers=workers, shard=shard, resume=resume, force=force, desc="propose",
                        jobs=lambda todo: ((r.id, str(man.image_path(r)), (r.height, r.width), cfg) for r in todo),
                        say_resumed=True)
    emit({"output": output, "method": method, "images": run.images, "skipped": run.skipped, "proposals": n_props,
          "per_image": round(n_props / max(run.images, 1), 2), "seconds": round(run.seconds, 3),
          "seconds_per_image": round(run.seconds / max(run.images, 1), 4)})
