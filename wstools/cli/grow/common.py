"""Helpers shared by the ``ws grow`` sub-commands (CLI layer: reads stores)."""

from __future__ import annotations

import click
import numpy as np

from ...errors import InputError
from ..common import option_stack

crf_option = click.option("--crf", "use_crf", is_flag=True,
                          help="Refine with a dense CRF (pydensecrf2; IRN/AffinityNet crf_inference values: "
                               "10 iterations, Gaussian sxy 3 compat 3, bilateral sxy 80 srgb 13 compat 10); "
                               "needs --manifest for the images.")
manifest_option = click.option("--manifest", type=click.Path(dir_okay=False), default=None,
                               help="Manifest of the images, read by --snap, --crf, --bg saliency (default: the manifest the input "
                                    "store records, found from any folder).")


# DSRG's growing thresholds (Sect. 3.2, Eq. 3), for ``ws grow region`` and ``ws train-seg --grow``
growing_threshold_options = option_stack([
    click.option("--theta-fg", type=click.FloatRange(0, 1), default=0.85, show_default=True,
                 help="Foreground growing threshold theta_f (DSRG Sect. 3.2, Eq. 3)."),
    click.option("--theta-bg", type=click.FloatRange(0, 1), default=0.99, show_default=True,
                 help="Background growing threshold theta_b (DSRG Sect. 3.2, Eq. 3)."),
])


def parse_rule(text: str, name: str, modes) -> tuple:
    """``"top:0.2"`` -> ``("top", 0.2)``."""
    mode, _, value = str(text).partition(":")
    if mode not in modes:
        raise InputError(f"{name} {text!r}: mode must be one of {', '.join(modes)}")
    try:
        v = float(value)
    except ValueError:
        raise InputError(f"{name} {text!r} must be MODE:NUMBER") from None
    return mode, v


def probs_from_group(store, group, image_id, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense (K+1, H, W) probabilities and present (K+1,) from a `probs` or `cams` store group.

    A `cams` store becomes probabilities with :func:`wstools.grow.probs.cam_probabilities`
    (background = the stored `background` map, else 1 - max CAM; normalised over the
    present labels).
    """
    from ...io.cams import read_cam_group
    from ...io.labels import dense_probs, read_probs_group

    if store.kind == "probs":
        p, labels = read_probs_group(group)
        dense = dense_probs(p, labels, num_classes)
        present = np.zeros(num_classes + 1, bool)
        present[labels] = True
        return dense, present
    if store.kind == "cams":
        from ...grow.probs import cam_probabilities

        d = read_cam_group(group)
        cams, labels = d["cams"], np.asarray(d["labels"], np.int64)
        if cams.ndim != 3 or not cams.shape[0]:
            raise InputError("no CAMs stored for this image", path=store.path, image_id=image_id)
        return cam_probabilities(cams, labels, num_classes, d["background"])
    raise InputError(f"store kind {store.kind!r}: --probs needs a `probs` or `cams` store", path=store.path)
