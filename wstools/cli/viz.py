"""``ws viz FILE``: a picture of a manifest's ground truth or of a per-image store."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from ..errors import InputError
from ..io import masks as mask_io
from ..io.atomic import atomic_path
from ..io.dataset import load_instances, load_manifest, load_semantic
from ..io.images import write_image
from ..io.inspect import is_hdf5
from ..io.store import open_store, read_rles
from ..viz import caption, overlay_heatmap, overlay_labels, overlay_masks, tile
from .common import command, emit, force_option, output_option


def _manifest_for(store, dataset_opt):
    if dataset_opt:
        return load_manifest(dataset_opt)
    recorded = (store.dataset or {}).get("path")
    if not recorded or not Path(recorded).exists():
        raise InputError("cannot find the dataset manifest it was made from; pass --dataset MANIFEST",
                         path=store.path)
    return load_manifest(recorded)


def _panels(kind, m, rec, group, top):
    image = m.read_image(rec)
    panels = [caption(image, rec.id)]
    if kind == "dataset":
        if rec.semantic is not None:
            panels.append(caption(overlay_labels(image, load_semantic(m, rec)), "GT semantic"))
        if rec.instances is not None:
            gt = load_instances(m, rec)
            panels.append(caption(overlay_masks(image, gt.masks()), f"GT instances ({len(gt.labels)})"))
    elif kind == "proposals":
        counts = read_rles(group["masks"])[:top]
        masks = mask_io.decode(counts, rec.height, rec.width)
        boxes = group["boxes"][:top]
        panels.append(caption(overlay_masks(image, masks, boxes), f"top {len(counts)} proposals"))
    elif kind == "cams":
        labels = group["labels"][()]
        for c, lab in enumerate(labels):
            panels.append(caption(overlay_heatmap(image, group["cams"][c].astype(np.float32)),
                                  f"CAM {m.classes[int(lab) - 1]}"))
        if "background" in group:
            panels.append(caption(overlay_heatmap(image, group["background"][()].astype(np.float32)),
                                  "background"))
    elif kind == "labels":
        panels.append(caption(overlay_labels(image, group["labels"][()]), "labels"))
    return panels


@command("viz")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--dataset", "dataset_opt", type=click.Path(dir_okay=False), default=None,
              help="Manifest of the images (default: the one recorded in the store's provenance).")
@click.option("--images", "image_ids", default=None, help="Comma-separated image ids (default: the first --first).")
@click.option("--first", type=click.IntRange(1, 100), default=4, show_default=True, help="How many images.")
@click.option("--top", type=click.IntRange(1), default=10, show_default=True,
              help="Proposals drawn per image (best ranked first).")
@output_option("PNG file to write.")
@force_option
def viz(file, dataset_opt, image_ids, first, top, output, force):
    """Draw FILE over its images: a manifest's ground truth, proposals (masks and
    boxes), CAMs (one heat map per class) or labels (seeds, grown labels,
    predictions; 255 = unlabeled is hatched). One row per image.

    \b
    Example:
      ws viz data/toy/train.json -o gt.png
      ws viz proposals.h5 --images train_000003 --top 5 -o props.png
    """
    store = None
    if is_hdf5(file):
        store = open_store(file, ("proposals", "cams", "labels"))
        kind = store.kind
        m = _manifest_for(store, dataset_opt)
        available = store.image_ids()
    else:
        m = load_manifest(file)
        kind = "dataset"
        available = m.ids()
    try:
        if image_ids:
            wanted = [i.strip() for i in image_ids.split(",") if i.strip()]
            missing = [i for i in wanted if i not in set(available)]
            if missing:
                raise InputError("has no such image", path=file, image_id=missing[0])
        else:
            wanted = available[:first]
        if not wanted:
            raise InputError("has no images to draw", path=file)
        by_id = m.by_id()
        rows = []
        for image_id in wanted:
            if image_id not in by_id:
                raise InputError(f"image is not in {m.path}", path=file, image_id=image_id)
            group = store.image(image_id) if store is not None else None
            rows.append(_panels(kind, m, by_id[image_id], group, top))
        picture = tile(rows)
    finally:
        if store is not None:
            store.close()
    with atomic_path(output, force) as tmp:
        write_image(tmp, picture, format="PNG")
    emit({"output": output, "kind": kind, "images": wanted, "width": picture.shape[1], "height": picture.shape[0]})
