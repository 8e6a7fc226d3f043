"""``ws eval instance``: COCO AP (pycocotools-identical), mAP^r and ABO of a COCO results JSON."""

from __future__ import annotations

import click

from ...errors import InputError
from ...io.coco import read_results
from ...io.dataset import load_instances, load_manifest
from ...io.tables import format_table, write_csv
from ..common import Timer, command, emit, log, progress
from .options import check_outputs, parse_iou_thresholds, report_options, scored_file


def _coco_order(ids):
    """Image ids in the order pycocotools visits them (sorted; numerically when all are integers)."""
    if ids and all(i.isdigit() for i in ids):
        return sorted(ids, key=int)
    return sorted(ids)


@command("instance")
@scored_file("pred")
@click.option("--iou-r", "iou_r", default="0.25,0.5,0.75", show_default=True,
              help="IoU thresholds of mAP^r (Hariharan et al. 2014; PRM, LIID and Huang et al. report "
                   "0.25, 0.5 and 0.75).")
@report_options()
def instance(pred, gt, iou_r, csv_path, plot_path, force):
    """Score instance masks given as a COCO results JSON (a list of
    {image_id, category_id, segmentation (RLE or polygons), score}).

    Reports COCO mask AP, AP50, AP75, APs, APm, APl and AR — identical to
    pycocotools' COCOeval(iouType="segm") — and the protocol of the weakly
    supervised instance papers (PRM, LIID, Huang et al.): mAP^r at IoU 0.25,
    0.5, 0.75 (per-class VOC AP with all-point interpolation, mean over
    classes) and ABO (for every ground-truth instance the best IoU among all
    predicted masks of its image, averaged). image_id is matched to manifest
    ids as a string; category_id through the manifest's category ids (1..K
    unless it lists COCO's). A COCO instances JSON (the pseudo labels of ws
    export-coco) is scored the same way, an annotation without a score
    scoring 1. --plot draws per-class precision-recall curves at IoU 0.5.

    \b
    Example:
      ws eval instance results.json --gt toy/val.json
      ws eval instance pseudo.json --gt toy/train.json
      ws eval instance results.json --gt coco_val.json --csv per_class.csv --plot pr.png
    """
    from ...eval.instance import InstanceEvaluator

    mapr_thrs = parse_iou_thresholds(iou_r, "--iou-r")
    check_outputs(force, csv_path, plot_path)
    manifest = load_manifest(gt, require_images=True)
    if not manifest.has_instance_gt():
        raise InputError("has no instance ground truth for every image", path=gt)
    with Timer() as timer:
        results = read_results(pred, manifest)
        ev = InstanceEvaluator(range(1, manifest.num_classes + 1), mapr_thresholds=mapr_thrs,
                               keep_curves=plot_path is not None)
        records = manifest.by_id()
        for image_id in progress(_coco_order(manifest.ids()), desc="eval instance"):
            rec = records[image_id]
            inst = load_instances(manifest, rec)
            dets = results.get(image_id, [])
            ev.add(inst.counts, inst.labels, [d[1] for d in dets], [d[0] for d in dets], [d[2] for d in dets],
                   gt_crowd=inst.iscrowd, height=rec.height, width=rec.width)
        res = ev.result()
    curves = res.pop("_curves", None)
    for row in res["per_class"]:
        row["class"] = manifest.classes[row["category"] - 1]
        row["category_id"] = manifest.category_ids()[row["category"] - 1]
        row["label"] = row.pop("category")
    cols = ["label", "class", "ap", "ap50"] + [f"ap^r@{t:g}" for t in mapr_thrs] + ["abo", "gt_instances"]
    log(format_table(res["per_class"], cols))
    c = res["coco"]
    log("COCO mask  " + "  ".join(f"{k} {'-' if c[k] is None else f'{c[k]:.4f}'}"
                                  for k in ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR100")))
    log("mAP^r  " + "  ".join(f"@{t}: {'-' if v is None else f'{v:.4f}'}" for t, v in res["map_r"].items())
        + f"   ABO {res['abo']:.4f}")
    if csv_path:
        write_csv(csv_path, [{k: r[k] for k in cols + ["category_id"]} for r in res["per_class"]], force=force)
    if plot_path:
        from ...io.plots import save_curves

        t_plot = 0.5 if 0.5 in mapr_thrs else mapr_thrs[0]
        lines = []
        for k, name in enumerate(manifest.classes):
            rc, pr = curves.get((t_plot, k + 1), (None, None))
            if rc is not None and len(rc):
                lines.append({"x": rc, "y": pr, "label": name})
        save_curves(plot_path, lines, xlabel="recall", ylabel="precision", ylim=(0, 1.02),
                    title=f"precision-recall at mask IoU {t_plot:g} (mAP^r)", force=force,
                    empty_note=f"no true positive at mask IoU {t_plot:g}:\nno class has a precision-recall curve")
    emit({"mode": "instance", "pred": pred, "gt": gt, "detections": sum(len(v) for v in results.values()),
          **res, "seconds": round(timer.seconds, 3), "csv": csv_path, "plot": plot_path})
