"""``ws merge OUT PART...``: join the shards of a per-image store."""

from __future__ import annotations

import click

from ..io.store import merge_stores, shard_coverage
from .common import Timer, command, emit, force_option


@command("merge")
@click.argument("output", type=click.Path(dir_okay=False))
@click.argument("parts", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--partial", is_flag=True,
              help="Merge parts that do not cover the input (a shard missing); the summary lists the "
                   "missing shards. Without it such a set is refused.")
@force_option
def merge(output, parts, partial, force):
    """Join PARTS (stores written with --shard I/N) into OUTPUT.

    The parts must be of the same per-image kind (proposals, cams, labels),
    with the same classes, dataset and parameters (apart from --shard), and no
    image may appear in two parts. Parts of a `features` store (`ws features
    --shard I/N`) are joined by concatenating their rows (image indices are
    offset); parts listing the same image are refused. The shards must be all
    of one input (every I of one N), unless --partial.

    \b
    Example:
      for i in 0 1 2 3; do ws propose train.json --shard $i/4 -o part$i.h5 & done; wait
      ws merge proposals.h5 part0.h5 part1.h5 part2.h5 part3.h5
      ws features train.json --proposals proposals.h5 --model mil.pt --shard 0/2 -o f0.h5
      ws merge feats.h5 f0.h5 f1.h5
    """
    from ..io.flat import merge_features
    from ..io.store import open_store

    with open_store(parts[0]) as s0:
        kind = s0.kind
    with Timer() as t:
        if kind == "features":
            opened = []
            try:
                for p in parts:
                    opened.append(open_store(p, "features"))
                coverage = shard_coverage(opened, partial=partial)
            finally:
                for s in opened:
                    s.close()
            summary = merge_features(output, parts, force=force)
            summary.update(partial=bool(coverage["missing_shards"]), **coverage)
        else:
            summary = merge_stores(output, parts, force=force, partial=partial)
    summary.update(output=output, seconds=round(t.seconds, 3))
    emit(summary)
