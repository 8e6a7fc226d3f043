"""Helpers shared by the ``ws grow`` sub-commands (CLI layer: reads stores)."""

from __future__ import annotations

import click
import numpy as np

from ...errors import InputError

crf_option = click.option("--crf", "use_crf", is_flag=True,
                          help="Refine with a dense CRF (pydensecrf2; IRN/AffinityNet crf_inference values: "
                               "10 iterations, Gaussian sxy 3 compat 3, bilateral sxy 80 srgb 13 compat 10); "
                               "needs --manifest for the images.")
manifest_option = click.option("--manifest", type=click.Path(dir_okay=False), default=None,
                               help="Manifest of the images (needed for --snap, --crf, --bg saliency).")


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

    A `cams` store becomes probabilities over 0..K as follows: foreground maps are the
    stored CAMs (in [0, 1]); background is the stored `background` map when present,
    else 1 - max CAM (DSRG uses the background cue of a saliency/CAM in the same way);
    the maps are then normalised to sum to 1 over the present labels.
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
        d = read_cam_group(group)
        cams, labels = d["cams"], np.asarray(d["labels"], np.int64)
        h, w = cams.shape[1:] if cams.ndim == 3 and cams.shape[0] else (None, None)
        if h is None:
            raise InputError("no CAMs stored for this image", path=store.path, image_id=image_id)
        bg = d["background"] if d["background"] is not None else 1.0 - cams.max(0)
        dense = np.zeros((num_classes + 1, h, w), np.float32)
        dense[0] = bg
        dense[labels] = cams
        present = np.zeros(num_classes + 1, bool)
        present[0] = True
        present[labels] = True
        dense /= np.maximum(dense.sum(0, keepdims=True), 1e-6)
        return dense, present
    raise InputError(f"store kind {store.kind!r}: --probs needs a `probs` or `cams` store", path=store.path)


def refine_crf(image, dense, present):
    """Dense CRF over the present labels; returns the (H, W) uint8 argmax label map."""
    from ...grow.crf import dense_crf

    idx = np.flatnonzero(present)
    p = dense[idx]
    p = p / np.maximum(p.sum(0, keepdims=True), 1e-6)
    q = dense_crf(image, p.astype(np.float32))
    return idx[q.argmax(0)].astype(np.uint8)
