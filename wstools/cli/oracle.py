"""``ws oracle``: perfect inputs from ground truth (oracle CAMs, oracle assignment), to tell a
method's limit from its inputs' (DESIGN.md, "How a method is proven")."""

from __future__ import annotations

import click
import numpy as np

from ..errors import InputError
from .common import Timer, WsGroup, command, emit, force_option, output_option, progress
from .stage import output_store, run_per_image


@click.group("oracle", cls=WsGroup)
def oracle():
    """Write the input a stage would get from a perfect previous stage, derived
    from the ground truth, so a recipe can be rerun from it: if the method's
    output is still weak with oracle input, the method (or its defaults) is the
    limit; if it is near perfect, the limit is the real input.

    \b
    Example:
      ws oracle cams toy/train.json -o oracle_cams.h5          # then ws grow seeds ...
      ws oracle assignment proposals.h5 --gt toy/train.json -o oracle.h5   # then ws export-coco ...
    """


@command("cams")
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(dir_okay=False))
@output_option("CAM store to write (.h5, kind `cams`).")
@click.option("--sigma", type=click.FloatRange(0, 1000), default=2.0, show_default=True,
              help="Gaussian blur of each GT mask, in pixels (0: the binary masks). A perfect classifier's "
                   "CAMs are smooth, not binary; the blur makes seeds' and snapping's thresholds matter.")
@force_option
def cams(manifest_path, output, sigma, force):
    """Oracle CAMs: for every image, one map per tagged class, its ground-truth
    mask blurred with a Gaussian of --sigma pixels and scaled to a maximum of 1;
    the background map (what `ws cam infer --background features` writes) is the
    blurred GT background. Classifier scores are the tags. Feed the store to
    `ws grow seeds` (Sun et al., DSRG) to see what seeds, snapping and fusion do
    with perfect evidence. Needs semantic ground truth.

    \b
    Example:
      ws oracle cams toy/train.json -o oracle_cams.h5
      ws grow seeds oracle_cams.h5 --fg rel:0.3 --bg features:0.2 -o cues.h5
      ws eval semantic cues.h5 --gt toy/train.json
    """
    from ..eval.oracle import oracle_cams
    from ..io.cams import write_cam_group
    from ..io.dataset import load_manifest, load_semantic

    m = load_manifest(manifest_path)
    if not m.images:
        raise InputError("has no images", path=manifest_path)
    if not m.has_semantic_gt():
        raise InputError("has no semantic ground truth for every image", path=manifest_path)
    params = {"source": "oracle", "sigma": float(sigma), "scores": "tags"}
    def compute(todo):
        for rec in todo:
            labels = np.asarray(m.tag_labels(rec), dtype=np.int64)
            maps, background = oracle_cams(load_semantic(m, rec), labels, sigma)
            yield maps, labels, m.tag_vector(rec).astype(np.float32), background

    run = run_per_image(output, "cams", m.images, lambda g, r: write_cam_group(g, *r), classes=m.classes,
                        params=params, dataset=m, compute=compute, force=force, desc="oracle cams")
    emit({"output": str(output), "images": len(m.images), "source": "oracle", "sigma": float(sigma),
          "seconds": round(run.seconds, 3)})


@command("assignment")
@click.argument("proposals_path", metavar="PROPOSALS", type=click.Path(dir_okay=False))
@click.option("--gt", "gt", required=True, type=click.Path(dir_okay=False),
              help="Manifest with instance ground truth, of the images of PROPOSALS.")
@output_option("Assignment store to write (.h5, kind `assignment`).")
@click.option("--iou", "iou_thr", type=click.FloatRange(0, 1, min_open=True), default=0.5, show_default=True,
              help="A proposal takes the class of the GT instance it overlaps best when their mask IoU reaches "
                   "this, else noise (0): the true labels of `ws eval assignment` (LIID Table 7).")
