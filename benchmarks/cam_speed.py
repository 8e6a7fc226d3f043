"""CAM inference speed and peak memory of `ws cam infer` on the CPU.

Images/s for --arch tiny and resnet50 (random weights: speed does not depend on
them) on 320 px `ws toy` images, single-scale without flips versus IRN's 4
scales (1.0, 0.5, 1.5, 2.0) with flips; the baseline is the single-scale run of
the same network in the same run (the ratio column). Peak resident memory of the
whole `ws cam infer` process for N and 4N images at the same batch size shows
that memory is bounded by a batch, not by the dataset.

    python benchmarks/cam_speed.py
    python benchmarks/cam_speed.py --images 8 --resnet-images 4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MEASURE = r"""
import json, resource, subprocess, sys, time
t = time.perf_counter()
p = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - t
if p.returncode:
    sys.exit(p.stderr)
print(json.dumps({"summary": json.loads(p.stdout.strip().splitlines()[-1]), "wall": wall,
                  "peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def run(args):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-c", MEASURE, "ws", *map(str, args), "-q"], capture_output=True,
                       text=True, env=env)
    if p.returncode:
        sys.exit(f"ws {' '.join(map(str, args))} failed:\n{p.stderr}")
    return json.loads(p.stdout)


def make_checkpoint(path, arch, classes):
    import torch

    from wstools.cam.model import CamNet
    from wstools.io.checkpoint import save_checkpoint
    from wstools.nn import build_backbone

    torch.manual_seed(0)
    net = CamNet(build_backbone(arch, 16), len(classes))
    save_checkpoint(path, {"arch": arch, "stride": 16, "classes": classes, "gray": False,
                           "state_dict": net.state_dict(), "args": {}, "metrics": {}, "epoch": 0}, force=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=16, help="images for tiny (and the memory test: N and 4N)")
    ap.add_argument("--resnet-images", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    out = Path(a.out or tempfile.mkdtemp(prefix="cam_speed_"))
    n4 = 4 * a.images
    subprocess.run(["ws", "toy", str(out / "toy"), "--size", "320", "--train", "0", "--val", str(n4), "--force",
                    "-q"], check=True, capture_output=True,
                   env=dict(os.environ, PYTHONPATH=str(REPO)))
    m = json.loads((out / "toy/val.json").read_text())
    for n in (a.images, a.resnet_images):   # subsets, beside the images (paths are relative)
        (out / "toy" / f"val{n}.json").write_text(json.dumps({**m, "images": m["images"][:n]}))
    rows = []
    for arch, n in (("tiny", a.images), ("resnet50", a.resnet_images)):
        make_checkpoint(out / f"{arch}.pt", arch, m["classes"])
        base = None
        for name, flags in (("1 scale", ["--scales", "1.0", "--no-flip"]),
                            ("4 scales + flip", ["--scales", "1.0,0.5,1.5,2.0", "--flip"])):
            r = run(["cam", "infer", out / "toy" / f"val{n}.json", "--model", out / f"{arch}.pt", "--device", "cpu",
                     "--batch-size", a.batch_size, *flags, "-o", out / f"{arch}_{n}.h5", "--force"])
            ips = r["summary"]["images_per_second"]
            base = base or ips
            rows.append((arch, name, n, ips, ips / base, r["peak_mib"]))
    mem = []
    for n in (a.images, n4):
        r = run(["cam", "infer", out / "toy" / "val.json" if n == n4 else out / "toy" / f"val{n}.json",
                 "--model", out / "tiny.pt", "--device", "cpu", "--batch-size", a.batch_size,
                 "-o", out / f"mem_{n}.h5", "--force"])
        mem.append((n, r["peak_mib"]))
    print(f"`ws cam infer` on the CPU ({os.cpu_count()} cores), 320x320 images, batch size {a.batch_size}\n")
    print("| arch | passes | images | images/s | vs 1 scale | peak RSS (MiB) |")
    print("|---|---|---|---|---|---|")
    for arch, name, n, ips, ratio, peak in rows:
        print(f"| {arch} | {name} | {n} | {ips:.2f} | {ratio:.2f}x | {peak:.0f} |")
    print("\nPeak memory against the number of images (tiny, 4 scales + flip):\n")
    print("| images | peak RSS (MiB) |")
    print("|---|---|")
    for n, peak in mem:
        print(f"| {n} | {peak:.0f} |")
    print(f"\nratio of peaks {mem[1][1] / mem[0][1]:.2f} for {n4 // a.images}x the images")


if __name__ == "__main__":
    main()
