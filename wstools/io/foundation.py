"""Loading foundation-model checkpoints from disk: SAM (``ws propose --method sam``) and CLIP
(``ws cam clip``), through Hugging Face ``transformers`` (the optional extras ``[sam]`` and
``[clip]``).

A checkpoint is a folder as ``save_pretrained`` writes it: ``config.json`` and the weights as
``model.safetensors`` (or sharded safetensors with their index); CLIP's folder also holds the
tokenizer files (``vocab.json``, ``merges.txt``, ``tokenizer_config.json`` ...). The official
Hub repositories (``facebook/sam-vit-huge``, ``openai/clip-vit-base-patch16``) are such
folders once downloaded on a machine with network access (``hf download ...``).

Loading is offline (``local_files_only``, ``HF_HUB_OFFLINE``) and safetensors only: a pickle
(``.pth``, ``.pt``, ``.bin``, ``pytorch_model.bin``) can run any code it names while loading,
so it is refused, never unpickled; no ``trust_remote_code``. Meta's original ``sam_vit_*.pth``
files are pickles: convert them once (transformers' ``convert_sam_to_hf.py``) in an environment
you trust.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import InputError

PICKLE_SUFFIXES = (".pth", ".pt", ".bin", ".pkl", ".ckpt")
SAM_TYPES = {"vit_b": 768, "vit_l": 1024, "vit_h": 1280}     # ViT width of each official SAM


def require_transformers(extra: str):
    """Import ``transformers`` or raise the one-line InputError naming the extra to install."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import transformers
    except ImportError:
        raise InputError(f"this needs the optional extra '{extra}': pip install 'wstools[{extra}]' "
                         f"(or pip install -e '.[{extra}]' in a checkout)") from None
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return transformers


def _checkpoint_dir(path, model_types: tuple, what: str) -> tuple[Path, dict]:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} checkpoint not found", path=p)
    if p.is_file():
        if p.suffix.lower() in PICKLE_SUFFIXES:
            raise InputError("is a pickle checkpoint, which can run code when loaded: refused; give a "
                             "save_pretrained folder with safetensors weights (see ws propose --help)", path=p)
        raise InputError(f"is a file; a {what} checkpoint is a folder with config.json and model.safetensors",
                         path=p)
    cfg_path = p / "config.json"
    if not cfg_path.is_file():
        raise InputError(f"has no config.json (a {what} checkpoint is a save_pretrained folder)", path=p)
    try:
        cfg = json.loads(cfg_path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"is not valid JSON ({e})", path=cfg_path) from None
    if not isinstance(cfg, dict) or cfg.get("model_type") not in model_types:
        got = cfg.get("model_type") if isinstance(cfg, dict) else None
        raise InputError(f"config.json has model_type {got!r}, expected {' or '.join(model_types)}", path=p)
    if not any(p.glob("*.safetensors")):
        pickles = sorted(f.name for f in p.iterdir() if f.suffix.lower() in PICKLE_SUFFIXES)
        if pickles:
            raise InputError(f"holds only pickle weights ({pickles[0]}), which can run code when loaded: "
                             "refused; save the model with safetensors", path=p)
        raise InputError("holds no model.safetensors", path=p)
    return p, cfg


def _from_pretrained(cls, p: Path, weights: bool = True, **kw):
    if weights:
        kw["use_safetensors"] = True
    try:
        return cls.from_pretrained(str(p), local_files_only=True, **kw)
    except Exception as e:     # a truncated or foreign file (safetensors' SafetensorError, OSError, ...)
        first = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        raise InputError(f"cannot load ({e.__class__.__name__}: {first})", path=p) from None


def load_sam(path, device: str, model_type: str = "auto"):
    """A ``transformers.SamModel`` in eval mode on ``device``; ``model_type`` vit_b|vit_l|vit_h is
    checked against the checkpoint's ViT width (``auto`` takes what the folder holds)."""
    tf = require_transformers("sam")
    p, cfg = _checkpoint_dir(path, ("sam",), "SAM")
    if model_type != "auto":
        width = (cfg.get("vision_config") or {}).get("hidden_size", 768)
        if SAM_TYPES[model_type] != width:
            raise InputError(f"--model-type {model_type} is a ViT of width {SAM_TYPES[model_type]}, the "
                             f"checkpoint's is {width}", path=p)
    model = _from_pretrained(tf.SamModel, p)
    return model.to(device).eval()


def load_clip(path, device: str):
    """``(CLIPModel in eval mode on device, tokenizer)`` from a CLIP checkpoint folder (eager
    attention, so that the attention maps the refinement needs are returned)."""
    tf = require_transformers("clip")
    p, _ = _checkpoint_dir(path, ("clip",), "CLIP")
    model = _from_pretrained(tf.CLIPModel, p, attn_implementation="eager")
    tokenizer = _from_pretrained(tf.AutoTokenizer, p, weights=False)
    return model.to(device).eval(), tokenizer
