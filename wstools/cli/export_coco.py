"""``ws export-coco``: assignments (+ proposals) or labels stores to COCO JSON / VOC PNGs."""

from __future__ import annotations

import shutil
from pathlib import Path

import click
import numpy as np

from ..errors import InputError
from .common import (Timer, check_provenance, command, emit, force_mismatch_option, force_option, output_option,
                     path_option, progress)


def _semantic_map(masks: np.ndarray, labels, scores, h, w, unassigned: str) -> np.ndarray:
    """Instances of one class merged; overlaps resolved by score (higher wins); rest 0 or 255."""
    out = np.full((h, w), 255 if unassigned == "ignore" else 0, np.uint8)
    for i in np.argsort(scores, kind="stable"):  # ascending: the best is painted last
        out[masks[i]] = labels[i]
    return out


def _write_png(folder: Path, image_id: str, labels: np.ndarray) -> None:
    """``folder/ID.png``; an id with folders (``ws dataset folder``: ``cats/a``) gets them made."""
    from ..io.images import write_label_png

    path = folder / f"{image_id}.png"
    if path.resolve().parent != folder.resolve():
        if folder.resolve() not in path.resolve().parents:
            raise InputError("image id leads outside the --semantic folder", image_id=image_id)
        path.parent.mkdir(parents=True, exist_ok=True)
    write_label_png(path, labels)


@command("export-coco")
@click.argument("source", type=click.Path(dir_okay=False))
@path_option("--proposals", required=False, help="Proposals store the assignment's (image, proposal) indices refer to.")
@click.option("--manifest", required=True, type=click.Path(dir_okay=False), help="Manifest of the images.")
@output_option("COCO instances JSON to write (assignment input).", required=False)
@click.option("--nms-iou", type=click.FloatRange(0, 1), default=0.4, show_default=True,
              help="Per image and class box NMS IoU (LIID: 0.4).")
@click.option("--semantic", "semantic_dir", type=click.Path(file_okay=False), default=None,
              help="Also write VOC-palette PNGs (one per image) into this folder.")
@click.option("--unassigned", type=click.Choice(["background", "ignore"]), default="background",
              show_default=True, help="Semantic PNG value of pixels no kept proposal covers: 0 or 255.")
@click.option("--min-score", type=float, default=0.0, show_default=True,
              help="COCO results input: detections scored below this are not painted.")
@force_mismatch_option
@force_option
def export_coco(source, proposals_path, manifest, output, nms_iou, semantic_dir, unassigned, min_score,
                force_mismatch, force):
    """Export SOURCE as training data.

    An `assignment` store (ws cut) with --proposals: proposals with label > 0, box NMS
    per image and class (torchvision batched_nms), written as COCO instances JSON with
    compressed RLE masks (-o) and/or VOC PNGs (--semantic). A `labels` store: VOC PNGs
    (--semantic) only. A COCO results JSON (ws match, ws predict with an instance checkpoint):
    VOC PNGs (--semantic) only, the instances of each image merged into one label
    map (a higher score wins an overlap; Huang et al.'s semantic results). Every
    manifest image is listed in `images`, with or without annotations; category ids
    follow the manifest.

    \b
    Example:
      ws export-coco assignment.h5 --proposals proposals.h5 --manifest data/toy/train.json -o pseudo.json
      ws export-coco grown.h5 --manifest data/toy/train.json --semantic pseudo_png/
      ws export-coco prm_results.json --manifest data/toy/val.json --semantic prm_png/
    """
    import contextlib

    from ..io.store import output_lock

    with contextlib.ExitStack() as locks:     # a second export to the same files exits 2 at once
        for out in dict.fromkeys(o for o in (output, semantic_dir) if o):
            locks.enter_context(output_lock(out))
        _export(source, proposals_path, manifest, output, nms_iou, semantic_dir, unassigned, min_score,
                force_mismatch, force)


