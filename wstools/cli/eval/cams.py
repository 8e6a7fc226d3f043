"""``ws eval cams``: CAM quality by IRN's background-threshold sweep, and classification mAP."""

from __future__ import annotations

import click
import numpy as np

from ...errors import InputError
from ...io.dataset import load_manifest
from ...io.store import open_store
from ...io.tables import format_table, write_csv
from ..common import Timer, command, emit, log, parse_floats, progress
from .options import check_outputs, report_options, scored_file


MAX_THRESHOLDS = 1001       # a sweep in steps of 0.001; each threshold costs a pass over every image


def _parse_sweep(text: str) -> tuple:
    """``START:STOP:STEP`` (inclusive) or a comma list -> thresholds."""
    if ":" in str(text):
        try:
            start, stop, step = (float(x) for x in str(text).split(":"))
        except ValueError:
            raise InputError(f"--thresholds {text!r} must be START:STOP:STEP or a comma list") from None
        if not all(np.isfinite((start, stop, step))):
            raise InputError(f"--thresholds {text!r}: START, STOP and STEP must be finite numbers")
        if step <= 0 or stop < start:
            raise InputError(f"--thresholds {text!r}: need STEP > 0 and STOP >= START")
        count = int(np.floor((stop - start) / step + 0.5)) + 1     # as many as np.arange below gives
        if count > MAX_THRESHOLDS:
            raise InputError(f"--thresholds {text!r} is a sweep of {count} thresholds; at most {MAX_THRESHOLDS} "
                             "(a larger STEP)")
        values = [round(float(v), 6) for v in np.arange(start, stop + step / 2, step)]
    else:
        values = parse_floats(text, "--thresholds")
    if len(values) > MAX_THRESHOLDS:
        raise InputError(f"--thresholds lists {len(values)} thresholds; at most {MAX_THRESHOLDS}")
    if any(not 0.0 <= v <= 1.0 for v in values):
        raise InputError(f"--thresholds {text!r}: thresholds must lie in [0, 1]")
    return tuple(values)


def _check_unit_values(values, name: str, path, image_id) -> None:
    """CAMs and classifier scores are in [0, 1]: NaN, inf or values outside would be scored
    as if they were maps (a NaN never exceeds a threshold, a 5 always does)."""
    v = np.asarray(values, dtype=np.float32)
    if v.size == 0:
        return
    if not np.isfinite(v).all():
        raise InputError(f"{name} hold NaN or inf", path=path, image_id=image_id)
    lo, hi = float(v.min()), float(v.max())
    if lo < 0 or hi > 1:
        raise InputError(f"{name} hold values in [{lo:g}, {hi:g}], outside [0, 1]", path=path, image_id=image_id)


@command("cams")
@scored_file("cams")
@click.option("--thresholds", "thr_text", default="0.05:0.95:0.05", show_default=True,
              help="Background thresholds of the sweep, START:STOP:STEP or a comma list (IRN, Ahn et al. "
                   "CVPR 2019, eval_cam.py: a pixel is foreground where its best CAM exceeds t).")
@report_options()
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
    from ...eval.cams import classification_map, threshold_confusions
    from ...eval.semantic import scores as voc_scores
    from ...io.dataset import load_semantic

    thresholds = _parse_sweep(thr_text)
    check_outputs(force, csv_path, plot_path)
    manifest = load_manifest(gt, require_images=True)
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
            _check_unit_values(c, "cams", cams, rec.id)
            conf += threshold_confusions(c, labels, g, k, thresholds)
            if "scores" in grp:
                sc = np.asarray(grp["scores"][()], dtype=np.float64).reshape(-1)
                if len(sc) != k:
                    raise InputError(f"has {len(sc)} classifier scores for K={k} classes", path=cams,
                                     image_id=rec.id)
                _check_unit_values(sc, "scores", cams, rec.id)
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
        from ...io.plots import save_curves

        save_curves(plot_path, [{"x": list(thresholds), "y": [r["miou"] for r in sweep], "label": "mIoU",
                                 "marker": "o"}], xlabel="background threshold", ylabel="mIoU",
                    title=f"CAM threshold sweep (best {best['threshold']:g}: {best['miou']:.3f})", force=force)
    emit({"mode": "cams", "cams": cams, "gt": gt, "images": len(manifest.images), "protocol": "voc",
          "sweep": [{"threshold": r["threshold"], "miou": r["miou"], "pixel_accuracy": r["pixel_accuracy"]}
                    for r in sweep],
          "best_threshold": best["threshold"], "best_miou": best["miou"], "per_class": per_class,
          "classification_map": cls["map"], "seconds": round(timer.seconds, 3), "csv": csv_path,
          "plot": plot_path})
