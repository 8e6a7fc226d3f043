"""Checkpoints: ``torch.save`` of a dict of plain types and tensors.

Every checkpoint has ``ws_kind`` (one of ``REQUIRED``'s keys: ``classifier`` from
``ws cam train``, ``mil`` from ``ws features train-mil``, ``segmentation`` from
``ws train-seg``, ``icn`` from ``ws icn train``), ``arch``, ``classes`` (foreground
names), ``state_dict``, ``args`` (training arguments, JSON types), ``metrics`` (final
metrics) and ``epoch`` (epochs done), plus the keys its kind requires (a classifier:
``stride``, ``gray``), and ``ws_version`` and ``command`` (the command line that wrote it,
for ``ws info``). The per-epoch resume file adds ``optimizer`` (its state).
Loading uses ``torch.load(weights_only=True)``: a checkpoint can hold no code.
"""

from __future__ import annotations

import contextlib
import os
import pickle
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


def _header(kind: str) -> dict:
    from .. import __version__
    from .store import command_line

    return {"ws_kind": kind, "ws_version": __version__, "command": command_line()}


def save_checkpoint(path, ckpt: dict, force: bool = False, kind: str = KIND) -> None:
    """Write atomically (hidden temporary file, then rename)."""
    with atomic_path(path, force=force) as tmp:
        torch.save({**_header(kind), **ckpt}, tmp)


def save_resume(path, ckpt: dict, kind: str = KIND) -> None:
    """Write the per-epoch resume file atomically, replacing the previous one (an interrupted
    write leaves the previous file intact)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save({**_header(kind), **ckpt}, tmp)
    os.replace(tmp, path)


def remove(path) -> None:
    with contextlib.suppress(FileNotFoundError):
        Path(path).unlink()


def _not_torch(path: Path) -> str | None:
    """What a file that is no torch file is (a ws store, a JSON file), or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return None
    if head == b"\x89HDF\r\n\x1a\n":
        import h5py

        try:
            with h5py.File(path, "r") as h5:
                kind = h5.attrs.get("ws_kind", "")
                kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        except OSError:
            kind = ""
        return f"a {kind} store" if kind else "an HDF5 file"
    if head.lstrip()[:1] in (b"{", b"["):
        return "a JSON file"
    return None


def _load_tensors(path, what: str):
    """``torch.load(path, weights_only=True)`` (never unpickles code); InputError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} does not exist", path=path)
    other = _not_torch(path)
    if other:
        raise InputError(f"is {other}, not a {what} (a torch file; checkpoints are written by "
                         "`ws cam train`, `ws features train-mil`, `ws train-seg`, `ws icn train`)", path=path)
    try:
        with warnings.catch_warnings():   # torch's multi-line pickle warnings would precede the one-line error
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        # torch's own message advises loading with weights_only=False, which can run the file's
        # code: never repeat that advice
        if isinstance(e, pickle.UnpicklingError) or "weights_only" in str(e):
            raise InputError(f"cannot be read safely as a {what} with torch.load(weights_only=True): it "
                             "holds objects other than tensors and plain values, or is no torch file (ws never "
                             "unpickles code)", path=path) from None
        raise InputError(f"cannot read {what} with torch.load(weights_only=True) "
                         f"({e.__class__.__name__}: {str(e).splitlines()[0][:200]})", path=path) from None


def is_torch_file(path) -> bool:
    """A torch.save file: a zip archive (torch >= 1.6) or a legacy pickle."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head == b"PK\x03\x04" or head[:1] == b"\x80"


