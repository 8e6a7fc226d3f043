"""``ws grow seeds``: seed cues from CAM stores (or fusion of seed stores)."""

from __future__ import annotations

import click
import numpy as np

from ...errors import InputError
from ..common import command, emit, output_option
from ..stage import per_image_options, run_per_image
from .common import crf_option, manifest_option, parse_rule, probs_from_group


@command("seeds")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@output_option("`labels` store to write.")
@click.option("--fg", default="rel:0.2", show_default=True,
              help="Foreground cue. rel:R = CAM above R x the map's maximum: DSRG Sect. 4.1 keeps 'the top 20% "
                   "of the largest value (a fraction suggested by [14, 33])', [33] = SEC, whose cues are CAM > "
                   "0.2 x max, hence the default; Sun et al. Sect. 3.2 use rel:0.3. top:F = the top F of each "
                   "CAM's pixels (the other reading of DSRG's sentence; a fixed 20 % of every image, low "
                   "precision on small objects).")
@click.option("--bg", default="cams:0.05", show_default=True,
              help="Background cue: cams:T = every CAM below T; features:T = normalised top-layer features "
                   "below T, i.e. 1 - stored `background` map < T (Sun et al. Sect. 3.2, 0.2; needs "
                   "`ws cam infer --background features`); saliency:T = classical saliency (ws propose "
                   "--method saliency) below T; none. DSRG Sect. 4.1 thresholds DRFI saliency at 0.06, which "
                   "on this detector marks only 4 % of a toy image; saliency:0.3 keeps a background precision of "
                   "0.98 on a third of it (README, ws grow; the DSRG recipe uses it).")
@click.option("--snap", type=click.Choice(["none", "felzenszwalb"]), default="none", show_default=True,
              help="Average each cue over Felzenszwalb superpixels and keep superpixels whose mean exceeds "
                   "--snap-ratio x max (Sun et al. Sect. 3.2). Reads the images (--manifest).")
@click.option("--snap-ratio", type=click.FloatRange(0, 1), default=0.3, show_default=True,
              help="Superpixel keep ratio (Sun et al.: 0.3).")
@click.option("--snap-k", type=click.FloatRange(min=0, min_open=True), default=250.0, show_default=True,
              help="Felzenszwalb scale k for a PASCAL VOC-sized image (500 x 375), scaled by each image's area, "
                   "min_size likewise (at least 10 px): about 120 superpixels per 96 px toy image. Sun et "
                   "al. give no value; 250 keeps snapped blurred-GT cues at or above the raw cues "
                   "(tests/test_oracle_grow.py).")
