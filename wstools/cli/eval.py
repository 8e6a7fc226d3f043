"""``ws eval semantic|instance|proposals|cams|assignment``: the measuring stick.

Each sub-command reads a prediction file and a manifest with ground truth,
calls the metric functions of :mod:`wstools.eval`, prints a readable table on
stderr and the JSON summary (all numbers) on stdout; ``--csv`` writes the
per-class rows and ``--plot`` a figure.
"""

from __future__ import annotations

import click
import numpy as np

from ..errors import InputError
from ..io.atomic import check_output
from ..io.dataset import load_instances, load_manifest, load_objects, object_families
from ..io.store import open_store, read_rles
from ..io.tables import format_table, write_csv
from .common import Timer, WsGroup, command, emit, force_option, log, parse_floats, progress


@click.group("eval", cls=WsGroup)
def eval_group():
    """Measure predictions against the ground truth of a manifest: semantic
    mIoU (PASCAL VOC protocol), instance AP (COCO, identical to pycocotools;
    and mAP^r / ABO of the weakly supervised instance papers), proposal recall
    and ABO, CAM quality (IRN's background-threshold sweep) and tag-assignment
    accuracy (LIID Table 7).

    Every mode prints a table on stderr and one JSON line with all numbers on
    stdout; --csv FILE writes per-class rows, --plot FILE.png a figure.

    \b
    Example:
      ws eval semantic pred_labels.h5 --gt toy/val.json
      ws eval instance results.json --gt toy/val.json --plot pr.png
      ws eval proposals proposals.h5 --gt toy/train.json --objects all
    """


def gt_option(f):
    return click.option("--gt", "gt", required=True, type=click.Path(dir_okay=False),
                        help="Dataset manifest with the ground truth (its images are the ones scored).")(f)


def csv_option(f):
    return click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None,
                        help="Write the per-class rows to this CSV file.")(f)


def plot_option(f):
    return click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
                        help="Write a figure to this PNG file (matplotlib, Agg backend).")(f)


def _check_outputs(force, *paths):
    for p in paths:
        if p is not None:
            check_output(p, force)


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


def _thresholds(text: str, name: str) -> tuple:
    values = parse_floats(text, name)
    if any(not 0.0 <= v <= 1.0 for v in values):
        raise InputError(f"{name} {text!r}: IoU thresholds must lie in [0, 1]")
    return tuple(values)


# proposals --------------------------------------------------------------------

@command("proposals")
@click.argument("proposals", type=click.Path(dir_okay=False))
@gt_option
@click.option("--objects", type=click.Choice(["targets", "all"]), default="targets", show_default=True,
              help="targets = the manifest's instance ground truth (tagged classes); all = every object of "
                   "the `ws toy` 'objects' map, untagged distractors included (the class-agnostic recall "
                   "LIID and Fan et al. need: distractors are objects too).")
@click.option("--iou", "iou_text", default="0.5,0.7", show_default=True,
              help="IoU thresholds of the recall (Uijlings et al. 2013 report 0.5 and 0.7).")
@click.option("--top", "top_text", default="1,10,20,50,100,all", show_default=True,
              help="Numbers of proposals kept (the first N in stored, ranked order; 'all' = every one).")
@csv_option
@plot_option
@force_option
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
    from ..eval.proposals import best_overlaps, summarize_overlaps

    ns = _parse_top(top_text)
    thresholds = _thresholds(iou_text, "--iou")
    _check_outputs(force, csv_path, plot_path)
    manifest = load_manifest(gt)
    if objects == "targets" and not manifest.has_instance_gt():
        raise InputError("has no instance ground truth for every image", path=gt)
    with Timer() as timer, open_store(proposals, "proposals") as store:
        store.check_images(manifest)
        mask_best, box_best, labels = [], [], []
        names_known = True
        for rec in progress(manifest.images, desc="eval proposals"):
            grp = store.image(rec.id)
            h, w = int(grp.attrs.get("height", -1)), int(grp.attrs.get("width", -1))
            if (h, w) != (rec.height, rec.width):
                raise InputError(f"proposals are for a {w}x{h} image, the manifest says {rec.width}x{rec.height}",
                                 path=proposals, image_id=rec.id)
            counts = read_rles(grp["masks"])
            boxes = np.asarray(grp["boxes"][()], dtype=np.float64).reshape(-1, 4)
            if len(boxes) != len(counts):
                raise InputError(f"{len(boxes)} boxes but {len(counts)} masks", path=proposals, image_id=rec.id)
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
        from ..io.plots import save_curves

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


# semantic ---------------------------------------------------------------------

