"""``ws cam infer``: class activation maps of a manifest's images."""

from __future__ import annotations

import click

from ..common import (batch_size_option, command, device_option, output_option, parse_floats, path_option,
                      resolve_device, threads_option)
from ..stage import image_batches, per_image_options
from .options import classes_from_options, write_cams


@command("infer")
@click.argument("manifest", type=click.Path(dir_okay=False))
@path_option("--model", help="Classifier checkpoint written by `ws cam train`.")
@output_option("CAM store to write (.h5, kind `cams`).")
@click.option("--scales", default="1.0,0.5,1.5,2.0", show_default=True,
              help="Input scales whose CAMs are summed (IRN: 1.0,0.5,1.5,2.0).")
@click.option("--flip/--no-flip", default=True, show_default=True,
              help="Add each scale's left-right flipped pass (IRN).")
@classes_from_options("Which classes get CAMs", "the classifier")
@click.option("--subtract-others", is_flag=True,
              help="Subtract the other selected classes' normalised maps from each map, clip at 0 and "
                   "re-normalise (Sun et al. Sect. 3.2).")
@click.option("--background", type=click.Choice(["none", "features"]), default="none", show_default=True,
              help="Also store a background map: 1 - the normalised sum of the top two layers' feature "
                   "maps (Sun et al. Sect. 3.2; their background cue 'sum < 0.2' is background > 0.8).")
@batch_size_option
@device_option
@threads_option
@per_image_options()
def infer(manifest, model_path, output, scales, flip, classes_from, score_threshold, subtract_others, background,
          batch_size, device, workers, shard, resume, force):
    """Class activation maps of every image of MANIFEST, written to a `cams` store.

    For each image: the classifier's probabilities for all K classes, and for
    the tagged (or predicted) classes their CAMs: ReLU of the score maps, summed
    over --scales and flips, upsampled to the full image size and divided by
    their maximum, stored as float16 in [0, 1]. Images are streamed and
    batched (equally sized neighbours share a batch); memory is bounded by a
    batch. Untagged images (with --classes-from tags) get no CAMs, only scores.

    \b
    Example:
      ws cam infer data/toy/train.json --model cls.pt -o cams.h5
      ws cam infer data/toy/val.json --model cls.pt --classes-from predicted \\
          --subtract-others --background features -o cams_val.h5
      ws info cams.h5
    """
    from ...cam.augment import normalize, to_gray
    from ...cam.cams import background_from_features, finalize_cams, forward_cams, select_classes
    from ...io.checkpoint import load_model
    from ...io.dataset import load_manifest

    scale_list = parse_floats(scales, "--scales", positive=True)
    dev = resolve_device(device)
    m = load_manifest(manifest)
    model, ckpt = load_model(model_path, "classifier", m.classes, dev)
    gray = bool(ckpt["gray"])
    params = {"model": str(model_path), "arch": ckpt["arch"], "gray": gray, "scales": scale_list, "flip": flip,
              "classes_from": classes_from, "score_threshold": score_threshold,
              "subtract_others": subtract_others, "background": background, "shard": shard}
    n_untagged = 0

    def compute(todo):
        nonlocal n_untagged
        for recs, x in image_batches(m, todo, lambda img, i: normalize(to_gray(img) if gray else img),
                                     batch_size=batch_size, workers=workers, device=dev):
            maps, probs, feats = forward_cams(model, x, scale_list, flip, features=background == "features")
            probs_np = probs.cpu().numpy()
            for j, rec in enumerate(recs):
                tags = m.tag_labels(rec) if classes_from == "tags" else None
                n_untagged += int(tags is not None and len(tags) == 0)
                labels = select_classes(probs_np[j], tags, score_threshold)
                c = finalize_cams(maps[j], labels, subtract_others).cpu().numpy()
                bg = background_from_features(feats[j]).cpu().numpy() if feats is not None else None
                yield c, labels, probs_np[j], bg

    write_cams(output, m, compute, params=params, shard=shard, resume=resume, force=force, desc="cams",
               untagged=lambda: n_untagged,
               summary={"arch": ckpt["arch"], "gray": gray, "scales": scale_list, "flip": flip, "device": dev})
