"""The shared base of every ``ws`` command: common flags, summaries, logs, progress.

A command module defines a click command with :func:`command` (``cls=WsCommand``, whose
one-line errors and exit codes live in :mod:`.base`), adds the shared options it needs with the
decorators below (per-image stages: :func:`wstools.cli.stage.per_image_options`), and ends by
calling :func:`emit` with its JSON summary.

Exit codes: 0 success, 1 runtime failure, 2 bad usage or invalid input.
Errors are one line on stderr (``ws NAME: error: FILE: image ID: problem``);
set ``WS_DEBUG=1`` to see the traceback of a runtime failure.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time

import click
import numpy as np

from ..errors import InputError
from .base import WsCommand, WsGroup  # noqa: F401  (WsGroup: the command groups take it from here)

_STATE = {"quiet": False}


def _to_jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _to_jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    if hasattr(obj, "__fspath__"):
        return os.fspath(obj)
    return obj


def emit(summary: dict) -> None:
    """Print the command's one-line JSON summary on stdout (NaN and inf become null)."""
    sys.stdout.write(json.dumps(_to_jsonable(summary), allow_nan=False) + "\n")
    sys.stdout.flush()


def log(message: str) -> None:
    """A log line on stderr, silent with --quiet."""
    if not _STATE["quiet"]:
        click.echo(message, err=True)


def warn(message: str) -> None:
    """A warning on stderr (shown even with --quiet)."""
    click.echo(f"warning: {message}", err=True)


def progress(iterable=None, total=None, desc=None, unit="img"):
    """A tqdm progress bar on stderr; silent when stderr is not a TTY or with --quiet."""
    from tqdm import tqdm

    disable = _STATE["quiet"] or not sys.stderr.isatty()
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, file=sys.stderr,
                dynamic_ncols=True, leave=False)


class Timer:
    """``with Timer() as t: ...; t.seconds``"""

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def command(name=None, **kwargs):
    """``@command("toy")`` = ``@click.command("toy", cls=WsCommand)`` with the --quiet flag."""
    kwargs.setdefault("cls", WsCommand)

    def deco(f):
        return click.command(name, **kwargs)(quiet_option(f))

    return deco


# shared options ---------------------------------------------------------------

def _set_quiet(ctx, param, value):
    _STATE["quiet"] = bool(value)
    return value


def quiet_option(f):
    return click.option("--quiet", "-q", is_flag=True, expose_value=False, callback=_set_quiet,
                        is_eager=True, help="No progress bars or log lines on stderr (errors still shown).")(f)


def path_option(flag: str, required=True, help=None):
    """A file-path option ``--name`` stored as ``name_path`` (an input store or model, or an extra output)."""
    return click.option(flag, flag[2:].replace("-", "_") + "_path", required=required, default=None,
                        type=click.Path(dir_okay=False), help=help)


def option_stack(options):
    """One decorator applying click ``options`` in the order given (as they appear in --help)."""
    def decorate(f):
        for option in reversed(list(options)):
            f = option(f)
        return f
    return decorate


def output_option(help="Output file.", required=True, **kw):
    return click.option("-o", "--output", "output", required=required, type=click.Path(dir_okay=False),
                        help=help, **kw)


force_option = click.option("--force", is_flag=True, help="Overwrite an existing output.")
resume_option = click.option("--resume", is_flag=True,
                             help="Continue an interrupted run (or add missing images to a finished output); "
                                  "images already written are skipped.")
shard_option = click.option("--shard", metavar="I/N", default=None,
                            help="Process only images I, I+N, I+2N, ... (0 <= I < N); join the parts with "
                                 "`ws merge`. For Slurm job arrays and GNU parallel.")
force_mismatch_option = click.option(
    "--force-mismatch", is_flag=True,
    help="Use input stores although their recorded provenance says they were not made from one another "
         "(e.g. the same proposals written again under a new uid).")


def check_provenance(store, source, force_mismatch: bool) -> dict:
    """:func:`wstools.io.store.check_made_from` with the command's warnings: a forced mismatch,
    or a chain that could not be followed (files moved), is said on stderr."""
    from ..io.store import check_made_from

    result = check_made_from(store, source, force=force_mismatch)
    if result["checked"] == "forced":
        warn(f"{source.path}: {result['mismatch']} (--force-mismatch: used anyway)")
    elif result["checked"] == "unverified":
        missing = f": {', '.join(result['missing'][:3])} not found" if result.get("missing") else ""
        warn(f"cannot check that {source.path} is the {source.kind} store {store.path} was made from{missing}")
    return result



def check_same_manifest_or_warn(a, b, force_mismatch: bool) -> None:
    """:func:`wstools.io.store.check_same_manifest` of two input stores; a forced mismatch is said
    on stderr."""
    from ..io.store import check_same_manifest

    mismatch = check_same_manifest(a, b, force=force_mismatch)
    if mismatch:
        warn(f"{mismatch} (--force-mismatch: used anyway)")

seed_option = click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
workers_option = click.option("--workers", type=click.IntRange(0), default=0, show_default=True,
                              help="Worker processes (0 = in the main process).")
batch_size_option = click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True,
                                 help="Images per batch.")
def _set_threads(ctx, param, value):
    if value:
        import torch

        torch.set_num_threads(value)
    return value


threads_option = click.option("--threads", type=click.IntRange(0), default=0, show_default=True, expose_value=False,
                              callback=_set_threads,
                              help="CPU threads of torch (0 = torch's default, one per core). On a shared machine "
                                   "set it to the cores you own: oversubscribed threads can run many times slower.")
device_option = click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
                             show_default=True, help="auto = CUDA when available, else CPU.")


def resolve_device(name: str) -> str:
    """``auto|cpu|cuda`` -> a torch device string; CUDA asked for but absent is an input error."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for but no CUDA device is available (use --device cpu)")
    return name


def parse_floats(text: str, name: str, positive: bool = False) -> list[float]:
    """``"1.0,0.5"`` -> ``[1.0, 0.5]``; a malformed list (or with ``positive``, a value <= 0, as
    input scales) is an input error naming the flag."""
    try:
        values = [float(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise InputError(f"{name} {text!r} must be a comma-separated list of numbers") from None
    if not values:
        raise InputError(f"{name} is empty")
    bad = [x for x in values if not math.isfinite(x)]
    if bad:
        raise InputError(f"{name} {text!r}: {bad[0]} is not a finite number")
    if positive and any(x <= 0 for x in values):
        raise InputError(f"{name} {text!r} must be positive")
    return values
