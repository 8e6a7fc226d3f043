"""Classifier checkpoints: ``torch.save`` of a dict of plain types and tensors.

Keys: ``ws_kind`` ("classifier"), ``arch``, ``stride``, ``classes`` (foreground
names), ``gray`` (trained on gray images), ``state_dict``, ``args`` (training
arguments, JSON types), ``metrics`` (final metrics), ``epoch`` (epochs done).
The per-epoch resume file adds ``optimizer`` (SGD state). Loading uses
``torch.load(weights_only=True)``: a checkpoint can hold no code.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch

from ..errors import InputError
from .atomic import atomic_path

KIND = "classifier"
REQUIRED = ("arch", "stride", "classes", "state_dict", "gray")


def save_checkpoint(path, ckpt: dict, force: bool = False) -> None:
    """Write atomically (hidden temporary file, then rename)."""
    with atomic_path(path, force=force) as tmp:
        torch.save({"ws_kind": KIND, **ckpt}, tmp)


def save_resume(path, ckpt: dict) -> None:
    """Write the per-epoch resume file atomically, replacing the previous one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save({"ws_kind": KIND, **ckpt}, tmp)
    os.replace(tmp, path)


def remove(path) -> None:
    with contextlib.suppress(FileNotFoundError):
        Path(path).unlink()


def load_checkpoint(path) -> dict:
    """Read a classifier checkpoint; InputError naming the file when it is missing,
    not loadable with ``weights_only=True``, or lacks a required key."""
    path = Path(path)
    if not path.is_file():
        raise InputError("checkpoint does not exist", path=path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise InputError(f"cannot read checkpoint with torch.load(weights_only=True) "
                         f"({e.__class__.__name__}: {str(e).splitlines()[0][:200]})", path=path) from None
    if not isinstance(ckpt, dict) or ckpt.get("ws_kind") != KIND:
        raise InputError("is not a ws classifier checkpoint (written by `ws cam train`)", path=path)
    missing = [k for k in REQUIRED if k not in ckpt]
    if missing:
        raise InputError(f"checkpoint lacks {', '.join(missing)}", path=path)
    return ckpt
