"""Options and the closing step shared by the ``ws cam`` sub-commands that write maps."""

from __future__ import annotations

import click

from ..common import emit, option_stack, warn


def classes_from_options(which: str, scorer: str):
    """``--classes-from tags|predicted`` and ``--score-threshold``: whose maps an image gets, its
    tags (a training set) or the classes ``scorer`` predicts (a test set)."""
    return option_stack([
        click.option("--classes-from", type=click.Choice(["tags", "predicted"]), default="tags", show_default=True,
                     help=f"{which}: the image's tags (a training set) or the classes {scorer} predicts with "
                          "probability >= --score-threshold (a test set; at least the top class)."),
        click.option("--score-threshold", type=click.FloatRange(0, 1), default=0.5, show_default=True,
                     help="Probability above which a class counts as predicted (with --classes-from predicted)."),
    ])


def write_cams(output, manifest, compute, *, params, shard, resume, force, desc, untagged, summary):
    """Run ``compute`` over the manifest's images into the ``cams`` store ``output`` and print the
    command's summary; ``untagged()`` counts the images stored without maps (no tags)."""
    from ...io.cams import write_cam_group
    from ..stage import run_per_image

    run = run_per_image(output, "cams", manifest.images, lambda g, r: write_cam_group(g, *r),
                        classes=manifest.classes, params=params, dataset=manifest, compute=compute, shard=shard,
                        resume=resume, force=force, desc=desc)
    if untagged():
        warn(f"{untagged()} images have no tags: stored without CAMs (use --classes-from predicted)")
    emit({"output": str(output), "images": run.images, "skipped_existing": run.skipped, "untagged": untagged(),
          **summary, "seconds": round(run.seconds, 3),
          "images_per_second": round(run.images / max(run.seconds, 1e-9), 3)})
