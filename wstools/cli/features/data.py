"""Shared pieces of ``ws features extract`` and ``ws features train-mil``: opening and checking
the proposal and CAM stores, reading one image's top proposals and CAMs."""

from __future__ import annotations

import numpy as np

from ...errors import InputError


def check_inputs(manifest, props, cams=None) -> None:
    """Refuse stores of another class list or manifest than ``manifest`` (and each other)."""
    from ...io.dataset import manifest_difference
    from ...io.store import check_same_manifest

    if not manifest.images:
        raise InputError("the manifest lists no images", path=manifest.path)
    for s in (props, cams):
        if s is None:
            continue
        s.check_classes(manifest.classes, manifest.path)
        why = manifest_difference(manifest, s.dataset, s.path)
        if why:   # ground truth added to the manifest since is not a difference
            raise InputError(f"was made from another manifest than {manifest.path}: {why}", path=s.path)
        s.check_images(manifest, require_all=False)
    if cams is not None:
        check_same_manifest(props, cams)


def read_proposals(props, rec, top: int | None, need_masks: bool):
    """(boxes (P, 4) float32 xyxy, counts list of P RLE bytes, masks (P, H, W) bool or None) of the
    first ``top`` proposals (stored best first) of one image; an image the store lacks is an
    input error; masks of another size than the image are refused."""
    from ...io.proposals import read_proposals_group
    from ...masks import decode

    stored = read_proposals_group(props.image(rec.id), rec.height, rec.width, need_masks=False, path=props.path,
                                  image_id=rec.id)
    h, w = rec.height, rec.width
    boxes, counts = stored["boxes"], stored["counts"] or []
    n = len(boxes) if top is None else min(top, len(boxes))
    boxes, counts = boxes[:n], counts[:n]
    masks = None
    if need_masks:
        if not counts and n:
            raise InputError("proposals have no masks (needed here)", path=props.path, image_id=rec.id)
        try:
            masks = decode(counts, h, w) if n else np.zeros((0, h, w), bool)
        except Exception as e:  # a corrupt RLE
            raise InputError(f"cannot decode proposal masks ({e})", path=props.path, image_id=rec.id) from None
        if masks.shape[1:] != (h, w):
            raise InputError(f"proposal masks are {masks.shape[1:]} but the image is {(h, w)}", path=props.path,
                             image_id=rec.id)
    if not np.isfinite(boxes).all():
        raise InputError("proposal boxes are NaN or infinite", path=props.path, image_id=rec.id)
    return boxes, counts, masks


def read_cams(cams, rec, num_classes: int):
    """(cams (C, H, W) float32 in [0, 1], labels (C,)) of one image; NaN / inf, labels outside
    1..K and another size than the image are refused naming the image."""
    from ...io.cams import read_cam_group

    if not cams.has_image(rec.id):
        raise InputError("has no CAMs for this image", path=cams.path, image_id=rec.id)
    c = read_cam_group(cams.image(rec.id))
    a, labels = c["cams"], np.asarray(c["labels"], dtype=np.int64).reshape(-1)
    if a.ndim != 3 or a.shape[0] != labels.shape[0]:
        raise InputError(f"cams {a.shape} do not match labels {labels.shape}", path=cams.path, image_id=rec.id)
    if a.shape[0] and a.shape[1:] != (rec.height, rec.width):
        raise InputError(f"CAMs are {a.shape[1]}x{a.shape[2]} but the image is {rec.height}x{rec.width}",
                         path=cams.path, image_id=rec.id)
    if not np.isfinite(a).all():
        raise InputError("CAMs hold NaN or infinite values", path=cams.path, image_id=rec.id)
    if labels.size and (labels.min() < 1 or labels.max() > num_classes):
        raise InputError(f"CAM labels outside 1..{num_classes}", path=cams.path, image_id=rec.id)
    return np.clip(a, 0, 1), labels


def true_labels_of(manifest, rec, counts, iou_thr: float = 0.5):
    """(P,) label of the ground-truth instance each proposal overlaps with mask IoU >= 0.5, else 0."""
    from ...masks import as_rles, rle_iou as mask_iou
    from ...eval.assignment import true_labels
    from ...io.dataset import load_instances

    if not counts:
        return np.zeros(0, np.int64)
    inst = load_instances(manifest, rec)
    keep = ~inst.iscrowd
    gt = as_rles([c for c, k in zip(inst.counts, keep) if k], rec.height, rec.width)
    iou = mask_iou(as_rles(list(counts), rec.height, rec.width), gt) if gt else np.zeros((len(counts), 0))
    return true_labels(iou, inst.labels[keep], iou_thr)
