"""``ws grow crf``: dense CRF labels from a probability or CAM store."""

from __future__ import annotations

import click

from ...errors import InputError
from ..common import (Timer, command, emit, force_option, log, output_option, progress, resume_option, shard_option,
                      workers_option)
from ...parallel import worker_map
from .common import probs_from_group


@command("crf")
@click.argument("probs_path", metavar="PROBS", type=click.Path(dir_okay=False))
@click.option("--manifest", required=True, type=click.Path(dir_okay=False), help="Manifest of the images.")
@output_option("`labels` store to write.")
@click.option("--iterations", type=click.IntRange(1), default=10, show_default=True,
              help="Mean-field iterations (IRN / AffinityNet crf_inference: 10).")
@workers_option
@shard_option
@resume_option
@force_option
def crf(probs_path, manifest, output, iterations, workers, shard, resume, force):
    """Dense CRF (pydensecrf2) of every image of PROBS (a `probs` or `cams` store), argmax labels.

    Pairwise terms are IRN's / AffinityNet's crf_inference values: Gaussian sxy 3
    compat 3; bilateral sxy 80 srgb 13 compat 10. A `cams` store becomes probabilities
    as in `ws grow region` (background = stored map or 1 - max CAM).

    \b
    Example:
      ws grow crf cams.h5 --manifest data/toy/train.json -o crf.h5
      ws grow crf cams.h5 --manifest data/toy/train.json --workers 4 -o crf.h5
    """
    from ...grow.crf import require_crf
    from ...io.dataset import load_manifest
    from ...io.labels import write_labels_group
    from ...io.store import create_store, open_store, parse_shard, shard_items

    require_crf()
    sh = parse_shard(shard)
    store = open_store(probs_path)
    m = load_manifest(manifest)
    store.check_classes(m.classes, manifest)
    ids = store.image_ids()
    if not ids:
        raise InputError("store holds no images", path=probs_path)
    by_id = m.by_id()
    k = len(m.classes)
    ids = shard_items(ids, sh)

    def jobs(todo):
        """Read one image and its probabilities here; _crf_job runs the CRF."""
        for image_id in todo:
            rec = by_id.get(image_id)
            if rec is None:
                raise InputError("image not in the manifest", path=manifest, image_id=image_id)
            image = m.read_image(rec)
            dense, present = probs_from_group(store, store.image(image_id), image_id, k)
            if dense.shape[1:] != image.shape[:2]:
                raise InputError(f"probability maps {dense.shape[1:]} differ from the image {image.shape[:2]}",
                                 path=probs_path, image_id=image_id)
            yield image, dense, present, iterations

    with Timer() as t, create_store(output, "labels", classes=m.classes,
                                    params={"iterations": iterations, "shard": shard},
                                    dataset=m, inputs=[store], force=force, resume=resume) as out:
        todo = [i for i in ids if not (resume and out.has_image(i))]
        skipped = len(ids) - len(todo)
        if skipped:
            log(f"resuming: {skipped} images already done")
        with worker_map(_crf_job, jobs(todo), workers,
                        hint="rerun with --resume to keep what was written") as results:
            for image_id, lab in progress(zip(todo, results), total=len(todo), desc="crf"):
                with out.write_image(image_id) as g:
                    write_labels_group(g, lab)
    emit({"output": str(output), "images": len(todo), "skipped": skipped, "iterations": iterations,
          "seconds": round(t.seconds, 3)})


def _crf_job(job):
    """CRF argmax labels of one image (runs in a --workers process)."""
    from ...grow.crf import crf_labels

    image, dense, present, iterations = job
    return crf_labels(image, dense, present, iterations)
