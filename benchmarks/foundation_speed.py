"""Speed of the foundation-model stages beside the stages they replace, in one run (issue 24):
`ws propose --method sam` next to `ws propose` (selective search with masks), `ws cam clip`
next to `ws cam infer` (the tiny toy classifier), images per second of each command's own loop
(model loading excluded: each command's summary times its images).

Run: OMP_NUM_THREADS=1 python benchmarks/foundation_speed.py [--images 8] [--size 96]
     python benchmarks/foundation_speed.py --real --device cuda   # real-size random-weight models

Models: tiny random SAM and CLIP (tests/tiny_foundation.py) by default; --real builds
random-weight models of the real sizes (SAM ViT-H at 1024 px, CLIP ViT-B/16), which measure
the speed of the real checkpoints without downloading them (weights do not change the time).
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def ws(*args) -> dict:
    out = subprocess.run(["ws", *map(str, args), "-q"], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def real_models(folder: Path):
    """Random-weight SAM ViT-H and CLIP ViT-B/16 of the real sizes, saved as checkpoint folders."""
    import transformers as tf

    from tiny_foundation import write_tiny_clip

    sam = folder / "sam-vit-h-random"
    vit_h = dict(hidden_size=1280, num_hidden_layers=32, num_attention_heads=16, global_attn_indexes=[7, 15, 23, 31])
    tf.SamModel(tf.SamConfig(vision_config=vit_h)).save_pretrained(str(sam))    # ViT-H at 1024 px
    clip = write_tiny_clip(folder / "clip-b16-random")              # its tokenizer files
    cfg = tf.CLIPConfig(text_config=dict(vocab_size=516, bos_token_id=514, eos_token_id=515, pad_token_id=515),
                        vision_config=dict(patch_size=16, image_size=224), projection_dim=512)
    tf.CLIPModel(cfg).save_pretrained(str(clip))
    return sam, clip


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--real", action="store_true", help="real-size random-weight models (use with --device cuda)")
    a = ap.parse_args()
    from tiny_foundation import write_tiny_clip, write_tiny_sam

    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        ws("toy", t / "toy", "--train", a.images, "--val", 0, "--size", a.size)
        man = t / "toy" / "train.json"
        if a.real:
            sam, clip = real_models(t)
        else:
            sam, clip = write_tiny_sam(t / "sam"), write_tiny_clip(t / "clip")
        ws("cam", "train", man, "--arch", "tiny", "--crop", 64, "--epochs", 1, "--batch-size", 8,
           "--device", a.device, "-o", t / "cls.pt")
        rows = []

        def row(name, summary):
            rows.append((name, summary["images"], summary["seconds"]))

        row("ws propose (selective search, defaults)", ws("propose", man, "-o", t / "p.h5"))
        for pps in (32, 16):
            row(f"ws propose --method sam --points-per-side {pps}",
                ws("propose", man, "--method", "sam", "--checkpoint", sam, "--points-per-side", pps,
                   "--device", a.device, "-o", t / f"sam{pps}.h5"))
        row("ws cam infer (tiny classifier, 2 scales x flip)",
            ws("cam", "infer", man, "--model", t / "cls.pt", "--scales", "1.0,0.5", "--device", a.device,
               "-o", t / "cams.h5"))
        for refine in ("--refine", "--no-refine"):
            row(f"ws cam clip {refine}", ws("cam", "clip", man, "--checkpoint", clip, refine, "--device", a.device,
                                            "-o", t / f"clip{refine}.h5"))
    kind = "real-size random-weight SAM ViT-H / CLIP ViT-B/16" if a.real else "tiny random SAM / CLIP"
    print(f"{a.images} `ws toy` images of {a.size} px, {a.device}, {kind}\n")
    print("| command | images | seconds | images/s |\n|---|---:|---:|---:|")
    for name, n, s in rows:
        print(f"| {name} | {n} | {s:.2f} | {n / max(s, 1e-9):.2f} |")


if __name__ == "__main__":
    main()
