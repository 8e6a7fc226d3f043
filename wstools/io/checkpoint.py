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


def _load_tensors(path, what: str):
    """``torch.load(path, weights_only=True)`` (never unpickles code); InputError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} does not exist", path=path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise InputError(f"cannot read {what} with torch.load(weights_only=True) "
                         f"({e.__class__.__name__}: {str(e).splitlines()[0][:200]})", path=path) from None


def load_checkpoint(path) -> dict:
    """Read a classifier checkpoint; InputError naming the file when it is missing,
    not loadable with ``weights_only=True``, or lacks a required key."""
    ckpt = _load_tensors(path, "checkpoint")
    if not isinstance(ckpt, dict) or ckpt.get("ws_kind") != KIND:
        raise InputError("is not a ws classifier checkpoint (written by `ws cam train`)", path=path)
    missing = [k for k in REQUIRED if k not in ckpt]
    if missing:
        raise InputError(f"checkpoint lacks {', '.join(missing)}", path=path)
    return ckpt


def read_state_dict(path) -> dict:
    """Tensors of a weights file (``--weights PATH``), read with ``weights_only=True``.
    Accepts a plain (torchvision) state dict or a ``ws`` checkpoint (uses the backbone
    part of its ``state_dict``)."""
    obj = _load_tensors(path, "weights file")
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
        if any(k.startswith("backbone.") for k in obj):
            obj = {k[len("backbone."):]: v for k, v in obj.items() if k.startswith("backbone.")}
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputError("is not a state dict (a mapping of parameter names to tensors)", path=path)
    return obj
