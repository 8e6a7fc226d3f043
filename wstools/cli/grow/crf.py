"""``ws grow crf``: dense CRF labels from a probability or CAM store."""

from __future__ import annotations

import click

from ...errors import InputError
from ..common import command, emit, output_option
from ..stage import per_image_options, run_per_image
from .common import probs_from_group


@command("crf")
@click.argument("probs_path", metavar="PROBS", type=click.Path(dir_okay=False))
@click.option("--manifest", required=True, type=click.Path(dir_okay=False), help="Manifest of the images.")
@output_option("`labels` store to write.")
@click.option("--iterations", type=click.IntRange(1), default=10, show_default=True,
              help="Mean-field iterations (IRN / AffinityNet crf_inference: 10).")
@per_image_options()
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
    from ...io.store import open_store

    require_crf()
    store = open_store(probs_path)
    m = load_manifest(manifest)
    store.check_classes(m.classes, manifest)
    ids = store.image_ids()
    if not ids:
        raise InputError("store holds no images", path=probs_path)
    by_id = m.by_id()
    k = len(m.classes)

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

    run = run_per_image(output, "labels", ids, write_labels_group, classes=m.classes,
                        params={"iterations": iterations, "shard": shard}, dataset=m, inputs=[store],
                        job=_crf_job, jobs=jobs, workers=workers, shard=shard, resume=resume, force=force,
                        desc="crf", say_resumed=True)
    emit({"output": str(output), "images": run.images, "skipped": run.skipped, "iterations": iterations,
          "seconds": round(run.seconds, 3)})


def _crf_job(job):
    """CRF argmax labels of one image (runs in a --workers process)."""
    from ...grow.crf import crf_labels

    image, dense, present, iterations = job
    return crf_labels(image, dense, present, iterations)
