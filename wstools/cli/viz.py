"""``ws viz FILE``: a picture of a manifest's ground truth, of a per-image store or of a COCO file."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from ..errors import InputError
from .. import masks as mask_io
from ..io.atomic import atomic_path
from ..io.coco import read_json
from ..io.dataset import load_instances, load_manifest, load_semantic, manifest_from_json, recorded_manifest
from ..io.images import write_image
from ..io.inspect import is_hdf5
from ..io.store import open_store, read_rles
from ..viz import plural, scale_factor, tile
from ..viz.panels import Panels
from .common import command, emit, force_option, output_option

STORE_KINDS = ("proposals", "cams", "labels", "probs", "responses")
# kinds whose --gt column shows GT instances (the others show the GT semantic map)
_INSTANCE_KINDS = ("proposals", "responses", "coco-instances", "coco-results")


def _manifest_for(store, dataset_opt):
    if dataset_opt:
        return load_manifest(dataset_opt, require_images=True)
    return recorded_manifest(store, "--dataset")


def _json_kind(data) -> str:
    """'coco-results' (a list of detections), 'coco-instances' (images + annotations) or 'dataset'."""
    if isinstance(data, list):
        return "coco-results"
    if isinstance(data, dict) and isinstance(data.get("annotations"), list) and isinstance(data.get("images"), list):
        return "coco-instances"
    if isinstance(data, dict) and "images" in data and "classes" in data:
        return "dataset"
    return ""


def _check_size(arr, rec, what, file):
    if tuple(arr.shape[-2:]) != (rec.height, rec.width):
        raise InputError(f"{what} are {arr.shape[-1]}x{arr.shape[-2]}, the image is {rec.width}x{rec.height}",
                         path=file, image_id=rec.id)


def _gt_instances_panel(m, rec, d):
    gt = load_instances(m, rec)
    names = [m.classes[int(lab) - 1] for lab in gt.labels]
    return d.instances(gt.masks(), names, f"GT {plural(len(gt.labels), 'instance')}")


def _gt_panel(kind, m, rec, d):
    """The manifest's GT of one image: instances for instance kinds, else the semantic map (whichever exists)."""
    order = ("instances", "semantic") if kind in _INSTANCE_KINDS else ("semantic", "instances")
    for what in order:
        if what == "semantic" and rec.semantic is not None:
            return d.labels(load_semantic(m, rec), "GT semantic")
        if what == "instances" and rec.instances is not None:
            return _gt_instances_panel(m, rec, d)
    raise InputError("has no ground truth for this image (--gt)", path=m.path, image_id=rec.id)


def _coco_panel(m, rec, d, dets, top, threshold):
    """One panel: the image's COCO instances (label, rle, score) scored >= threshold, best --top first."""
    keep = [x for x in dets if x[2] is None or x[2] >= threshold]
    keep.sort(key=lambda x: -(x[2] if x[2] is not None else np.inf))
    shown = keep[:top]
    masks = mask_io.decode([x[1]["counts"] for x in shown], rec.height, rec.width)
    texts = [m.classes[x[0] - 1] + ("" if x[2] is None else f" {x[2]:.2f}") for x in shown]
    title = plural(len(keep), "instance") + (f" (top {len(shown)})" if len(shown) < len(keep) else "")
    return d.instances(masks, texts, title)


def _panels(kind, m, rec, source, top, threshold, gt, file, scale):
    """One row: the image (id above, tags below), optionally its GT, then the kind's panels."""
    image = m.read_image(rec)
    d = Panels(image, scale_factor(rec.height, rec.width, scale), m.classes)
    panels = [d.header(rec.id, rec.tags)]
    if kind == "dataset":
        if rec.semantic is not None:
            panels.append(d.labels(load_semantic(m, rec), "GT semantic"))
        if rec.instances is not None:
            panels.append(_gt_instances_panel(m, rec, d))
        return panels
    if gt:
        panels.append(_gt_panel(kind, m, rec, d))
    if kind in ("coco-instances", "coco-results"):
        panels.append(_coco_panel(m, rec, d, source.get(rec.id, []), top, threshold))
        return panels
    group = source.image(rec.id)
    if kind == "proposals":
        total = len(group["masks"])
        counts = read_rles(group["masks"])[:top]
        scores = group["scores"][:top] if "scores" in group else None
        panels.append(d.proposals(mask_io.decode(counts, rec.height, rec.width), group["boxes"][:top], scores, total))
    elif kind == "cams":
        from ..io.cams import read_cam_group

        g = read_cam_group(group)
        _check_size(g["cams"], rec, "CAMs", file)
        for c, lab in enumerate(g["labels"]):
            panels.append(d.heat(g["cams"][c], f"CAM {m.classes[int(lab) - 1]}"))
        if g["background"] is not None:
            panels.append(d.heat(g["background"], "background"))
    elif kind == "labels":
        from ..io.labels import read_labels_group

        lab = read_labels_group(group)
        _check_size(lab, rec, "labels", file)
        panels.append(d.labels(lab, "labels"))
    elif kind == "probs":
        from ..io.labels import read_probs_group

        probs, labels = read_probs_group(group)
        _check_size(probs, rec, "probability maps", file)
        for p, lab in zip(probs, labels):
            name = "background" if lab == 0 else m.classes[int(lab) - 1]
            panels.append(d.heat(p, f"P {name}"))
    elif kind == "responses":
        from ..io.responses import read_response_group

        r = read_response_group(group, m.num_classes, path=file, image_id=rec.id)
        _check_size(r["maps"], rec, "response maps", file)
        order = np.argsort(-r["peaks"][:, 3], kind="stable")[:top]
        for i in order:
            _, y, x, score = (float(v) for v in r["peaks"][i])
            panels.append(d.response(r["maps"][i], y, x, f"{m.classes[int(r['labels'][i]) - 1]} {score:.2f}"))
    return panels


