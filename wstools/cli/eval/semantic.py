"""``ws eval semantic``: the PASCAL VOC mIoU of a `labels` store or a folder of PNG label maps."""

from __future__ import annotations

import click
import numpy as np

from ...errors import InputError
from ...io.dataset import load_manifest
from ...io.store import open_store
from ...io.tables import format_table, write_csv
from ..common import Timer, command, emit, log, progress
from .options import check_outputs, report_options, scored_file


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


PRED_KINDS = ("a `labels` store (ws grow, ws predict, ...) or a folder of <id>.png label maps "
              "(VOC results layout)")


def _open_labels(pred):
    """Open PRED as a `labels` store; an error that is not about a missing file says what PRED may be."""
    try:
        return open_store(pred, "labels")
    except InputError as e:
        if "does not exist" in str(e):
            raise
        raise InputError(f"{e.problem}; PRED must be {PRED_KINDS}", path=pred) from None


@command("semantic")
@scored_file("pred", dir_okay=True)
@click.option("--unlabeled", type=click.Choice(["background", "ignore"]), default="background",
              show_default=True,
              help="How prediction pixels equal to 255 (unlabeled, in partial labels such as seed cues) "
                   "count: as background (Sun et al. score their cues this way) or not at all.")
@report_options(plot=False)
def semantic(pred, gt, unlabeled, csv_path, force):
    """Score semantic labels with the PASCAL VOC protocol: one (K+1)x(K+1)
    confusion matrix over the whole set (ground-truth pixels 255 ignored),
    per-class IoU = TP/(TP+FP+FN), mIoU = mean over the K+1 classes
    (background included; a class absent from both ground truth and prediction
    is left out and listed), pixel accuracy, mean class accuracy, per-class
    precision and recall, and the labeled fraction (prediction pixels other
    than 255 among the scored ground-truth pixels: 1 for dense labels, less
    for seed cues).

    PRED is a `labels` store (`ws grow`, `ws predict`, ...) or a folder
    of PNG label maps named <id>.png (VOC results layout).

    \b
    Example:
      ws eval semantic pred.h5 --gt toy/val.json
      ws eval semantic results/ --gt voc_val.json --csv per_class.csv
      ws eval semantic seeds.h5 --gt toy/train.json --unlabeled ignore
    """
    from pathlib import Path

    from ...eval.semantic import confusion, scores
    from ...io.dataset import load_semantic
    from ...io.images import read_label_png

    check_outputs(force, csv_path)
    manifest = load_manifest(gt, require_images=True)
    if not manifest.has_semantic_gt():
        raise InputError("has no semantic ground truth for every image", path=gt)
    k = manifest.num_classes
    conf = np.zeros((k + 1, k + 1), dtype=np.int64)
    labeled = valid = 0   # prediction coverage: pixels not 255 among the ground truth's scored pixels
    store = None
    with Timer() as timer:
        try:
            if Path(pred).is_dir():
                files = _png_predictions(pred, manifest)
            else:
                store = _open_labels(pred)
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
                scored = g != 255
                valid += int(scored.sum())
                labeled += int((scored & (p != 255)).sum())
        finally:
            if store is not None:
                store.close()
    result = scores(conf, manifest.classes)
    result["labeled_fraction"] = labeled / valid if valid else 0.0
    log(format_table(result["per_class"], ["label", "class", "iou", "precision", "recall", "gt_pixels",
                                           "pred_pixels"]))
    log(f"mIoU {result['miou']:.4f}  pixel accuracy {result['pixel_accuracy']:.4f}  "
        f"mean class accuracy {result['mean_class_accuracy']:.4f}  labeled {result['labeled_fraction']:.4f}  "
        f"(VOC protocol, {len(manifest.images)} images)"
        + (f"; absent classes left out: {', '.join(result['absent_classes'])}" if result["absent_classes"] else ""))
    if csv_path:
        write_csv(csv_path, result["per_class"], force=force)
    emit({"mode": "semantic", "pred": pred, "gt": gt, "images": len(manifest.images), "unlabeled": unlabeled,
          **result, "confusion": conf, "seconds": round(timer.seconds, 3), "csv": csv_path})
