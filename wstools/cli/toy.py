"""``ws toy OUT_DIR``: the synthetic dataset every test, benchmark and example uses."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import InputError
from ..io.flat import write_features
from ..toy.features import make_features
from ..io.toy import write_dataset
from ..toy.generator import FAMILIES, MAX_CLASSES
from .common import Timer, command, emit, force_option, log, progress, seed_option
from .stage import output_store


@command("toy")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--classes", "num_classes", type=click.IntRange(1, MAX_CLASSES), default=5, show_default=True,
              help=f"Number of target classes K: the first K of {', '.join(FAMILIES)}; the rest are "
                   "untagged distractors.")
@click.option("--train", "n_train", type=click.IntRange(0), default=200, show_default=True,
              help="Training images (train.json).")
@click.option("--val", "n_val", type=click.IntRange(0), default=50, show_default=True,
              help="Validation images with ground truth (val.json).")
@click.option("--size", type=click.IntRange(32, 4096), default=128, show_default=True, help="Image side in pixels.")
@click.option("--border", type=click.IntRange(0, 20), default=0, show_default=True,
              help="Width of the 255 'ignore' band around objects in the GT maps (PASCAL VOC uses ~5 px).")
@click.option("--features", "n_features", type=click.IntRange(0), default=0, show_default=True,
              help="Also write OUT_DIR/features.h5: synthetic proposal features of this many images (about 8 "
                   "proposals each: clustered features, noisy probabilities, multi-tag images, noise proposals, "
                   "true labels in `truth`), the input of `ws graph`.")
@click.option("--feature-dim", type=click.IntRange(2), default=256, show_default=True,
              help="Feature dimension of --features (Fan et al. and LIID use 2048).")
@seed_option
@force_option
def toy(out_dir, num_classes, n_train, n_val, size, border, n_features, feature_dim, seed, force):
    """Write a synthetic weakly-labelled dataset to OUT_DIR.

    Images show 1-4 textured shapes of 1-3 target classes (10-50 % of the image
    side, partly overlapping) and 0-2 untagged distractor shapes on cluttered
    backgrounds. Colours come from one palette shared by all classes, so only
    shape and texture identify a class. Written: images/, semantic/ (VOC palette
    PNG), instances/ (instance ids), objects/ (every object, distractors too),
    train.json and val.json manifests. Deterministic for --seed.

    \b
    Example:
      ws toy data/toy --train 200 --val 50 --size 128
      ws info data/toy/train.json
      ws toy data/toy --train 0 --val 0 --features 300   # features.h5 only
    """
    out = Path(out_dir)
    for split in ("train", "val"):
        if (out / f"{split}.json").exists() and not force:
            raise InputError("output exists (use --force to overwrite)", path=out / f"{split}.json")
    out.mkdir(parents=True, exist_ok=True)
    summary = {"out_dir": str(out), "classes": list(FAMILIES[:num_classes]), "size": size, "seed": seed}
    with Timer() as t:
        for split, count in (("train", n_train), ("val", n_val)):
            m = write_dataset(out, split, count, size=size, num_classes=num_classes, seed=seed, border=border,
                              force=True, wrap=lambda it: progress(it, total=count, desc=f"toy {split}"))
            summary[split] = {"manifest": str(out / f"{split}.json"), "images": count,
                              "objects": sum(len(r.extra["object_families"]) for r in m.images),
                              "target_instances": sum(len([f for f in r.extra["object_families"] if f in m.classes]) for r in m.images)}
            log(f"wrote {count} {split} images to {out}")
        if n_features:
            path = out / "features.h5"
            f = make_features(n_features, num_classes, feature_dim, seed=seed)
            params = {"images": n_features, "classes": num_classes, "dim": feature_dim, "seed": seed}
            with output_store(path, "features", classes=list(FAMILIES[:num_classes]), params=params,
                              force=force) as st:
                write_features(st, image_ids=f.image_ids, image=f.image, proposal=f.proposal, box=f.box,
                               feat=f.feat, prob=f.prob, allowed=f.allowed, truth=f.truth)
            summary["features"] = {"store": str(path), "images": n_features, "proposals": len(f),
                                   "dim": feature_dim}
            log(f"wrote {len(f)} synthetic proposal features to {path}")
    summary["seconds"] = round(t.seconds, 3)
    emit(summary)