def describe_checkpoint(path) -> dict:
    """What ``ws info`` says of a checkpoint: kind, the command that wrote it, arch, classes,
    epochs done, final metrics, training arguments, parameter count; a plain state dict (e.g.
    torchvision weights for ``--weights``) as its tensor and parameter counts."""
    obj = _load_tensors(path, "checkpoint")
    if not isinstance(obj, dict):
        raise InputError(f"holds a {type(obj).__name__}, not a checkpoint", path=path)
    state = obj.get("state_dict") if isinstance(obj.get("state_dict"), dict) else None
    kind = obj.get("ws_kind")
    if kind not in REQUIRED:
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if not tensors:
            raise InputError("is a torch file but neither a ws checkpoint nor a state dict", path=path)
        return {"file": str(path), "kind": "state dict (not a ws checkpoint; usable as --weights)",
                "counts": {"tensors": len(tensors), "parameters": int(sum(t.numel() for t in tensors.values()))}}
    info = {"file": str(path), "kind": f"{kind} checkpoint", "written_by": _WRITTEN_BY[kind]}
    for key in ("ws_version", "command", "arch", "stride", "gray", "task", "epoch"):
        if key in obj:
            info["epochs" if key == "epoch" else key] = obj[key]
    if "classes" in obj:
        info["classes"] = list(obj["classes"])
    counts = {}
    if "classes" in obj:
        counts["classes"] = len(obj["classes"])
    if state is not None:
        counts["tensors"] = len(state)
        counts["parameters"] = int(sum(v.numel() for v in state.values() if isinstance(v, torch.Tensor)))
    info["counts"] = counts
    if obj.get("metrics"):
        info["metrics"] = obj["metrics"]
    if obj.get("args"):
        info["params"] = obj["args"]
    if "optimizer" in obj:
        info["resume_file"] = True
    return info


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
    _check_finite(ckpt.get("state_dict"), path)
    return ckpt


def _check_finite(state, path) -> None:
    """A weight that is NaN or inf makes every later output NaN: refuse it where it enters."""
    if not isinstance(state, dict):
        return
    for name, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise InputError(f"weight {name} holds NaN or inf values (a diverged training?)", path=path)


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
    _check_finite(obj, path)
    return obj


def _network_of(ckpt: dict, num_classes: int | None, path):
    """The untrained network a checkpoint's kind and ``arch`` name."""
    kind, arch = ckpt["ws_kind"], str(ckpt["arch"])
    try:
        if kind == "icn":
            from ..prm.icn import ICN
            return ICN(arch)
        if kind == "segmentation":
            from ..seg.models import build_instance, build_semantic
            if ckpt["task"] == "semantic":
                return build_semantic(arch, num_classes + 1, int(ckpt.get("stride", 8)))
            if ckpt["task"] == "instance":
                return build_instance(arch, num_classes + 1, int(ckpt.get("min_size", 800)),
                                      int(ckpt.get("max_size", 1333)))
            raise InputError(f"unknown task {ckpt['task']!r}", path=path)
        from ..nn.backbones import build_backbone
        backbone = build_backbone(arch, int(ckpt.get("stride", 16)))
        if kind == "mil":
            from ..features.mil import MilNet
            return MilNet(backbone, num_classes, int(ckpt.get("roi_size", 7)))
        from ..cam.model import CamNet
        return CamNet(backbone, num_classes)
    except InputError:
        raise
    except (KeyError, ValueError) as e:
        raise InputError(f"unknown architecture {arch!r} ({e})", path=path) from None


def check_classes(ckpt: dict, classes, path) -> None:
    """InputError naming ``path`` when the checkpoint's class list is not ``classes`` (the
    manifest's foreground names); nothing when either is absent."""
    if classes is not None and "classes" in ckpt and list(ckpt["classes"]) != list(classes):
        raise InputError(f"checkpoint classes {list(ckpt['classes'])} differ from the manifest's {list(classes)}",
                         path=path)


def load_model(path, kind: str | tuple, classes=None, device: str = "cpu"):
    """The network of a ``ws`` checkpoint with its weights, in eval mode on ``device``, and the
    checkpoint dict: ``(model, ckpt)``. The one loader of every command that runs a trained
    network (a ``classifier``, ``mil``, ``segmentation`` or ``icn`` checkpoint; ``kind`` may
    name several). ``classes`` (the manifest's foreground names) must equal the checkpoint's;
    InputError naming the file when they differ or the weights do not fit the named arch."""
    ckpt = load_checkpoint(path, kind)
    check_classes(ckpt, classes, path)
    model = _network_of(ckpt, len(classes) if classes is not None else len(ckpt.get("classes", ())), path)
    try:
        model.load_state_dict(ckpt["state_dict"])
    except (RuntimeError, ValueError) as e:
        raise InputError(f"state_dict does not fit arch {ckpt['arch']} ({str(e).splitlines()[0]})", path=path) from None
    return model.to(device).eval(), ckpt
