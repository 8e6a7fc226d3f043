"""Checkpoints: ``torch.save`` of a dict of plain types and tensors.

Every checkpoint has ``ws_kind`` (one of ``REQUIRED``'s keys: ``classifier`` from
``ws cam train``, ``mil`` from ``ws features train-mil``, ``segmentation`` from
``ws train-seg``, ``icn`` from ``ws icn train``), ``arch``, ``classes`` (foreground
names), ``state_dict``, ``args`` (training arguments, JSON types), ``metrics`` (final
metrics) and ``epoch`` (epochs done), plus the keys its kind requires (a classifier:
``stride``, ``gray``). The per-epoch resume file adds ``optimizer`` (its state).
Loading uses ``torch.load(weights_only=True)``: a checkpoint can hold no code.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path

import torch

from ..errors import InputError
from .atomic import atomic_path

KIND = "classifier"
# keys each kind of checkpoint must hold
REQUIRED = {
    "classifier": ("arch", "stride", "classes", "state_dict", "gray"),
    "mil": ("arch", "classes", "state_dict"),
    "segmentation": ("arch", "classes", "state_dict", "task"),
    "icn": ("arch", "state_dict"),
}
_WRITTEN_BY = {"classifier": "ws cam train", "mil": "ws features train-mil", "segmentation": "ws train-seg",
               "icn": "ws icn train"}


def save_checkpoint(path, ckpt: dict, force: bool = False, kind: str = KIND) -> None:
    """Write atomically (hidden temporary file, then rename)."""
    with atomic_path(path, force=force) as tmp:
        torch.save({"ws_kind": kind, **ckpt}, tmp)


def save_resume(path, ckpt: dict, kind: str = KIND) -> None:
    """Write the per-epoch resume file atomically, replacing the previous one (an interrupted
    write leaves the previous file intact)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save({"ws_kind": kind, **ckpt}, tmp)
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
        with warnings.catch_warnings():   # torch's multi-line pickle warnings would precede the one-line error
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise InputError(f"cannot read {what} with torch.load(weights_only=True) "
                         f"({e.__class__.__name__}: {str(e).splitlines()[0][:200]})", path=path) from None


def load_checkpoint(path, kind: str | tuple = KIND) -> dict:
    """Read a checkpoint of ``kind`` (or one of several kinds); InputError naming the file when
    it is missing, not loadable with ``weights_only=True``, of another kind, or lacks a
    required key."""
    kinds = (kind,) if isinstance(kind, str) else tuple(kind)
    ckpt = _load_tensors(path, "checkpoint")
    actual = ckpt.get("ws_kind") if isinstance(ckpt, dict) else None
    if actual not in kinds:
        wanted = " or ".join(f"{k} checkpoint (written by `{_WRITTEN_BY[k]}`)" for k in kinds)
        got = f"a {actual} checkpoint" if actual in REQUIRED else "not a ws checkpoint"
        raise InputError(f"is {got}, expected a {wanted}", path=path)
    missing = [k for k in REQUIRED[actual] if k not in ckpt]
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
