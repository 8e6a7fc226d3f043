"""How fast `ws toy` writes a dataset, against the floor of just saving the same PNGs.

    python benchmarks/toy_speed.py [--images 500] [--size 128]

Prints a markdown table. The baseline writes the same number of pre-drawn
images and label maps with Pillow, so the ratio shows the cost of drawing.
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from wstools.io.images import write_label_png
from wstools.io.toy import write_dataset
from wstools.toy import make_image


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--size", type=int, default=128)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        write_dataset(Path(tmp) / "toy", "train", args.images, size=args.size, seed=0)
        toy_s = time.perf_counter() - t0

        sample = make_image(np.random.default_rng(0), size=args.size)
        out = Path(tmp) / "floor"
        out.mkdir()
        t0 = time.perf_counter()
        for i in range(args.images):
            Image.fromarray(sample.image).save(out / f"{i}.png", compress_level=1)
            for name in ("s", "i", "o"):
                write_label_png(out / f"{i}{name}.png", sample.semantic)
        floor_s = time.perf_counter() - t0
    print(f"| task ({args.images} images, {args.size} px) | seconds | images/s | ratio to PNG floor |")
    print("|---|---|---|---|")
    print(f"| ws toy (draw + write) | {toy_s:.2f} | {args.images / toy_s:.0f} | {toy_s / floor_s:.1f}x |")
    print(f"| baseline: write the PNGs only | {floor_s:.2f} | {args.images / floor_s:.0f} | 1.0x |")


if __name__ == "__main__":
    main()
