"""``ws merge OUT PART...``: join the shards of a per-image store."""

from __future__ import annotations

import click

from ..io.store import merge_stores
from .common import Timer, command, emit, force_option


@command("merge")
@click.argument("output", type=click.Path(dir_okay=False))
@click.argument("parts", nargs=-1, required=True, type=click.Path(dir_okay=False))
@force_option
def merge(output, parts, force):
    """Join PARTS (stores written with --shard I/N) into OUTPUT.

    The parts must be of the same per-image kind (proposals, cams, labels),
    with the same classes, dataset and parameters (apart from --shard), and no
    image may appear in two parts.

    \b
    Example:
      for i in 0 1 2 3; do ws propose train.json --shard $i/4 -o part$i.h5 & done; wait
      ws merge proposals.h5 part0.h5 part1.h5 part2.h5 part3.h5
    """
    with Timer() as t:
        summary = merge_stores(output, parts, force=force)
    summary.update(output=output, seconds=round(t.seconds, 3))
    emit(summary)