def _png_predictions(folder, manifest):
    """{id: path} of a folder of <id>.png label maps; refuses missing and unknown ids."""
    from pathlib import Path

    folder = Path(folder)
    found = {p.stem: p for p in folder.glob("*.png")}
    ids = manifest.ids()
    missing = [i for i in ids if i not in found]
    if missing:
        raise InputError(f"lacks {len(missing)} label maps of {manifest.path} (expected <id>.png)",
                         path=folder, image_id=missing[0])
    known = set(ids)
    extra = sorted(i for i in found if i not in known)
    if extra:
        raise InputError(f"has {len(extra)} label maps for images not in {manifest.path}", path=folder,
                         image_id=extra[0])
    return found


@command("semantic")
@click.argument("pred", type=click.Path())
@gt_option
@click.option("--unlabeled", type=click.Choice(["background", "ignore"]), default="background",
              show_default=True,
              help="How prediction pixels equal to 255 (unlabeled, in partial labels such as seed cues) "
                   "count: as background (Sun et al. score their cues this way) or not at all.")
@csv_option
@force_option
def semantic(pred, gt, unlabeled, csv_path, force):
    """Score semantic labels with the PASCAL VOC protocol: one (K+1)x(K+1)
    confusion matrix over the whole set (ground-truth pixels 255 ignored),
    per-class IoU = TP/(TP+FP+FN), mIoU = mean over the K+1 classes
    (background included; a class absent from both ground truth and prediction
    is left out and listed), pixel accuracy, mean class accuracy, per-class
    precision and recall.

    PRED is a `labels` store (`ws grow`, `ws seg predict`, ...) or a folder
    of PNG label maps named <id>.png (VOC results layout).

    \b
    Example:
      ws eval semantic pred.h5 --gt toy/val.json
      ws eval semantic results/ --gt voc_val.json --csv per_class.csv
      ws eval semantic seeds.h5 --gt toy/train.json --unlabeled ignore
    """
    from pathlib import Path

    from ..eval.semantic import confusion, scores
    from ..io.dataset import load_semantic
    from ..io.images import read_label_png

    _check_outputs(force, csv_path)
    manifest = load_manifest(gt)
    if not manifest.has_semantic_gt():
        raise InputError("has no semantic ground truth for every image", path=gt)
    k = manifest.num_classes
    conf = np.zeros((k + 1, k + 1), dtype=np.int64)
    store = None
    with Timer() as timer:
        try:
            if Path(pred).is_dir():
                files = _png_predictions(pred, manifest)
            else:
                store = open_store(pred, "labels")
                store.check_images(manifest)
            for rec in progress(manifest.images, desc="eval semantic"):
                g = load_semantic(manifest, rec)
                if store is None:
                    where = files[rec.id]
                    p = read_label_png(where, rec.id)
                else:
                    where = pred
                    p = store.image(rec.id)["labels"][()]
                if p.shape != g.shape:
                    raise InputError(f"label map is {p.shape[1]}x{p.shape[0]}, ground truth is "
                                     f"{g.shape[1]}x{g.shape[0]}", path=where, image_id=rec.id)
                try:
                    conf += confusion(g, p, k, unlabeled=unlabeled)
                except ValueError as e:
                    raise InputError(str(e), path=where, image_id=rec.id) from None
        finally:
            if store is not None:
                store.close()
    result = scores(conf, manifest.classes)
    log(format_table(result["per_class"], ["label", "class", "iou", "precision", "recall", "gt_pixels",
                                           "pred_pixels"]))
    log(f"mIoU {result['miou']:.4f}  pixel accuracy {result['pixel_accuracy']:.4f}  "
        f"mean class accuracy {result['mean_class_accuracy']:.4f}  (VOC protocol, {len(manifest.images)} images)"
        + (f"; absent classes left out: {', '.join(result['absent_classes'])}" if result["absent_classes"] else ""))
    if csv_path:
        write_csv(csv_path, result["per_class"], force=force)
    emit({"mode": "semantic", "pred": pred, "gt": gt, "images": len(manifest.images), "unlabeled": unlabeled,
          **result, "confusion": conf, "seconds": round(timer.seconds, 3), "csv": csv_path})


# instance ---------------------------------------------------------------------

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
            from ..eval._masks import as_rles
            try:
                rle = as_rles([seg])[0]
            except Exception as e:
                raise InputError(f"result {j}: bad RLE ({e})", path=path, image_id=image_id) from None
        elif isinstance(seg, list):
            from ..io.masks import from_polygons
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
    from ..eval.instance import InstanceEvaluator

    mapr_thrs = _thresholds(iou_r, "--iou-r")
    _check_outputs(force, csv_path, plot_path)
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
        from ..io.plots import save_curves

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


# cams -------------------------------------------------------------------------