def _parse_scale(value):
    if value == "auto":
        return value
    try:
        f = float(value)
    except ValueError:
        f = float("nan")
    if not (np.isfinite(f) and 0.1 <= f <= 16):
        raise InputError(f"--scale {value!r} must be 'auto' or a number from 0.1 to 16")
    return f


@command("viz")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--dataset", "dataset_opt", type=click.Path(dir_okay=False), default=None,
              help="Manifest of the images (default: the one recorded in the store's provenance; "
                   "required for COCO JSON files, which name none).")
@click.option("--images", "image_ids", default=None, help="Comma-separated image ids (default: the first --first).")
@click.option("--first", type=click.IntRange(1, 100), default=4, show_default=True, help="How many images.")
@click.option("--top", type=click.IntRange(1), default=10, show_default=True,
              help="Proposals, response maps (one panel each) or COCO instances drawn per image, best first.")
@click.option("--score-threshold", type=float, default=0.0, show_default=True,
              help="COCO files: instances scored below this are not drawn.")
@click.option("--gt", is_flag=True, default=False,
              help="Add a column with the manifest's ground truth after the image (instances for proposals, "
                   "responses and COCO files; the semantic map for the other kinds).")
@click.option("--scale", default="auto", show_default=True,
              help="Draw every image this many times its size (a number, e.g. 1 for the file's own "
                   "pixels), or `auto`: enlarge images whose shorter side is under 256 px to 256 px, so "
                   "captions, legends and instance texts stay readable on small photographs.")
@output_option("PNG file to write.")
@force_option
def viz(file, dataset_opt, image_ids, first, top, score_threshold, gt, scale, output, force):
    """Draw FILE over its images, one row per image: the image (its id above,
    its tags below), its ground truth (--gt), then the file's panels. Label maps
    have a legend of the classes present (VOC colours; 255 = unlabeled is
    hatched). FILE is a manifest (its GT), a per-image
    store: proposals (masks and boxes, rank and score), cams (a heat map per class), labels
    (seeds, grown labels, predictions; 255 = unlabeled is hatched), probs (a heat
    map per stored label), responses (the --top peak response maps, peak marked,
    class and peak score), or a COCO JSON (needs --dataset): instances (ws
    export-coco; images matched by ws_id, else id, else file name) or results
    (ws match, ws predict with a Mask R-CNN checkpoint; image_id is the manifest id), masks
    drawn per instance with class and score.

    \b
    Example:
      ws viz data/toy/train.json -o gt.png
      ws viz proposals.h5 --images train_000003 --top 5 -o props.png
      ws viz prm.h5 --top 4 --gt -o prm.png
      ws viz results.json --dataset data/toy/val.json --score-threshold 0.3 -o results.png
    """
    scale = _parse_scale(scale)
    store = None
    if is_hdf5(file):
        store = open_store(file, STORE_KINDS)
        kind = store.kind
        m = _manifest_for(store, dataset_opt)
        available = store.image_ids()
        source = store
        drawable = available
    else:
        data = read_json(file, "neither a ws store (HDF5) nor a JSON file")
        kind = _json_kind(data)
        if kind == "dataset":
            m = manifest_from_json(data, Path(file))
            available = drawable = m.ids()
            source = None
        elif kind:
            if not dataset_opt:
                raise InputError("a COCO file names no manifest; pass --dataset MANIFEST", path=file)
            m = load_manifest(dataset_opt, require_images=True)
            from ..io.coco import read_instances, read_results

            if kind == "coco-instances":
                source = read_instances(file, m, data)
                available = list(source)
                drawable = available
            else:
                source = read_results(file, m)
                available = m.ids()
                with_dets = [i for i in available if any(d[2] >= score_threshold for d in source.get(i, []))]
                drawable = with_dets or available
        else:
            raise InputError("JSON file is neither a manifest nor a COCO instances or results file", path=file)
    try:
        if image_ids:
            wanted = [i.strip() for i in image_ids.split(",") if i.strip()]
            missing = [i for i in wanted if i not in set(available)]
            if missing:
                raise InputError("has no such image", path=file, image_id=missing[0])
        else:
            wanted = drawable[:first]
        if not wanted:
            raise InputError("has no images to draw", path=file)
        by_id = m.by_id()
        rows = []
        for image_id in wanted:
            if image_id not in by_id:
                raise InputError(f"image is not in {m.path}", path=file, image_id=image_id)
            rows.append(_panels(kind, m, by_id[image_id], source, top, score_threshold, gt, file, scale))
        picture = tile(rows)
    finally:
        if store is not None:
            store.close()
    with atomic_path(output, force) as tmp:
        write_image(tmp, picture, format="PNG")
    emit({"output": output, "kind": kind, "images": wanted, "columns": max(len(r) for r in rows),
          "width": picture.shape[1], "height": picture.shape[0]})
