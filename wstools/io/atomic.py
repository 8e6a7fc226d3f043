"""Atomic outputs: write to a hidden temporary file beside the target, rename on success."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from ..errors import InputError


def partial_path(path) -> Path:
    """The hidden temporary name an output is written under until it is complete."""
    path = Path(path)
    return path.with_name(f".{path.name}.partial")


def check_output(path, force: bool = False) -> Path:
    """Refuse to overwrite an existing output unless ``force``; check the folder exists."""
    path = Path(path)
    if path.exists() and not force:
        raise InputError("output exists (use --force to overwrite)", path=path)
    if not path.parent.exists():
        raise InputError("output folder does not exist", path=path.parent)
    check_writable_folder(path)
    return path


def check_writable_folder(path) -> None:
    """Refuse an output whose folder this process cannot write in (checked with the effective
    user, as the write will be), before any work is done."""
    folder = Path(path).parent
    if not folder.is_dir():
        return
    mode = os.W_OK | os.X_OK
    effective = os.access in os.supports_effective_ids
    if not os.access(folder, mode, effective_ids=effective):
        raise InputError("cannot write in the output folder (permission denied)", path=folder)


@contextlib.contextmanager
def atomic_path(path, force: bool = False):
    """Yield a temporary path to write; rename it onto ``path`` when the block succeeds.

    On any exception the temporary file is removed, so an interrupted or failed
    run never leaves a file that a later stage would take for complete.
    """
    path = check_output(path, force)
    tmp = partial_path(path)
    if tmp.exists():
        tmp.unlink()
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_json_atomic(path, obj, force: bool = False, indent=None) -> None:
    """Write ``obj`` as JSON to ``path`` atomically; ``-`` writes to stdout."""
    if str(path) == "-":
        import sys

        json.dump(obj, sys.stdout, indent=indent)
        sys.stdout.write("\n")
        return
    with atomic_path(path, force) as tmp:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=indent)
            f.write("\n")