@crf_option
@manifest_option
@per_image_options()
def seeds(inputs, output, fg, bg, snap, snap_ratio, snap_k, use_crf, manifest, workers, shard, resume, force):
    """Seed cues (0 = background, 1..K, 255 = unlabelled) from one or more INPUTS.

    Each input is a `cams` store (cues computed with --fg/--bg/--snap) or a `labels`
    store (used as it is). Several inputs (e.g. colour and gray classifiers' CAMs) are
    fused by logical OR, disagreeing pixels become 255 (Sun et al. Sect. 3.3). Pixels
    claimed by two classes become 255. With --crf, the labelled pixels are kept only
    where the CRF of the first `cams` input agrees.

    \b
    Example:
      ws grow seeds cams.h5 --fg rel:0.2 --bg saliency:0.3 --manifest data/toy/train.json -o seeds.h5
      ws grow seeds cams_rgb.h5 cams_gray.h5 --fg rel:0.3 --bg features:0.2 \\
          --snap felzenszwalb --manifest data/toy/train.json -o seeds.h5
      ws grow seeds cams.h5 --shard 0/2 -o s0.h5; ws grow seeds cams.h5 --shard 1/2 -o s1.h5
      ws merge seeds.h5 s0.h5 s1.h5
    """
    from ...io.cams import read_cam_group
    from ...io.dataset import load_manifest
    from ...io.labels import read_labels_group, write_labels_group
    from ...io.store import open_store

    fg_rule = parse_rule(fg, "--fg", ("top", "rel"))
    bg_rule = ("none", 0.0) if bg == "none" else parse_rule(bg, "--bg", ("cams", "features", "saliency"))
    if fg_rule[1] < 0 or fg_rule[1] > 1:
        raise InputError(f"--fg {fg!r}: the value must be in [0, 1]")
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
    if use_crf:
        from ...grow.crf import require_crf
        require_crf()
    if manifest:
        m = load_manifest(manifest)
    elif need_images:   # the images of the manifest the first store records
        from ...io.dataset import recorded_manifest
        m = recorded_manifest(stores[0], "--manifest (--snap, --crf and --bg saliency read the images)")
    else:
        m = None
    by_id = m.by_id() if m is not None else {}
    k = len(classes)
    cfg = {"fg": fg_rule, "bg": bg_rule, "snap_k": snap_k if snap == "felzenszwalb" else None,
           "snap_ratio": snap_ratio, "labels": k + 1}
    crf_store = next((s for s in stores if s.kind == "cams"), None) if use_crf else None
    labelled = total = 0
    params = {"fg": fg, "bg": bg, "snap": snap, "snap_ratio": snap_ratio, "snap_k": snap_k, "crf": use_crf,
              "shard": shard}

    def jobs(todo):
        """Read one image's inputs (this process); the cue computation runs in _seed_job."""
        for image_id in todo:
            image = None
            if m is not None:
                rec = by_id.get(image_id)
                if rec is None:
                    raise InputError("image not in the manifest", path=m.path, image_id=image_id)
                if need_images:
                    image = m.read_image(rec)
            maps, shape = [], None
            for s in stores:
                g = s.image(image_id)
                if s.kind == "labels":
                    x = read_labels_group(g, k)
                    maps.append(("labels", x))
                    size = x.shape
                else:
                    d = read_cam_group(g)
                    cams, labels = d["cams"], np.asarray(d["labels"])
                    if cams.ndim != 3 or cams.shape[0] == 0:
                        raise InputError("no CAMs stored for this image", path=s.path, image_id=image_id)
                    if bg_rule[0] == "features" and d["background"] is None:
                        raise InputError("--bg features needs the `background` map "
                                         "(ws cam infer --background features)", path=s.path, image_id=image_id)
                    maps.append(("cams", (cams, labels, d["background"])))
                    size = cams.shape[1:]
                if shape is None:
                    shape = size
                elif size != shape:
                    raise InputError(f"maps {size} differ in size from {shape}", path=s.path, image_id=image_id)
            if image is not None and image.shape[:2] != shape:
                raise InputError(f"maps {shape} differ in size from the image {image.shape[:2]}",
                                 path=stores[0].path, image_id=image_id)
            crf_in = None
            if crf_store is not None:
                crf_in = probs_from_group(crf_store, crf_store.image(image_id), image_id, k)
            yield cfg, image, maps, crf_in

    def write(g, lab):
        nonlocal labelled, total
        labelled += int((lab != 255).sum())
        total += lab.size
        write_labels_group(g, lab)

    run = run_per_image(output, "labels", ids, write, classes=classes, params=params, dataset=m, inputs=stores,
                        job=_seed_job, jobs=jobs, workers=workers, shard=shard, resume=resume, force=force,
                        desc="seeds", say_resumed=True)
    emit({"output": str(output), "images": run.images, "skipped": run.skipped, "inputs": len(stores),
          "coverage": round(labelled / max(total, 1), 4), "seconds": round(run.seconds, 3)})


def _seed_job(job):
    """Seeds of one image from its inputs' maps (runs in a --workers process)."""
    from ...grow import cue_map, fuse_seeds
    from ...grow.crf import crf_labels

    cfg, image, maps, crf_in = job
    cache = {}
    out = []
    for kind, payload in maps:
        if kind == "labels":
            out.append(payload)
            continue
        cams, labels, background = payload
        out.append(cue_map(cams, labels, fg=cfg["fg"], bg=cfg["bg"], background=background, image=image,
                           snap_k=cfg["snap_k"], snap_ratio=cfg["snap_ratio"], num_labels=cfg["labels"], cache=cache))
    lab = fuse_seeds(out)
    if crf_in is not None:
        refined = crf_labels(image, *crf_in)
        lab = np.where(refined == lab, lab, 255).astype(np.uint8)
    return lab