def _parse_sweep(text: str) -> tuple:
    """``START:STOP:STEP`` (inclusive) or a comma list -> thresholds."""
    if ":" in str(text):
        try:
            start, stop, step = (float(x) for x in str(text).split(":"))
        except ValueError:
            raise InputError(f"--thresholds {text!r} must be START:STOP:STEP or a comma list") from None
        if step <= 0 or stop < start:
            raise InputError(f"--thresholds {text!r}: need STEP > 0 and STOP >= START")
        values = [round(float(v), 6) for v in np.arange(start, stop + step / 2, step)]
    else:
        values = parse_floats(text, "--thresholds")
    if any(not 0.0 <= v <= 1.0 for v in values):
        raise InputError(f"--thresholds {text!r}: thresholds must lie in [0, 1]")
    return tuple(values)


@command("cams")
@click.argument("cams", type=click.Path(dir_okay=False))
@gt_option
@click.option("--thresholds", "thr_text", default="0.05:0.95:0.05", show_default=True,
              help="Background thresholds of the sweep, START:STOP:STEP or a comma list (IRN, Ahn et al. "
                   "CVPR 2019, eval_cam.py: a pixel is foreground where its best CAM exceeds t).")
@csv_option
@plot_option
@force_option
def cams(cams, gt, thr_text, csv_path, plot_path, force):
    """CAM quality as IRN measures it: for every background threshold t of
    the sweep, label each pixel with argmax([t, CAM_1..CAM_C]) over the
    image's stored class maps, score the set with the VOC protocol (mIoU over
    K+1 classes), and report mIoU(t) and the best t. Also the classification
    mAP of the stored classifier scores against the tags (per-class average
    precision, mean over classes).

    \b
    Example:
      ws eval cams cams.h5 --gt toy/train.json --plot sweep.png
      ws eval cams cams.h5 --gt toy/train.json --thresholds 0.1,0.16,0.2
    """
    from ..eval.cams import classification_map, threshold_confusions
    from ..eval.semantic import scores as voc_scores
    from ..io.dataset import load_semantic

    thresholds = _parse_sweep(thr_text)
    _check_outputs(force, csv_path, plot_path)
    manifest = load_manifest(gt)
    if not manifest.has_semantic_gt():
        raise InputError("has no semantic ground truth for every image", path=gt)
    k = manifest.num_classes
    conf = np.zeros((len(thresholds), k + 1, k + 1), dtype=np.int64)
    all_scores, all_tags = [], []
    with Timer() as timer, open_store(cams, "cams") as store:
        store.check_images(manifest)
        for rec in progress(manifest.images, desc="eval cams"):
            grp = store.image(rec.id)
            if "cams" not in grp or "labels" not in grp:
                raise InputError("lacks 'cams' or 'labels'", path=cams, image_id=rec.id)
            c = grp["cams"][()]
            labels = np.asarray(grp["labels"][()], dtype=np.int64).reshape(-1)
            g = load_semantic(manifest, rec)
            if c.ndim != 3 or c.shape[1:] != g.shape or c.shape[0] != len(labels):
                raise InputError(f"cams have shape {tuple(c.shape)} for {len(labels)} labels, the ground truth "
                                 f"is {g.shape[1]}x{g.shape[0]}", path=cams, image_id=rec.id)
            if len(labels) and (labels.min() < 1 or labels.max() > k):
                raise InputError(f"cam label {int(labels.max())} outside 1..K={k}", path=cams, image_id=rec.id)
            conf += threshold_confusions(c, labels, g, k, thresholds)
            if "scores" in grp:
                sc = np.asarray(grp["scores"][()], dtype=np.float64).reshape(-1)
                if len(sc) != k:
                    raise InputError(f"has {len(sc)} classifier scores for K={k} classes", path=cams,
                                     image_id=rec.id)
                all_scores.append(sc)
                all_tags.append(manifest.tag_vector(rec))
    sweep = []
    for i, t in enumerate(thresholds):
        s = voc_scores(conf[i], manifest.classes)
        sweep.append({"threshold": t, "miou": s["miou"], "pixel_accuracy": s["pixel_accuracy"],
                      "per_class": s["per_class"]})
    best_i = int(np.argmax([r["miou"] for r in sweep]))
    best = sweep[best_i]
    cls = classification_map(np.stack(all_scores), np.stack(all_tags)) \
        if len(all_scores) == len(manifest.images) and all_scores else {"map": None, "per_class": [None] * k}
    log(format_table([{"threshold": r["threshold"], "miou": r["miou"], "pixel_accuracy": r["pixel_accuracy"]}
                      for r in sweep]))
    log(f"best background threshold {best['threshold']:g}: mIoU {best['miou']:.4f}; classification mAP "
        + ("-" if cls["map"] is None else f"{cls['map']:.4f}"))
    per_class = [{"label": r["label"], "class": r["class"], "iou_at_best": r["iou"],
                  "precision_at_best": r["precision"], "recall_at_best": r["recall"],
                  "classification_ap": None if r["label"] == 0 else cls["per_class"][r["label"] - 1]}
                 for r in best["per_class"]]
    if csv_path:
        write_csv(csv_path, per_class, force=force)
    if plot_path:
        from ..io.plots import save_curves

        save_curves(plot_path, [{"x": list(thresholds), "y": [r["miou"] for r in sweep], "label": "mIoU",
                                 "marker": "o"}], xlabel="background threshold", ylabel="mIoU",
                    title=f"CAM threshold sweep (best {best['threshold']:g}: {best['miou']:.3f})", force=force)
    emit({"mode": "cams", "cams": cams, "gt": gt, "images": len(manifest.images), "protocol": "voc",
          "sweep": [{"threshold": r["threshold"], "miou": r["miou"], "pixel_accuracy": r["pixel_accuracy"]}
                    for r in sweep],
          "best_threshold": best["threshold"], "best_miou": best["miou"], "per_class": per_class,
          "classification_map": cls["map"], "seconds": round(timer.seconds, 3), "csv": csv_path,
          "plot": plot_path})


