"""``ws info FILE``: what is in a manifest or a store."""

from __future__ import annotations

import click

from ..io.inspect import describe, format_text
from .common import command, emit


@command("info")
@click.argument("file", type=click.Path(dir_okay=True))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.option("--sample", type=click.IntRange(0), default=200, show_default=True,
              help="Value statistics of per-image datasets use the first N images (0 = shapes only).")
def info(file, as_json, sample):
    """Describe FILE: a dataset manifest, any ws store, a checkpoint, or a COCO JSON export.

    Shows the kind and schema, the provenance (the command that made it, its
    parameters, the dataset and the input stores), counts (images, proposals,
    classes) and for every dataset its dtype, shape and min/max/mean. Per-image
    datasets are grouped as images/*/NAME. A checkpoint (ws cam train, ws
    features train-mil, ws train-seg, ws icn train): its kind, the command that
    wrote it, arch, classes, epochs done, final metrics, training arguments and
    parameter count (read with torch.load(weights_only=True)).

    \b
    Example:
      ws info proposals.h5
      ws info cams.h5 --json | jq .params
      ws info cls.pt
    """
    result = describe(file, stats=sample > 0, sample_images=sample)
    if as_json:
        emit(result)
    else:
        click.echo(format_text(result))
