"""Tiny randomly initialised SAM and CLIP checkpoints for the tests of ``ws propose --method sam``
and ``ws cam clip``: folders in the format the loaders read (``save_pretrained``: config.json,
model.safetensors, and for CLIP the tokenizer files), built in the test, never downloaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def need_transformers():
    """``transformers`` or a skip naming the extra. The ``[test]`` extra installs it, so CI (which
    installs ``.[test]``) runs these tests; where CI or WS_REQUIRE_EXTRAS is set a missing
    transformers is a failure, never a silent skip."""
    import os

    if os.environ.get("WS_REQUIRE_EXTRAS") or os.environ.get("CI"):
        import transformers
    else:
        transformers = pytest.importorskip("transformers",
                                           reason="the [sam]/[clip] extra (transformers) is not installed")
    transformers.utils.logging.disable_progress_bar()
    return transformers


def write_tiny_sam(path: Path, seed: int = 0) -> Path:
    """A SAM with a 2-layer ViT of width 32 on 64 px inputs (8 x 8 embeddings, 32 x 32 masks)."""
    tf = need_transformers()
    import torch

    torch.manual_seed(seed)
    cfg = tf.SamConfig(
        vision_config=dict(hidden_size=32, output_channels=16, num_hidden_layers=2, num_attention_heads=2,
                           image_size=64, patch_size=8, mlp_dim=64, global_attn_indexes=[1], window_size=4,
                           num_pos_feats=8),
        prompt_encoder_config=dict(hidden_size=16, image_size=64, patch_size=8, mask_input_channels=4),
        mask_decoder_config=dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, mlp_dim=32,
                                 iou_head_hidden_dim=16))
    model = tf.SamModel(cfg).eval()
    with torch.no_grad():   # confident: predicted IoU ~ 1 and large mask logits (stable masks)
        model.mask_decoder.iou_prediction_head.proj_out.weight.zero_()
        model.mask_decoder.iou_prediction_head.proj_out.bias.fill_(0.97)
        model.shared_image_embedding.positional_embedding.mul_(20.0)
        for mlp in model.mask_decoder.output_hypernetworks_mlps:
            mlp.proj_out.weight.mul_(1e8)
    model.save_pretrained(str(path))
    return Path(path)


def _byte_chars():
    """GPT-2 / CLIP byte-to-unicode table (the 256 symbols byte-level BPE works on)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def write_tiny_clip(path: Path, seed: int = 0) -> Path:
    """A CLIP with 2-layer text and vision transformers of width 32 (ViT patch 16 on 32 px), a
    byte-level BPE vocabulary without merges (516 tokens) and its tokenizer files."""
    tf = need_transformers()
    import torch

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    chars = _byte_chars()
    vocab = {}
    for c in chars:
        vocab[c] = len(vocab)
    for c in chars:
        vocab[c + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\n")
    try:                                # transformers >= 5
        tok = tf.CLIPTokenizer(vocab=vocab, merges=[])
    except TypeError:                   # transformers 4: the slow tokenizer reads files
        tok = tf.CLIPTokenizer(vocab_file=str(path / "vocab.json"), merges_file=str(path / "merges.txt"))
    tok.save_pretrained(str(path))
    torch.manual_seed(seed)
    cfg = tf.CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=77,
                         bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
                         pad_token_id=vocab["<|endoftext|>"]),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=16),
        projection_dim=16)
    tf.CLIPModel(cfg).eval().save_pretrained(str(path))
    return path


def write_pickle_bomb(path: Path, marker: Path) -> None:
    """A pickle that, if ever unpickled, creates ``marker`` (the proof a loader ran it)."""
    import pickle

    class Bomb:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path.write_bytes(pickle.dumps({"state_dict": Bomb()}))