# assignment -------------------------------------------------------------------

@command("assignment")
@click.argument("assignment", type=click.Path(dir_okay=False))
@click.option("--proposals", "proposals_path", required=True, type=click.Path(dir_okay=False),
              help="The proposals store the assignment's (image, proposal) indices refer to.")
@gt_option
@click.option("--iou", "iou_thr", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="A proposal's true label is the class of the GT instance it overlaps best when the IoU "
                   "reaches this (LIID, Liu et al. TPAMI, Table 7), else noise (0).")
@csv_option
@force_option
def assignment(assignment, proposals_path, gt, iou_thr, csv_path, force):
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
    from ..eval.assignment import assignment_report, coverage, true_labels
    from ..eval._masks import as_rles, mask_iou

    _check_outputs(force, csv_path)
    manifest = load_manifest(gt)
    if not manifest.has_instance_gt():
        raise InputError("has no instance ground truth for every image", path=gt)
    k = manifest.num_classes
    with Timer() as timer, open_store(assignment, "assignment") as asg, \
            open_store(proposals_path, "proposals") as props:
        asg.check_classes(manifest.classes, manifest.path)
        props.check_classes(manifest.classes, manifest.path)
        try:
            labels = np.asarray(asg.h5["labels"][()], dtype=np.int64)
            image_idx = np.asarray(asg.h5["image"][()], dtype=np.int64)
            prop_idx = np.asarray(asg.h5["proposal"][()], dtype=np.int64)
            ids = [x.decode() if isinstance(x, bytes) else str(x) for x in asg.h5["image_ids"][()]]
        except KeyError as e:
            raise InputError(f"lacks dataset {e}", path=assignment) from None
        if not (len(labels) == len(image_idx) == len(prop_idx)):
            raise InputError("labels, image and proposal have different lengths", path=assignment)
        if len(labels) and (labels.min() < 0 or labels.max() > k):
            raise InputError(f"labels outside 0..K={k}", path=assignment)
        if len(image_idx) and (image_idx.min() < 0 or image_idx.max() >= len(ids)):
            raise InputError("image index outside image_ids", path=assignment)
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
            grp = props.image(image_id)
            if (int(grp.attrs.get("height", -1)), int(grp.attrs.get("width", -1))) != (rec.height, rec.width):
                raise InputError("proposals are for another image size than the manifest's", path=proposals_path,
                                 image_id=image_id)
            counts = read_rles(grp["masks"])
            if len(sel) and prop_idx[sel].max() >= len(counts):
                raise InputError(f"proposal index {int(prop_idx[sel].max())} but the image has {len(counts)} "
                                 "proposals", path=assignment, image_id=image_id)
            if len(sel) and prop_idx[sel].min() < 0:
                raise InputError("negative proposal index", path=assignment, image_id=image_id)
            inst = load_instances(manifest, rec)
            keep = ~inst.iscrowd
            gt_rles = as_rles([c for c, kk in zip(inst.counts, keep) if kk], rec.height, rec.width)
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
          "iou_threshold": iou_thr, **summary, "per_class": per_class, "confusion": confusion,
          "seconds": round(timer.seconds, 3), "csv": csv_path})


for _cmd in (proposals, semantic, instance, cams, assignment):
    eval_group.add_command(_cmd)
