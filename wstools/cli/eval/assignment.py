"""``ws eval assignment``: accuracy of a tag assignment (LIID Table 7)."""

from __future__ import annotations

import click
import numpy as np

from ...errors import InputError
from ...io.dataset import load_instances, load_manifest
from ...io.proposals import read_proposals_group
from ...io.store import open_store
from ...io.tables import format_table, write_csv
from ..common import (Timer, check_provenance, command, emit, force_mismatch_option, log, path_option,
                      progress)
from .options import check_outputs, report_options, scored_file


@command("assignment")
@scored_file("assignment")
@path_option("--proposals", help="The proposals store the assignment's (image, proposal) indices refer to.")
@click.option("--iou", "iou_thr", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="A proposal's true label is the class of the GT instance it overlaps best when the IoU "
                   "reaches this (LIID, Liu et al. TPAMI, Table 7), else noise (0).")
@force_mismatch_option
@report_options(plot=False)
def assignment(assignment, proposals_path, gt, iou_thr, csv_path, force_mismatch, force):
    """How well a tag assignment (`ws cut`, or your own) labelled the
    proposals, LIID Table 7 style. Each proposal's true label is the class
    of the ground-truth instance it overlaps best when IoU >= 0.5, else noise
    (0). Reports accuracy, per-class precision and recall, noisy proposals
    kept, good ones rejected, wrong classes, and instance coverage (GT
    instances with a proposal of IoU >= 0.5 labelled with their class)
    against the oracle that labels every proposal with its true label.

    \b
    Example:
      ws eval assignment assignment.h5 --proposals proposals.h5 --gt toy/train.json
    """
    from ...eval.assignment import assignment_report, coverage, true_labels
    from ...io.flat import read_assignment
    from ...masks import as_rles, rle_iou as mask_iou
    from ...masks import InvalidRLE

    check_outputs(force, csv_path)
    manifest = load_manifest(gt, require_images=True)
    if not manifest.has_instance_gt():
        raise InputError("has no instance ground truth for every image", path=gt)
    k = manifest.num_classes
    with Timer() as timer, open_store(assignment, "assignment") as asg, \
            open_store(proposals_path, "proposals") as props:
        asg.check_classes(manifest.classes, manifest.path)
        props.check_classes(manifest.classes, manifest.path)
        provenance = check_provenance(asg, props, force_mismatch)["checked"]
        rows = read_assignment(asg, k)
        labels, image_idx, prop_idx, ids = rows["labels"], rows["image"], rows["proposal"], rows["image_ids"]
        records = manifest.by_id()
        for i in ids:
            if i not in records:
                raise InputError(f"image id not in {manifest.path}", path=assignment, image_id=i)
            if not props.has_image(i):
                raise InputError("image id not in the proposals store", path=proposals_path, image_id=i)
        true = np.zeros(len(labels), dtype=np.int64)
        cover_asg, cover_oracle, cover_labels = [], [], []
        order = np.argsort(image_idx, kind="stable")
        bounds = np.searchsorted(image_idx[order], np.arange(len(ids) + 1))
        for j, image_id in enumerate(progress(ids, desc="eval assignment")):
            sel = order[bounds[j]:bounds[j + 1]]
            rec = records[image_id]
            counts = read_proposals_group(props.image(image_id), rec.height, rec.width, path=proposals_path,
                                          image_id=image_id)["counts"]
            if len(sel) and prop_idx[sel].max() >= len(counts):
                raise InputError(f"proposal index {int(prop_idx[sel].max())} but the image has {len(counts)} "
                                 "proposals", path=assignment, image_id=image_id)
            if len(sel) and prop_idx[sel].min() < 0:
                raise InputError("negative proposal index", path=assignment, image_id=image_id)
            inst = load_instances(manifest, rec)
            keep = ~inst.iscrowd
            try:
                gt_rles = as_rles([c for c, kk in zip(inst.counts, keep) if kk], rec.height, rec.width)
            except InvalidRLE as e:
                raise InputError(f"ground truth {e.problem}", path=gt, image_id=image_id) from None
            gt_lab = inst.labels[keep]
            p_rles = as_rles([counts[p] for p in prop_idx[sel]], rec.height, rec.width)
            iou = mask_iou(p_rles, gt_rles)
            true[sel] = true_labels(iou, gt_lab, iou_thr)
            a, o = coverage(iou, gt_lab, labels[sel], iou_thr)
            cover_asg.append(a)
            cover_oracle.append(o)
            cover_labels.append(gt_lab)
        seen = set(ids)
        for i in manifest.ids():   # images without assigned proposals: their instances count, uncovered
            if i not in seen:
                inst = load_instances(manifest, records[i])
                n = int((~inst.iscrowd).sum())
                cover_asg.append(np.zeros(n, bool))
                cover_oracle.append(np.zeros(n, bool))
                cover_labels.append(inst.labels[~inst.iscrowd])
    empty = np.zeros(0, bool)
    summary, per_class = assignment_report(
        labels, true, k, np.concatenate(cover_asg) if cover_asg else empty,
        np.concatenate(cover_oracle) if cover_oracle else empty,
        np.concatenate(cover_labels) if cover_labels else np.zeros(0, np.int64), manifest.classes)
    confusion = summary.pop("confusion")
    log(format_table(per_class, ["label", "class", "true", "assigned", "precision", "recall", "instances",
                                 "coverage", "oracle_coverage"]))
    log(f"accuracy {summary['accuracy']:.4f} over {summary['proposals']} proposals; noisy kept "
        f"{summary['noisy_kept']}/{summary['true_noise']}, good rejected {summary['good_rejected']}, wrong class "
        f"{summary['wrong_class']}; instance coverage {summary['coverage']:.4f} (oracle "
        f"{summary['oracle_coverage']:.4f})")
    if csv_path:
        write_csv(csv_path, per_class, force=force)
    emit({"mode": "assignment", "assignment": assignment, "proposals": proposals_path, "gt": gt,
          "iou_threshold": iou_thr, "provenance": provenance, **summary, "per_class": per_class, "confusion": confusion,
          "seconds": round(timer.seconds, 3), "csv": csv_path})
