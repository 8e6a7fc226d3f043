"""``ws grow region``: DSRG seeded region growing of a seeds store."""

from __future__ import annotations

import click
import numpy as np

from ...errors import InputError
from ..common import check_same_manifest_or_warn, command, emit, output_option, path_option
from ..stage import per_image_options, run_per_image
from .common import crf_option, growing_threshold_options, manifest_option, probs_from_group


@command("region")
@click.argument("seeds_path", metavar="SEEDS", type=click.Path(dir_okay=False))
@path_option("--probs",
              help="`probs` store (ws predict --probs) or `cams` store (background = stored `background` map, "
                   "else 1 - max CAM; normalised over the present labels).")
@output_option("`labels` store to write.")
@growing_threshold_options
@click.option("--grow-crf", is_flag=True,
              help="Grow on the dense-CRF-refined probabilities (DSRG's released layer refines the softmax with "
                   "a CRF before growing; pydensecrf2, IRN/AffinityNet crf_inference values). Reads the images (--manifest).")
@crf_option
@manifest_option
@per_image_options(force_mismatch=True)
def region(seeds_path, probs_path, output, theta_fg, theta_bg, grow_crf, use_crf, manifest, workers, shard, resume,
           force_mismatch, force):
    """Grow the seeds of SEEDS (a `labels` store) with per-class probabilities (DSRG Sect. 3.2).

    A pixel is confidently class c when c is its most probable present class and its
    probability exceeds theta_c; class c grows over the 8-connected components of its
    confident pixels and its seeds that are not confidently another class, when they
    hold such a seed (DSRG's released generate_seed_step). Seeds are never overwritten.
    With --grow-crf the probabilities are CRF-refined first (DSRG); with --crf the grown
    map's unlabelled pixels take the CRF label (not DSRG: a dense label map).

    \b
    Example:
      ws grow region seeds.h5 --probs cams.h5 -o grown.h5
      ws grow region seeds.h5 --probs cams.h5 --grow-crf --manifest train.json -o grown.h5
      ws grow region seeds.h5 --probs cams.h5 --crf --manifest train.json --workers 4 -o grown_crf.h5
    """
    from ...io.dataset import load_manifest
    from ...io.labels import read_labels_group, write_labels_group
    from ...io.store import open_store

    seeds_store = open_store(seeds_path, "labels")
    probs_store = open_store(probs_path)
    classes = seeds_store.classes
    probs_store.check_classes(classes, seeds_path)
    check_same_manifest_or_warn(seeds_store, probs_store, force_mismatch)
    ids = seeds_store.image_ids()
    if not ids:
        raise InputError("store holds no images", path=seeds_path)
    m = load_manifest(manifest) if manifest else None
    if use_crf or grow_crf:
        from ...grow.crf import require_crf
        require_crf()
        if m is None:   # the images of the manifest the seeds store records
            from ...io.dataset import recorded_manifest
            m = recorded_manifest(seeds_store, "--manifest (--crf and --grow-crf read the images)")
    by_id = m.by_id() if m is not None else {}
    k = len(classes)
    grown_px = seeded_px = 0
    params = {"probs": str(probs_path), "theta_fg": theta_fg, "theta_bg": theta_bg, "crf": use_crf, "grow_crf": grow_crf,
              "shard": shard}

    def jobs(todo):
        """Read one image's seeds, probabilities (and image for --crf) here; _grow_job grows them."""
        for image_id in todo:
            seeds = read_labels_group(seeds_store.image(image_id), k)
            if not probs_store.has_image(image_id):
                raise InputError("image missing from the probability store", path=probs_path, image_id=image_id)
            dense, present = probs_from_group(probs_store, probs_store.image(image_id), image_id, k)
            if dense.shape[1:] != seeds.shape:
                raise InputError(f"probability maps {dense.shape[1:]} differ from the seeds {seeds.shape}",
                                 path=probs_path, image_id=image_id)
            present[np.unique(seeds[seeds != 255])] = True
            image = None
            if use_crf or grow_crf:
                rec = by_id.get(image_id)
                if rec is None:
                    raise InputError("image not in the manifest", path=m.path, image_id=image_id)
                image = m.read_image(rec)
                if image.shape[:2] != seeds.shape:
                    raise InputError(f"the image {image.shape[:2]} differs from the seeds {seeds.shape}",
                                     path=manifest, image_id=image_id)
            yield dense, seeds, present, theta_fg, theta_bg, image, grow_crf, use_crf

    def write(g, result):
        nonlocal seeded_px, grown_px
        n_seeded, lab = result
        seeded_px += n_seeded
        grown_px += int((lab != 255).sum())
        write_labels_group(g, lab)

    run = run_per_image(output, "labels", ids, write, classes=classes, params=params,
                        inputs=[seeds_store, probs_store], job=_grow_job, jobs=jobs, workers=workers, shard=shard,
                        resume=resume, force=force, desc="grow", say_resumed=True)
    emit({"output": str(output), "images": run.images, "skipped": run.skipped, "seeded_pixels": seeded_px,
          "labelled_pixels": grown_px, "crf": use_crf, "grow_crf": grow_crf, "seconds": round(run.seconds, 3)})


def _grow_job(job):
    """Region growing (on CRF-refined probabilities, + CRF of the unlabelled pixels) of one image
    (runs in a --workers process)."""
    from ...grow import seeded_region_growing
    from ...grow.crf import crf_probabilities

    dense, seeds, present, theta_fg, theta_bg, image, grow_crf, use_crf = job
    refined = crf_probabilities(image, dense, present) if image is not None else None
    lab = seeded_region_growing(refined if grow_crf else dense, seeds, present, theta_fg, theta_bg)
    if use_crf:
        idx = np.flatnonzero(present)
        lab = np.where(lab == 255, idx[refined[idx].argmax(0)], lab).astype(np.uint8)
    return int((seeds != 255).sum()), lab
