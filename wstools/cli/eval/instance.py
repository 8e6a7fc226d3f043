"""``ws eval instance``: COCO AP (pycocotools-identical), mAP^r and ABO of a COCO results JSON."""

from __future__ import annotations

import click

from ...errors import InputError
from ...io.dataset import load_instances, load_manifest
from ...io.tables import format_table, write_csv
from ..common import Timer, command, emit, force_option, log, progress
from .options import check_outputs, csv_option, gt_option, parse_iou_thresholds, plot_option


def _read_results(path, manifest):
    """COCO results JSON -> {image id: [(label, rle dict, score), ...]} checked against the manifest."""
    import json

    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise InputError("file does not exist", path=path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"not a readable JSON file ({e.__class__.__name__}: {e})", path=path) from None
    if isinstance(data, dict) and isinstance(data.get("annotations"), list):
        data = data["annotations"]
    if not isinstance(data, list):
        raise InputError("a COCO results file is a JSON list of {image_id, category_id, segmentation, score}",
                         path=path)
    cat_to_label = {int(c): i + 1 for i, c in enumerate(manifest.category_ids())}
    records = manifest.by_id()
    out = {}
    for j, r in enumerate(data):
        if not isinstance(r, dict) or not {"image_id", "category_id", "segmentation", "score"} <= set(r):
            raise InputError(f"result {j} needs image_id, category_id, segmentation and score", path=path)
        image_id = str(r["image_id"])
        rec = records.get(image_id)
        if rec is None:
            raise InputError(f"result {j}: image id not in {manifest.path}", path=path, image_id=image_id)
        try:
            label = cat_to_label[int(r["category_id"])]
        except (KeyError, TypeError, ValueError):
            raise InputError(f"result {j}: category_id {r['category_id']!r} is not a category of {manifest.path} "
                             f"({sorted(cat_to_label)})", path=path, image_id=image_id) from None
        seg = r["segmentation"]
        try:
            score = float(r["score"])
        except (TypeError, ValueError):
            raise InputError(f"result {j}: score {r['score']!r} is not a number", path=path, image_id=image_id) \
                from None
        if isinstance(seg, dict) and "counts" in seg and "size" in seg:
            if [int(v) for v in seg["size"]] != [rec.height, rec.width]:
                raise InputError(f"result {j}: mask size {seg['size']} differs from the image "
                                 f"({rec.height}, {rec.width})", path=path, image_id=image_id)
            from ...eval._masks import as_rles
            try:
                rle = as_rles([seg])[0]
            except Exception as e:
                raise InputError(f"result {j}: bad RLE ({e})", path=path, image_id=image_id) from None
        elif isinstance(seg, list):
            from ...io.masks import from_polygons
            try:
                rle = {"size": [rec.height, rec.width], "counts": from_polygons(seg, rec.height, rec.width)}
            except Exception as e:
                raise InputError(f"result {j}: bad polygons ({e})", path=path, image_id=image_id) from None
        else:
            raise InputError(f"result {j}: segmentation is neither RLE nor polygons", path=path, image_id=image_id)
        out.setdefault(image_id, []).append((label, rle, score))
    return out


def _coco_order(ids):
    """Image ids in the order pycocotools visits them (sorted; numerically when all are integers)."""
    if ids and all(i.isdigit() for i in ids):
        return sorted(ids, key=int)
    return sorted(ids)


@command("instance")
@click.argument("pred", type=click.Path(dir_okay=False))
@gt_option
@click.option("--iou-r", "iou_r", default="0.25,0.5,0.75", show_default=True,
              help="IoU thresholds of mAP^r (Hariharan et al. 2014; PRM, LIID and Huang et al. report "
                   "0.25, 0.5 and 0.75).")
@csv_option
@plot_option
@force_option
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
    unless it lists COCO's). --plot draws per-class precision-recall curves at
    IoU 0.5.

    \b
    Example:
      ws eval instance results.json --gt toy/val.json
      ws eval instance results.json --gt coco_val.json --csv per_class.csv --plot pr.png
    """
    from ...eval.instance import InstanceEvaluator

    mapr_thrs = parse_iou_thresholds(iou_r, "--iou-r")
    check_outputs(force, csv_path, plot_path)
    manifest = load_manifest(gt)
    if not manifest.has_instance_gt():
        raise InputError("has no instance ground truth for every image", path=gt)
    with Timer() as timer:
        results = _read_results(pred, manifest)
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
    log("COCO mask  AP {AP:.4f}  AP50 {AP50:.4f}  AP75 {AP75:.4f}  APs {APs:.4f}  APm {APm:.4f}  "
        "APl {APl:.4f}  AR100 {AR100:.4f}".format(**c))
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
                    title=f"precision-recall at mask IoU {t_plot:g} (mAP^r)", force=force)
    emit({"mode": "instance", "pred": pred, "gt": gt, "detections": sum(len(v) for v in results.values()),
          **res, "seconds": round(timer.seconds, 3), "csv": csv_path, "plot": plot_path})
