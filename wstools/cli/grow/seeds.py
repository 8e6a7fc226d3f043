"""``ws grow seeds``: seed cues from CAM stores (or fusion of seed stores)."""

from __future__ import annotations

import click
import numpy as np

from ...errors import InputError
from ..common import Timer, command, emit, force_option, output_option, progress
from .common import crf_option, manifest_option, parse_rule, probs_from_group


@command("seeds")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@output_option("`labels` store to write.")
@click.option("--fg", default="top:0.2", show_default=True,
              help="Foreground cue: top:F = top F of each present class's CAM values (DSRG Sect. 3.1, 20 %); "
                   "rel:R = above R x the map's maximum (Sun et al. Sect. 3.2, 0.3).")
@click.option("--bg", default="cams:0.05", show_default=True,
              help="Background cue: cams:T = every CAM below T; features:T = normalised top-layer features "
                   "below T, i.e. 1 - stored `background` map < T (Sun et al. Sect. 3.2, 0.2; needs "
                   "`ws cam infer --background features`); saliency:T = classical saliency (ws propose "
                   "--method saliency) below T (DSRG uses 0.06); none.")
@click.option("--snap", type=click.Choice(["none", "felzenszwalb"]), default="none", show_default=True,
              help="Average each cue over Felzenszwalb superpixels and keep superpixels whose mean exceeds "
                   "--snap-ratio x max (Sun et al. Sect. 3.2). Needs --manifest.")
@click.option("--snap-ratio", type=click.FloatRange(0, 1), default=0.3, show_default=True,
              help="Superpixel keep ratio (Sun et al.: 0.3).")
@click.option("--snap-k", type=float, default=100.0, show_default=True, help="Felzenszwalb scale k.")
@crf_option
@manifest_option
@force_option
def seeds(inputs, output, fg, bg, snap, snap_ratio, snap_k, use_crf, manifest, force):
    """Seed cues (0 = background, 1..K, 255 = unlabelled) from one or more INPUTS.

    Each input is a `cams` store (cues computed with --fg/--bg/--snap) or a `labels`
    store (used as it is). Several inputs (e.g. colour and gray classifiers' CAMs) are
    fused by logical OR, disagreeing pixels become 255 (Sun et al. Sect. 3.3). Pixels
    claimed by two classes become 255. With --crf, the labelled pixels are kept only
    where the CRF of the first `cams` input agrees.

    \b
    Example:
      ws grow seeds cams.h5 --fg top:0.2 --bg cams:0.05 -o seeds.h5
      ws grow seeds cams_rgb.h5 cams_gray.h5 --fg rel:0.3 --bg features:0.2 \\
          --snap felzenszwalb --manifest data/toy/train.json -o seeds.h5
    """
    from ...grow import background_mask, cam_seeds, fuse_seeds, snap_seeds
    from ...io.cams import read_cam_group
    from ...io.dataset import load_manifest
    from ...io.labels import read_labels_group, write_labels_group
    from ...io.store import create_store, open_store

    fg_rule = parse_rule(fg, "--fg", ("top", "rel"))
    bg_rule = ("none", 0.0) if bg == "none" else parse_rule(bg, "--bg", ("cams", "features", "saliency"))
    stores = [open_store(p) for p in inputs]
    for s in stores:
        if s.kind not in ("cams", "labels"):
            raise InputError(f"store kind {s.kind!r}: inputs must be `cams` or `labels` stores", path=s.path)
    classes = stores[0].classes
    for s in stores[1:]:
        s.check_classes(classes, stores[0].path)
    ids = stores[0].image_ids()
    if not ids:
        raise InputError("store holds no images", path=stores[0].path)
    for s in stores[1:]:
        missing = [i for i in ids if not s.has_image(i)]
        if missing:
            raise InputError("image missing from this store", path=s.path, image_id=missing[0])
    need_images = snap != "none" or use_crf or bg_rule[0] == "saliency"
    if need_images and not manifest:
        raise InputError("--snap, --crf and --bg saliency need --manifest for the images")
    if use_crf:
        from ...grow.crf import require_crf
        require_crf()
    m = load_manifest(manifest) if manifest else None
    k = len(classes)
    labelled = total = 0
    params = {"fg": fg, "bg": bg, "snap": snap, "snap_ratio": snap_ratio, "snap_k": snap_k, "crf": use_crf}
    with Timer() as t, create_store(output, "labels", classes=classes, params=params, dataset=m,
                                    inputs=stores, force=force) as out:
        for image_id in progress(ids, desc="seeds"):
            image = None
            if m is not None:
                rec = m.by_id().get(image_id)
                if rec is None:
                    raise InputError("image not in the manifest", path=manifest, image_id=image_id)
                if need_images:
                    image = m.read_image(rec)
            maps = []
            for s in stores:
                g = s.image(image_id)
                if s.kind == "labels":
                    maps.append(read_labels_group(g))
                    continue
                d = read_cam_group(g)
                cams, labels = d["cams"], np.asarray(d["labels"])
                if cams.ndim != 3 or cams.shape[0] == 0:
                    raise InputError("no CAMs stored for this image", path=s.path, image_id=image_id)
                bgm = None
                if bg_rule[0] == "cams":
                    bgm = background_mask(cams.max(0), bg_rule[1])
                elif bg_rule[0] == "features":
                    if d["background"] is None:
                        raise InputError("--bg features needs the `background` map "
                                         "(ws cam infer --background features)", path=s.path, image_id=image_id)
                    bgm = background_mask(1.0 - d["background"], bg_rule[1])
                elif bg_rule[0] == "saliency":
                    from ...proposals.hierarchy import superpixels
                    from ...proposals.saliency import saliency_map
                    bgm = background_mask(saliency_map(image), bg_rule[1])
                sd = cam_seeds(cams, labels, fg_rule, bgm)
                if snap == "felzenszwalb":
                    from ...proposals.hierarchy import superpixels
                    sd = snap_seeds(sd, superpixels(image, snap_k), k + 1, snap_ratio)
                maps.append(sd)
            shape = maps[0].shape
            for s, mp in zip(stores, maps):
                if mp.shape != shape:
                    raise InputError(f"maps {mp.shape} differ in size from {shape}", path=s.path, image_id=image_id)
            lab = fuse_seeds(maps)
            if use_crf:
                from .common import refine_crf
                cs = next((s for s in stores if s.kind == "cams"), None)
                if cs is not None:
                    dense, present = probs_from_group(cs, cs.image(image_id), image_id, k)
                    refined = refine_crf(image, dense, present)
                    lab = np.where(refined == lab, lab, 255).astype(np.uint8)
            labelled += int((lab != 255).sum())
            total += lab.size
            with out.write_image(image_id) as g:
                write_labels_group(g, lab)
    emit({"output": str(output), "images": len(ids), "inputs": len(stores),
          "coverage": round(labelled / max(total, 1), 4), "seconds": round(t.seconds, 3)})