def _export(source, proposals_path, manifest, output, nms_iou, semantic_dir, unassigned, min_score,
            force_mismatch, force):
    import torch
    from torchvision.ops import batched_nms

    from ..io import coco
    from .. import masks as mask_io
    from ..io.dataset import load_manifest
    from ..io.labels import read_labels_group
    from ..io.flat import read_assignment
    from ..io.proposals import read_proposals_group
    from ..io.store import open_store

    m = load_manifest(manifest, require_images=True)
    if str(source).lower().endswith(".json"):
        _export_results(source, m, semantic_dir, unassigned, min_score, force)
        return
    src = open_store(source)
    src.check_classes(m.classes, manifest)
    if src.kind not in ("assignment", "labels"):
        raise InputError(f"store kind {src.kind!r}: SOURCE must be an `assignment` or `labels` store", path=source)
    if src.kind == "labels" and not semantic_dir:
        raise InputError("a `labels` store exports to PNGs only: give --semantic DIR", path=source)
    if src.kind == "assignment" and not (output or semantic_dir):
        raise InputError("give -o JSON and/or --semantic DIR")
    if src.kind == "assignment" and not proposals_path:
        raise InputError("an `assignment` store needs --proposals", path=source)
    if output and Path(output).exists() and not force:
        raise InputError("exists (use --force to overwrite)", path=output)
    sem_tmp = None
    if semantic_dir:
        sd = Path(semantic_dir)
        if sd.exists() and not force:
            raise InputError("exists (use --force to overwrite)", path=semantic_dir)
        sem_tmp = sd.with_name("." + sd.name + ".partial")
        shutil.rmtree(sem_tmp, ignore_errors=True)
    records = m.by_id()
    n_ann = n_png = 0
    provenance = None
    try:
        with Timer() as t:
            if sem_tmp is not None:
                sem_tmp.mkdir(parents=True)
            if src.kind == "labels":
                ids = src.image_ids()
                if not ids:
                    raise InputError("store holds no images", path=source)
                for image_id in progress(ids, desc="png"):
                    rec = records.get(image_id)
                    if rec is None:
                        raise InputError("image not in the manifest", path=source, image_id=image_id)
                    lab = read_labels_group(src.image(image_id))
                    if lab.shape != (rec.height, rec.width):
                        raise InputError(f"labels {lab.shape} differ from the manifest's "
                                         f"{(rec.height, rec.width)}", path=source, image_id=image_id)
                    outside = np.unique(lab[(lab > len(m.classes)) & (lab != 255)])
                    if outside.size:       # a PNG label no class has would pass for a class downstream
                        raise InputError(f"label {int(outside[0])} outside 0..K={len(m.classes)} and 255 (ignore)",
                                         path=source, image_id=image_id)
                    _write_png(sem_tmp, image_id, lab)
                    n_png += 1
            else:
                props = open_store(proposals_path, "proposals")
                props.check_classes(m.classes, manifest)
                provenance = check_provenance(src, props, force_mismatch)["checked"]
                rows = read_assignment(src, len(m.classes))
                labels, image_idx, prop_idx, ids = rows["labels"], rows["image"], rows["proposal"], rows["image_ids"]
                if not ids or not len(labels):
                    raise InputError("assignment holds no proposals", path=source)
                for i in ids:
                    if i not in records:
                        raise InputError(f"image id not in {manifest}", path=source, image_id=i)
                    if not props.has_image(i):
                        raise InputError("image id not in the proposals store", path=proposals_path, image_id=i)
                cat_ids = m.category_ids()
                images, anns = [], []
                by_image = {}
                for j in range(len(labels)):
                    by_image.setdefault(ids[image_idx[j]], []).append(j)
                for index, rec in enumerate(progress(m.images, desc="export")):
                    images.append(coco.image_entry(index, rec))
                    sel = [j for j in by_image.get(rec.id, []) if labels[j] > 0]
                    h, w = rec.height, rec.width
                    keep_counts, keep_lab, keep_score, keep_box = [], [], [], []
                    if sel:
                        stored = read_proposals_group(props.image(rec.id), h, w, path=proposals_path,
                                                      image_id=rec.id)
                        counts = stored["counts"]
                        pj = prop_idx[sel]
                        if pj.min() < 0 or pj.max() >= len(counts):
                            raise InputError(f"proposal index {int(pj.max())} but the image has {len(counts)} "
                                             "proposals", path=source, image_id=rec.id)
                        scores = stored["scores"][pj]
                        cs = [counts[p] for p in pj]
                        boxes = mask_io.boxes(cs, h, w).astype(np.float32).reshape(-1, 4)
                        keep = batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores),
                                           torch.from_numpy(labels[sel]), nms_iou).numpy()
                        areas = mask_io.area(cs, h, w)
                        for k in keep:
                            if areas[k] <= 0:
                                continue
                            keep_counts.append(cs[k])
                            keep_lab.append(int(labels[sel][k]))
                            keep_score.append(float(scores[k]))
                            keep_box.append(boxes[k])
                            anns.append(coco.annotation(len(anns) + 1, index + 1, cat_ids[keep_lab[-1] - 1], cs[k],
                                                        h, w, boxes[k], areas[k], scores[k]))
                    if sem_tmp is not None:
                        mk = mask_io.decode(keep_counts, h, w)
                        _write_png(sem_tmp, rec.id,
                                   _semantic_map(mk, keep_lab, np.array(keep_score), h, w, unassigned))
                        n_png += 1
                n_ann = len(anns)
                if output:
                    coco.write_instances(output, images, anns, m.classes, cat_ids, force=force)
            if sem_tmp is not None:
                sd = Path(semantic_dir)
                if sd.exists():
                    shutil.rmtree(sd)
                sem_tmp.rename(sd)
    finally:
        if sem_tmp is not None and sem_tmp.exists():
            shutil.rmtree(sem_tmp, ignore_errors=True)
    emit({"output": output, "semantic": semantic_dir, "annotations": n_ann, "pngs": n_png,
          "provenance": provenance, "seconds": round(t.seconds, 3)})


def _export_results(source, m, semantic_dir, unassigned, min_score, force):
    """COCO results JSON -> one VOC PNG per manifest image (instances merged by score)."""
    from ..io.coco import read_results
    from ..masks import decode

    if not semantic_dir:
        raise InputError("a COCO results file exports to PNGs only: give --semantic DIR", path=source)
    sd = Path(semantic_dir)
    if sd.exists() and not force:
        raise InputError("exists (use --force to overwrite)", path=semantic_dir)
    results = read_results(source, m)
    tmp = sd.with_name("." + sd.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    n_inst = 0
    try:
        with Timer() as t:
            tmp.mkdir(parents=True)
            for rec in progress(m.images, desc="png"):
                dets = [d for d in results.get(rec.id, []) if d[2] >= min_score]
                n_inst += len(dets)
                masks = decode([d[1]["counts"] for d in dets], rec.height, rec.width)
                _write_png(tmp, rec.id, _semantic_map(
                    masks, [d[0] for d in dets], np.array([d[2] for d in dets], np.float64),
                    rec.height, rec.width, unassigned))
            if sd.exists():
                shutil.rmtree(sd)
            tmp.rename(sd)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    emit({"output": None, "semantic": semantic_dir, "instances": n_inst, "pngs": len(m.images),
          "seconds": round(t.seconds, 3)})
