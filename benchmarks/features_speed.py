"""Speed and peak memory of `ws features` (route 1: classifier + CAMs) on the CPU, against
`ws cam infer --scales 1.0 --no-flip` on the same images and network, in the same run.

Toy images (`ws toy`, 128 px); the network is a randomly initialised --arch tiny classifier
(speed does not depend on its weights); the proposals are 20 random boxes per image with
rectangular masks written straight into a `proposals` store (speed does not depend on
their quality; `ws propose` on thousands of images would dominate the run). `ws features`
also computes `truth` (mask IoU with the GT instances), as on any manifest with instances.
Each command runs once under /usr/bin/time: wall seconds, images/s, peak RSS (MiB).

    OMP_NUM_THREADS=1 python benchmarks/features_speed.py                 # 300 and 1200 images
    OMP_NUM_THREADS=1 python benchmarks/features_speed.py --sizes 1000,4000   # the issue's sizes
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def timed_ws(*args, env=None):
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "MAXRSS %M", "ws", *map(str, args)], capture_output=True, text=True,
                       env=env)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"ws {' '.join(map(str, args))} failed:\n{p.stderr[-3000:]}")
    rss = [int(line.split()[1]) for line in p.stderr.splitlines() if line.startswith("MAXRSS")][-1] / 1024
    return json.loads(p.stdout.strip().splitlines()[-1]), wall, rss


def random_proposals(manifest_path, out, per_image, seed=0):
    from wstools.io.dataset import load_manifest
    from wstools.io.store import create_store, write_rles
    from wstools.masks import encode

    m = load_manifest(manifest_path)
    rng = np.random.default_rng(seed)
    with create_store(out, "proposals", classes=m.classes, params={"method": "random-boxes"}, dataset=m,
                      force=True) as s:
        for rec in m.images:
            H, W = rec.height, rec.width
            x0 = rng.integers(0, W - 8, per_image)
            y0 = rng.integers(0, H - 8, per_image)
            x1 = np.minimum(W, x0 + rng.integers(8, W // 2, per_image))
            y1 = np.minimum(H, y0 + rng.integers(8, H // 2, per_image))
            masks = np.zeros((per_image, H, W), bool)
            for j in range(per_image):
                masks[j, y0[j]:y1[j], x0[j]:x1[j]] = True
            with s.write_image(rec.id) as g:
                g.attrs["height"], g.attrs["width"] = H, W
                g.create_dataset("boxes", data=np.stack([x0, y0, x1, y1], 1).astype(np.float32))
                g.create_dataset("scores", data=np.linspace(1, 0, per_image, dtype=np.float32))
                write_rles(g, "masks", encode(masks))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="300,1200", help="numbers of images (the issue asks 1000,4000)")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--per-image", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    import torch

    from wstools.cam.model import CamNet
    from wstools.io.checkpoint import save_checkpoint
    from wstools.nn.backbones import build_backbone

    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads)}
    d = Path(a.out or tempfile.mkdtemp(prefix="features_speed_"))
    d.mkdir(parents=True, exist_ok=True)
    sizes = [int(x) for x in a.sizes.split(",")]
    subprocess.run(["ws", "toy", d / "toy", "--train", str(max(sizes)), "--val", "0", "--size", str(a.size),
                    "--force", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    full = json.loads((d / "toy" / "train.json").read_text())
    torch.manual_seed(0)
    save_checkpoint(d / "cls.pt", {"arch": "tiny", "stride": 16, "classes": full["classes"], "gray": False,
                                   "state_dict": CamNet(build_backbone("tiny", 16), len(full["classes"])).state_dict()},
                    force=True)
    rows = []
    for n in sizes:
        man = d / "toy" / f"train_{n}.json"
        man.write_text(json.dumps({**full, "images": full["images"][:n]}))
        random_proposals(man, d / f"props_{n}.h5", a.per_image)
        common = ["--batch-size", a.batch_size, "--threads", a.threads, "--device", "cpu", "-q", "--force"]
        cam, cam_wall, cam_rss = timed_ws("cam", "infer", man, "--model", d / "cls.pt", "--scales", "1.0",
                                          "--no-flip", *common, "-o", d / f"cams_{n}.h5", env=env)
        feat, f_wall, f_rss = timed_ws("features", man, "--proposals", d / f"props_{n}.h5", "--cams",
                                       d / f"cams_{n}.h5", "--model", d / "cls.pt", "--proposals-per-image",
                                       a.per_image, *common, "-o", d / f"feats_{n}.h5", env=env)
        rows.append((n, cam, cam_wall, cam_rss, feat, f_wall, f_rss))
    print(f"\nCPU, {a.threads} torch thread(s), --arch tiny, {a.size} px toy images, {a.per_image} proposals "
          f"per image, batch {a.batch_size}\n")
    print("| images | cam infer img/s (wall s) | features img/s (wall s) | time ratio features/cam "
          "(in-command; wall) | peak RSS cam / features (MiB) |")
    print("|---|---|---|---|---|")
    for n, cam, cw, cr, feat, fw, fr in rows:
        ratio = cam["images_per_second"] / max(feat["images_per_second"], 1e-9)
        print(f"| {n} | {cam['images_per_second']:.1f} ({cw:.1f}) | {feat['images_per_second']:.1f} ({fw:.1f}) | "
              f"{ratio:.2f}x; {fw / cw:.2f}x | {cr:.0f} / {fr:.0f} |")
    print(f"\nfiles in {d}")


if __name__ == "__main__":
    main()
