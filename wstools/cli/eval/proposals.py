"""``ws eval proposals``: class-agnostic recall and ABO of a proposals store."""

from __future__ import annotations

import click
import numpy as np

from ...errors import InputError
from ...io.dataset import load_instances, load_manifest, load_objects, object_families
from ...io.proposals import read_proposals_group
from ...io.store import open_store
from ...io.tables import format_table, write_csv
from ..common import Timer, command, emit, log, progress
from .options import check_outputs, parse_iou_thresholds, report_options, scored_file


def _parse_top(text: str) -> tuple:
    out = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        if part == "all":
            out.append(None)
            continue
        try:
            n = int(part)
        except ValueError:
            raise InputError(f"--top {text!r}: {part!r} is neither a positive integer nor 'all'") from None
        if n < 1:
            raise InputError(f"--top {text!r}: {n} must be >= 1")
        out.append(n)
    if not out:
        raise InputError("--top is empty")
    return tuple(out)



@command("proposals")
@scored_file("proposals")
@click.option("--objects", type=click.Choice(["targets", "all"]), default="targets", show_default=True,
              help="targets = the manifest's instance ground truth (tagged classes); all = every object of "
                   "the `ws toy` 'objects' map, untagged distractors included (the class-agnostic recall "
                   "LIID and Fan et al. need: distractors are objects too).")
@click.option("--iou", "iou_text", default="0.5,0.7", show_default=True,
              help="IoU thresholds of the recall (Uijlings et al. 2013 report 0.5 and 0.7).")
@click.option("--top", "top_text", default="1,10,20,50,100,all", show_default=True,
              help="Numbers of proposals kept (the first N in stored, ranked order; 'all' = every one).")
@report_options()
def proposals(proposals, gt, objects, iou_text, top_text, csv_path, plot_path, force):
    """Class-agnostic quality of a proposals store: for every ground-truth
    object its best overlap with the first N proposals (N = 1, 10, 20, 50,
    100, all), summarised as ABO (mean best overlap), MABO (mean over classes
    of the class ABO, Uijlings et al. 2013) and recall at IoU 0.5 and 0.7 —
    each with mask IoU and with box IoU (the proposals' boxes against the
    tight boxes of the ground-truth masks). Crowd instances are skipped.

    With --objects all, classes are the toy objects' shape families
    (distractors included).

    \b
    Example:
      ws eval proposals proposals.h5 --gt toy/train.json
      ws eval proposals proposals.h5 --gt toy/train.json --objects all --plot recall.png
    """
    from ...eval.proposals import best_overlaps, summarize_overlaps
    from ...masks import InvalidRLE, check_rles

    ns = _parse_top(top_text)
    thresholds = parse_iou_thresholds(iou_text, "--iou")
    check_outputs(force, csv_path, plot_path)
    manifest = load_manifest(gt, require_images=True)
    if objects == "targets" and not manifest.has_instance_gt():
        raise InputError("has no instance ground truth for every image", path=gt)
    with Timer() as timer, open_store(proposals, "proposals") as store:
        store.check_images(manifest)
        mask_best, box_best, labels = [], [], []
        names_known = True
        for rec in progress(manifest.images, desc="eval proposals"):
            stored = read_proposals_group(store.image(rec.id), rec.height, rec.width, path=proposals,
                                          image_id=rec.id)
            counts, boxes = stored["counts"], stored["boxes"].astype(np.float64)
            if objects == "targets":
                inst = load_instances(manifest, rec)
                keep = ~inst.iscrowd
                gt_counts = [c for c, k in zip(inst.counts, keep) if k]
                lab = [manifest.classes[int(label) - 1] for label in inst.labels[keep]]
            else:
                inst = load_objects(manifest, rec)
                gt_counts = list(inst.counts)
                lab = object_families(rec, inst.labels)
                if lab is None:
                    names_known = False
                    lab = ["object"] * len(gt_counts)
            try:
                check_rles(gt_counts, rec.height, rec.width)
            except InvalidRLE as e:
                raise InputError(f"ground truth {e.problem}", path=gt, image_id=rec.id) from None
            try:
                r = best_overlaps(gt_counts, counts, proposal_boxes=boxes, height=rec.height, width=rec.width,
                                  ns=ns)
            except Exception as e:  # corrupt RLE in the store
                raise InputError(f"cannot read proposal masks ({e})", path=proposals, image_id=rec.id) from None
            mask_best.append(r["mask"])
            box_best.append(r["box"])
            labels.extend(lab)
    lab_arr = np.asarray(labels, dtype=object) if names_known else None
    mb = np.concatenate(mask_best) if mask_best else np.zeros((0, len(ns)))
    bb = np.concatenate(box_best) if box_best else np.zeros((0, len(ns)))
    result = {"mask": summarize_overlaps(mb, lab_arr, ns=ns, thresholds=thresholds),
              "box": summarize_overlaps(bb, lab_arr, ns=ns, thresholds=thresholds)}

    rows = []
    for kind in ("mask", "box"):
        for n_name, row in result[kind]["by_n"].items():
            rows.append({"iou": kind, "N": n_name, **row})
    log(f"proposal quality, {result['mask']['objects']} objects ({objects}) in {len(manifest.images)} images")
    log(format_table(rows))
    if csv_path:
        csv_rows = []
        for kind in ("mask", "box"):
            for cls, row in result[kind]["per_class"].items():
                csv_rows.append({"iou": kind, "class": cls, **row})
            for n_name, row in result[kind]["by_n"].items():
                csv_rows.append({"iou": kind, "class": "ALL", "N": n_name, **row})
        write_csv(csv_path, csv_rows, force=force)
    if plot_path:
        from ...io.plots import save_curves

        xs = [row["N"] for row in rows if row["iou"] == "mask"]
        xnum = [int(x) if x != "all" else None for x in xs]
        finite = [x for x in xnum if x is not None]
        x_all = (max(finite) * 2 if finite else 1)
        xplot = [x if x is not None else x_all for x in xnum]
        curves = []
        for kind, style in (("mask", "-"), ("box", "--")):
            for t in thresholds:
                curves.append({"x": xplot, "y": [result[kind]["by_n"][x][f"recall@{t:g}"] for x in xs],
                               "label": f"{kind} recall@{t:g}", "style": style, "marker": "o"})
            curves.append({"x": xplot, "y": [result[kind]["by_n"][x]["abo"] for x in xs],
                           "label": f"{kind} ABO", "style": style, "marker": "s"})
        save_curves(plot_path, curves, xlabel="proposals kept (first N; rightmost = all)", ylabel="recall / ABO",
                    title=f"{proposals} ({objects})", logx=True, force=force)
    emit({"mode": "proposals", "proposals": proposals, "gt": gt, "objects": objects,
          "images": len(manifest.images), "num_objects": result["mask"]["objects"],
          "class_agnostic": lab_arr is None, "top": [("all" if n is None else n) for n in ns],
          "iou_thresholds": list(thresholds), **result, "seconds": round(timer.seconds, 3),
          "csv": csv_path, "plot": plot_path})
