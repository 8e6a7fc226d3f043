"""``ws grow region``: DSRG seeded region growing of a seeds store."""

from __future__ import annotations

import click
import numpy as np

from ...errors import InputError
from ..common import Timer, command, emit, force_option, output_option, progress
from .common import crf_option, manifest_option, probs_from_group


@command("region")
@click.argument("seeds_path", metavar="SEEDS", type=click.Path(dir_okay=False))
@click.option("--probs", "probs_path", required=True, type=click.Path(dir_okay=False),
              help="`probs` store (ws predict --probs) or `cams` store (background = stored `background` map, "
                   "else 1 - max CAM; normalised over the present labels).")
@output_option("`labels` store to write.")
@click.option("--theta-fg", type=click.FloatRange(0, 1), default=0.85, show_default=True,
              help="Foreground growing threshold theta_f (DSRG Sect. 3.2).")
@click.option("--theta-bg", type=click.FloatRange(0, 1), default=0.99, show_default=True,
              help="Background growing threshold theta_b (DSRG Sect. 3.2).")
@crf_option
@manifest_option
@force_option
def region(seeds_path, probs_path, output, theta_fg, theta_bg, use_crf, manifest, force):
    """Grow the seeds of SEEDS (a `labels` store) with per-class probabilities (DSRG Sect. 3.2).

    An unlabelled pixel joins class c when c is its most probable present class, its
    probability exceeds theta_c, and it lies in an 8-connected component of such pixels
    that touches a seed of c. Seeds are never overwritten. With --crf the grown map's
    unlabelled pixels take the CRF label.

    \b
    Example:
      ws grow region seeds.h5 --probs cams.h5 -o grown.h5
    """
    from ...grow import seeded_region_growing
    from ...io.dataset import load_manifest
    from ...io.labels import read_labels_group, write_labels_group
    from ...io.store import create_store, open_store

    seeds_store = open_store(seeds_path, "labels")
    probs_store = open_store(probs_path)
    classes = seeds_store.classes
    probs_store.check_classes(classes, seeds_path)
    ids = seeds_store.image_ids()
    if not ids:
        raise InputError("store holds no images", path=seeds_path)
    m = load_manifest(manifest) if manifest else None
    if use_crf:
        from ...grow.crf import require_crf
        require_crf()
        if m is None:
            raise InputError("--crf needs --manifest for the images")
    k = len(classes)
    grown_px = seeded_px = 0
    params = {"probs": str(probs_path), "theta_fg": theta_fg, "theta_bg": theta_bg, "crf": use_crf}
    with Timer() as t, create_store(output, "labels", classes=classes, params=params,
                                    inputs=[seeds_store, probs_store], force=force) as out:
        for image_id in progress(ids, desc="grow"):
            seeds = read_labels_group(seeds_store.image(image_id))
            if not probs_store.has_image(image_id):
                raise InputError("image missing from the probability store", path=probs_path, image_id=image_id)
            dense, present = probs_from_group(probs_store, probs_store.image(image_id), image_id, k)
            if dense.shape[1:] != seeds.shape:
                raise InputError(f"probability maps {dense.shape[1:]} differ from the seeds {seeds.shape}",
                                 path=probs_path, image_id=image_id)
            present[np.unique(seeds[seeds != 255])] = True
            lab = seeded_region_growing(dense, seeds, present, theta_fg, theta_bg)
            if use_crf:
                from .common import refine_crf
                rec = m.by_id().get(image_id)
                if rec is None:
                    raise InputError("image not in the manifest", path=manifest, image_id=image_id)
                refined = refine_crf(m.read_image(rec), dense, present)
                lab = np.where(lab == 255, refined, lab).astype(np.uint8)
            seeded_px += int((seeds != 255).sum())
            grown_px += int((lab != 255).sum())
            with out.write_image(image_id) as g:
                write_labels_group(g, lab)
    emit({"output": str(output), "images": len(ids), "seeded_pixels": seeded_px, "labelled_pixels": grown_px,
          "crf": use_crf, "seconds": round(t.seconds, 3)})
