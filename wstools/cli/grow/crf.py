"""``ws grow crf``: dense CRF labels from a probability or CAM store."""

from __future__ import annotations

import click

from ...errors import InputError
from ..common import Timer, command, emit, force_option, output_option, progress
from .common import probs_from_group


@command("crf")
@click.argument("probs_path", metavar="PROBS", type=click.Path(dir_okay=False))
@click.option("--manifest", required=True, type=click.Path(dir_okay=False), help="Manifest of the images.")
@output_option("`labels` store to write.")
@click.option("--iterations", type=click.IntRange(1), default=10, show_default=True,
              help="Mean-field iterations (IRN / AffinityNet crf_inference: 10).")
@force_option
def crf(probs_path, manifest, output, iterations, force):
    """Dense CRF (pydensecrf2) of every image of PROBS (a `probs` or `cams` store), argmax labels.

    Pairwise terms are IRN's / AffinityNet's crf_inference values: Gaussian sxy 3
    compat 3; bilateral sxy 80 srgb 13 compat 10. A `cams` store becomes probabilities
    as in `ws grow region` (background = stored map or 1 - max CAM).

    \b
    Example:
      ws grow crf cams.h5 --manifest data/toy/train.json -o crf.h5
    """
    import numpy as np

    from ...grow.crf import dense_crf, require_crf
    from ...io.dataset import load_manifest
    from ...io.labels import write_labels_group
    from ...io.store import create_store, open_store

    require_crf()
    store = open_store(probs_path)
    m = load_manifest(manifest)
    store.check_classes(m.classes, manifest)
    ids = store.image_ids()
    if not ids:
        raise InputError("store holds no images", path=probs_path)
    k = len(m.classes)
    with Timer() as t, create_store(output, "labels", classes=m.classes, params={"iterations": iterations},
                                    dataset=m, inputs=[store], force=force) as out:
        for image_id in progress(ids, desc="crf"):
            rec = m.by_id().get(image_id)
            if rec is None:
                raise InputError("image not in the manifest", path=manifest, image_id=image_id)
            image = m.read_image(rec)
            dense, present = probs_from_group(store, store.image(image_id), image_id, k)
            if dense.shape[1:] != image.shape[:2]:
                raise InputError(f"probability maps {dense.shape[1:]} differ from the image {image.shape[:2]}",
                                 path=probs_path, image_id=image_id)
            idx = np.flatnonzero(present)
            p = dense[idx] / np.maximum(dense[idx].sum(0, keepdims=True), 1e-6)
            q = dense_crf(image, p.astype(np.float32), iterations)
            with out.write_image(image_id) as g:
                write_labels_group(g, idx[q.argmax(0)].astype(np.uint8))
    emit({"output": str(output), "images": len(ids), "iterations": iterations, "seconds": round(t.seconds, 3)})
