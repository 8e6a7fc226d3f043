"""Training throughput and peak memory of the semantic networks of `ws train-seg`.

One SGD step = forward, cross-entropy at the output resolution (the `ws train-seg` step
function), backward, update; random weights and random crops (speed does not depend on
them). Each configuration runs in its own process so that its peak resident memory (CPU)
or peak CUDA memory (GPU) is its own. The baseline row is the `tiny` network in the same
run (the ratio column: images/s relative to it).

    PYTHONPATH=$PWD python benchmarks/seg_speed.py                       # CPU, 321 px, batch 2
    PYTHONPATH=$PWD python benchmarks/seg_speed.py --device cuda --batch 8 --steps 20
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
import torch
from wstools.seg.models import build_semantic
from wstools.seg.semantic import semantic_step
from wstools.train.loop import make_optimizer
arch, crop, batch, steps, device, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6])
if threads:
    torch.set_num_threads(threads)
torch.manual_seed(0)
model = build_semantic(arch, 21).to(device).train()
opt = make_optimizer(model.param_groups(1e-3), "sgd", 1e-3, 0.9, 5e-4)
step = semantic_step(device, loss="ce", at="output")
g = torch.Generator().manual_seed(0)
def make_batch():
    return {"image": torch.randn(batch, 3, crop, crop, generator=g),
            "labels": torch.randint(0, 21, (batch, crop, crop), generator=g),
            "raw": None, "target": torch.ones(batch, 20)}
def one():
    loss, _ = step(model, make_batch())
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
one()   # warm-up
if device.startswith("cuda"):
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
t = time.perf_counter()
for _ in range(steps):
    one()
if device.startswith("cuda"):
    torch.cuda.synchronize()
sec = time.perf_counter() - t
peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else \
    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"arch": arch, "images_per_second": batch * steps / sec, "peak_mib": peak,
                  "seconds_per_step": sec / steps}))
"""


def measure(arch, args):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-c", CHILD, arch, str(args.crop), str(args.batch), str(args.steps),
                        args.device, str(args.threads)], capture_output=True, text=True, env=env)
    if p.returncode:
        sys.exit(f"{arch} failed:\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--archs", default="tiny,deeplabv3_resnet50")
    ap.add_argument("--crop", type=int, default=321, help="crop side (DSRG: 321)")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (0 = torch's default)")
    args = ap.parse_args()
    rows = [measure(a, args) for a in args.archs.split(",")]
    base = rows[0]["images_per_second"]
    where = f"{args.device}, {args.threads} threads" if args.device == "cpu" else args.device
    mem = "peak RSS MiB" if args.device == "cpu" else "peak CUDA MiB"
    print(f"training step at {args.crop} px, batch {args.batch}, {args.steps} timed steps ({where})\n")
    print(f"| network | images/s | s/step | {mem} | images/s vs {rows[0]['arch']} |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['arch']} | {r['images_per_second']:.2f} | {r['seconds_per_step']:.2f} | {r['peak_mib']:.0f} "
              f"| {r['images_per_second'] / base:.3f} |")


if __name__ == "__main__":
    main()