@force_option
def assignment(proposals_path, gt, output, iou_thr, force):
    """Oracle assignment: every proposal of PROPOSALS labelled with its true
    label (the class of the GT instance it overlaps best at mask IoU >= --iou,
    else noise). Exported with `ws export-coco` like any `ws cut` output, it is
    the ceiling of the proposals themselves: what a perfect graph and cut (Fan
    et al., LIID) or matching (PRM) could reach with them.

    \b
    Example:
      ws oracle assignment proposals.h5 --gt toy/train.json -o oracle.h5
      ws export-coco oracle.h5 --proposals proposals.h5 --manifest toy/train.json --semantic oracle_png
      ws eval semantic oracle_png --gt toy/train.json
    """
    from ..masks import as_rles, rle_iou as mask_iou
    from ..eval.oracle import oracle_assignment
    from ..io.dataset import load_instances, load_manifest
    from ..io.flat import write_assignment
    from ..io.proposals import read_proposals_group
    from ..io.store import open_store

    m = load_manifest(gt)
    if not m.images:
        raise InputError("has no images", path=gt)
    if not m.has_instance_gt():
        raise InputError("has no instance ground truth for every image", path=gt)
    with Timer() as t, open_store(proposals_path, "proposals") as props:
        props.check_classes(m.classes, m.path)
        ids = [i for i in m.ids() if props.has_image(i)]
        if not ids:
            raise InputError(f"holds none of the images of {m.path}", path=proposals_path)
        records = m.by_id()
        labels, image, proposal = [], [], []
        for j, image_id in enumerate(progress(ids, desc="oracle assignment")):
            rec = records[image_id]
            counts = read_proposals_group(props.image(image_id), rec.height, rec.width, path=proposals_path,
                                          image_id=image_id)["counts"]
            inst = load_instances(m, rec)
            keep = ~inst.iscrowd
            gt_rles = as_rles([c for c, k in zip(inst.counts, keep) if k], rec.height, rec.width)
            iou = mask_iou(as_rles(counts, rec.height, rec.width), gt_rles)
            labels.append(oracle_assignment(iou, inst.labels[keep], iou_thr))
            image.append(np.full(len(counts), j, np.int64))
            proposal.append(np.arange(len(counts), dtype=np.int64))
        labels = np.concatenate(labels)
        params = {"method": "oracle", "iou": float(iou_thr)}
        with output_store(output, "assignment", classes=m.classes, params=params, dataset=m, inputs=[props],
                          force=force) as store:
            write_assignment(store, labels=labels, image_ids=ids, image=np.concatenate(image),
                             proposal=np.concatenate(proposal), objective=0.0, bound=0.0, gap=0.0,
                             method="oracle", component_sizes=np.zeros(0, np.int64),
                             component_exact=np.zeros(0, bool),
                             report={"oracle": True, "iou": float(iou_thr),
                                     "labelled": int((labels > 0).sum()), "noise": int((labels == 0).sum())})
    emit({"output": str(output), "images": len(ids), "proposals": int(len(labels)),
          "labelled": int((labels > 0).sum()), "noise": int((labels == 0).sum()), "iou": float(iou_thr),
          "seconds": round(t.seconds, 3)})


@command("instances")
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(dir_okay=False))
@output_option("COCO instances JSON to write (what `ws export-coco` writes).")
@force_option
def instances(manifest_path, output, force):
    """Oracle pseudo instances: the manifest's ground-truth instances as a COCO
    instances JSON (compressed RLE, the layout `ws export-coco` writes; crowd
    regions kept with iscrowd 1). Train `ws train-seg --task instance --coco`
    on it for the fully supervised reference the weak instance rows are read
    against.

    \b
    Example:
      ws oracle instances toy/train.json -o gt_instances.json
      ws train-seg toy/train.json --task instance --coco gt_instances.json --arch maskrcnn_tiny -o mrcnn.pt
    """
    from ..io import coco
    from .. import masks as mask_io
    from ..io.dataset import load_instances, load_manifest

    m = load_manifest(manifest_path)
    if not m.images:
        raise InputError("has no images", path=manifest_path)
    if not m.has_instance_gt():
        raise InputError("has no instance ground truth for every image", path=manifest_path)
    cat_ids = m.category_ids()
    images, anns = [], []
    with Timer() as t:
        for index, rec in enumerate(progress(m.images, desc="oracle instances")):
            images.append(coco.image_entry(index, rec))
            inst = load_instances(m, rec)
            if not len(inst.counts):
                continue
            boxes = mask_io.boxes(inst.counts, rec.height, rec.width)
            areas = mask_io.area(inst.counts, rec.height, rec.width)
            for c, label, crowd, box, area in zip(inst.counts, inst.labels, inst.iscrowd, boxes, areas):
                if area <= 0:
                    continue
                ann = coco.annotation(len(anns) + 1, index + 1, cat_ids[int(label) - 1], c, rec.height,
                                      rec.width, box, area, 1.0)
                ann["iscrowd"] = int(bool(crowd))
                anns.append(ann)
        coco.write_instances(output, images, anns, m.classes, cat_ids, force=force)
    emit({"output": str(output), "images": len(images), "annotations": len(anns),
          "seconds": round(t.seconds, 3)})


oracle.add_command(cams)
oracle.add_command(assignment)
oracle.add_command(instances)
