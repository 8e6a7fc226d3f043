"""The per-image stage runner: the loop every per-image command shares, written once.

A per-image command (``ws propose``, ``ws cam infer``, ``ws grow seeds``, ...) takes the flags
of :func:`per_image_options`, reads its inputs, and hands :func:`run_per_image` the images, how
one image's result is computed (a module-level job run in ``--workers`` processes, or a
generator in this process, e.g. batches on a GPU) and how it is written. The runner keeps
every ``--shard I/N``-th image, opens the output store (``--resume`` continues it, skipping the
images already written), writes each result as its own part, and returns the counts the
command's JSON summary reports. Every command opens its output store through
:func:`output_store`, dataset-level ones (``ws graph``, ``ws cut``) too.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass

from ..errors import InputError
from ..parallel import worker_map
from .common import (Timer, force_mismatch_option, force_option, log, option_stack, progress, resume_option,
                     shard_option, workers_option)

RESUME_HINT = "rerun with --resume to keep what was written"


def parse_shard(text):
    """``"I/N"`` -> ``(I, N)`` with 0 <= I < N; ``None`` -> ``None``."""
    if text is None:
        return None
    try:
        i, n = (int(x) for x in str(text).split("/"))
    except ValueError:
        raise InputError(f"--shard {text!r} must be I/N, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise InputError(f"--shard {text!r}: need 0 <= I < N")
    return i, n


def shard_items(items, shard):
    """Every N-th item starting at I (``shard`` = ``(I, N)`` or its text ``"I/N"``); all items
    when ``shard`` is None."""
    if isinstance(shard, str):
        shard = parse_shard(shard)
    if shard is None:
        return list(items)
    i, n = shard
    return list(items)[i::n]


def per_image_options(*, workers: bool = True, force_mismatch: bool = False, resume=resume_option):
    """The flags of a per-image stage, in this order: --workers (unless ``workers=False``),
    --shard, --resume (``resume``: the command's own --resume option where it means something
    else), --force-mismatch (with ``force_mismatch=True``), --force. A malformed --shard is
    refused before the command reads anything."""
    opts = ([workers_option] if workers else []) + [shard_option, resume] + \
        ([force_mismatch_option] if force_mismatch else []) + [force_option]

    def deco(f):
        @functools.wraps(f)
        def checked(*args, **kwargs):
            parse_shard(kwargs.get("shard"))
            return f(*args, **kwargs)

        return option_stack(opts)(checked)

    return deco


@contextlib.contextmanager
def output_store(path, kind: str, *, classes, params: dict, dataset=None, inputs=(), force: bool = False,
                 resume: bool = False, dataset_of=None):
    """The command's output store, written atomically (:func:`wstools.io.store.create_store`).
    ``dataset_of``: an input store whose recorded dataset the output records too (a
    dataset-level store made from another store, as ``ws graph`` and ``ws cut`` write)."""
    from ..io.store import create_store

    with create_store(path, kind, classes=classes, params=params, dataset=dataset, inputs=inputs, force=force,
                      resume=resume) as store:
        if dataset_of is not None:
            store.h5.attrs["dataset"] = dataset_of.h5.attrs["dataset"]
        yield store


@dataclass
class StageRun:
    """What :func:`run_per_image` did: images written, images skipped as already written
    (--resume), seconds (from opening the output to its rename)."""
    images: int
    skipped: int
    seconds: float


def image_id(item) -> str:
    """The image id of a manifest record, or the item itself (an id)."""
    return getattr(item, "id", item)


def run_per_image(output, kind: str, items, write, *, classes, params: dict, job=None, jobs=None, compute=None,
                  workers: int = 0, dataset=None, inputs=(), shard=None, resume: bool = False, force: bool = False,
                  keep=None, also=(), desc: str = "images", say_resumed: bool = False) -> StageRun:
    """Run a per-image stage and write its store ``output`` of ``kind``.

    ``items``: the manifest records (or image ids) of the whole input; the runner keeps those of
    ``shard`` (``"I/N"`` text or None), then those ``keep(item)`` accepts. Each remaining image
    gets one result, either ``job(j)`` for ``j`` in ``jobs(todo)`` (a module-level function in
    ``workers`` forked processes, :func:`wstools.parallel.worker_map`; ``jobs`` a generator
    reading the inputs in this process) or the results of ``compute(todo)`` (a generator in this
    process), in the order of ``todo``. ``write(group, result)`` fills the image's group of the
    output; ``also``: more ``(path, kind, write)`` outputs of the same images (a None path is
    left out). With ``resume`` the images every output already holds are skipped (said on stderr
    with ``say_resumed``). ``classes``, ``params``, ``dataset``, ``inputs``, ``force``: the
    output's provenance, as :func:`output_store`. Returns the counts (:class:`StageRun`).
    """
    if (job is None) == (compute is None):
        raise ValueError("run_per_image needs exactly one of job= and compute=")
    items = shard_items(items, shard)
    if keep is not None:
        items = [it for it in items if keep(it)]
    outputs = [(output, kind, write)] + [o for o in also if o[0] is not None]
    with Timer() as t, contextlib.ExitStack() as stack:
        stores = [stack.enter_context(output_store(path, k, classes=classes, params=params, dataset=dataset,
                                                   inputs=inputs, force=force, resume=resume))
                  for path, k, _ in outputs]
        todo = [it for it in items if not (resume and all(s.has_image(image_id(it)) for s in stores))]
        skipped = len(items) - len(todo)
        if skipped and say_resumed:
            log(f"resuming: {skipped} images already done")
        if job is not None:
            results = stack.enter_context(worker_map(job, jobs(todo), workers, hint=RESUME_HINT))
        else:
            results = compute(todo)
            if hasattr(results, "close"):       # a generator: closed at once on an error (its DataLoader)
                stack.callback(results.close)
        done = 0
        for item, result in progress(zip(todo, results), total=len(todo), desc=desc):
            for store, (_, _, write_one) in zip(stores, outputs):
                with store.write_image(image_id(item)) as group:
                    write_one(group, result)
            done += 1
    return StageRun(images=done, skipped=skipped, seconds=t.seconds)


def image_batches(manifest, records, transform, *, batch_size: int, workers: int, device):
    """``(records, x)`` per batch of equally sized images of ``records`` (stacked on ``device``),
    read by a DataLoader with ``workers`` processes; ``transform(image, index)`` as
    :class:`wstools.io.torchdata.ManifestImages`. An unreadable image is its ``InputError``."""
    import torch
    from torch.utils.data import DataLoader

    from ..cam.train import group_by_size
    from ..io.torchdata import ManifestImages, collate_list, raise_errors

    loader = DataLoader(ManifestImages(manifest, records, transform), batch_size=batch_size, num_workers=workers,
                        collate_fn=collate_list)
    for items in loader:
        raise_errors(items)
        for run in group_by_size(items):
            yield [records[it["index"]] for it in run], torch.stack([it["image"] for it in run]).to(device)
