"""Fast in-memory exploration of the toy classifier recipe (what chose `--recipe toy`).

`benchmarks/cam_toy.py` measures the real commands; this script trains the same `tiny` CamNet
on `ws toy` images held in memory (no PNG files, no DataLoader) so that variants of the
optimiser, schedule, pooling, initialisation and backbone layout can be compared in the same
process at equal cost. It prints one JSON line per run: training CPU seconds, train mAP (1000
training images), and per val set the classification mAP and the CAM mIoU at the best
background threshold (IRN's sweep, `wstools.eval.cams`) with CAMs of scales 1.0 (+flip),
1.0,0.5 (+flip) and 1.0,0.5,1.5,2.0 (+flip), the tags as classes.

    OMP_NUM_THREADS=1 python benchmarks/cam_toy_sweep.py --n 9000 --epochs 3               # tiny at stride 8
    OMP_NUM_THREADS=1 python benchmarks/cam_toy_sweep.py --n 9000 --epochs 3 --dil 2,4     # dilated (before)

Data: `--n` training images of `--size` px and 300 val images of 64 and 96 px, drawn with
`wstools.toy.make_image` (seed 1, the splits of `ws toy`) and cached under `--cache`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wstools.cam.cams import finalize_cams, forward_cams  # noqa: E402
from wstools.cam.metrics import average_precision, mean_average_precision  # noqa: E402
from wstools.cam.model import CamNet, multilabel_loss  # noqa: E402
from wstools.eval.cams import DEFAULT_THRESHOLDS, threshold_confusions  # noqa: E402
from wstools.nn.backbones import build_backbone  # noqa: E402
from wstools.toy.generator import make_image  # noqa: E402

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def toy_arrays(cache: Path, split: str, n: int, size: int):
    """(images (n, size, size, 3) uint8, semantic (n, size, size), tags (n, 5)) as `ws toy --seed 1`."""
    path = cache / f"{split}_{size}_{n}.npz"
    if not path.exists():
        code = sum(ord(ch) * 31 ** k for k, ch in enumerate(split)) % (2 ** 31)
        imgs = np.zeros((n, size, size, 3), np.uint8)
        sem = np.zeros((n, size, size), np.uint8)
        tags = np.zeros((n, 5), np.float32)
        for i in range(n):
            t = make_image(np.random.default_rng([1, code, i]), size=size, num_classes=5)
            imgs[i], sem[i] = t.image, t.semantic
            tags[i, np.asarray(sorted(set(t.instance_labels)), dtype=np.int64) - 1] = 1
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(path, imgs=imgs, sem=sem, tags=tags)
    d = np.load(path)
    return d["imgs"], d["sem"], d["tags"]


def prep(x):
    return (x.float() / 255.0 - MEAN) / STD


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=6000, help="training images")
    ap.add_argument("--size", type=int, default=64, help="training image side (px)")
    ap.add_argument("--epochs", type=float, default=3)
    ap.add_argument("--bs", type=int, default=16)
    ap.add_argument("--lr", type=float, default=0.003)
    ap.add_argument("--opt", choices=["adam", "sgd"], default="adam", help="sgd: Nesterov momentum 0.9")
    ap.add_argument("--wd", type=float, default=0.0)
    ap.add_argument("--sched", choices=["poly", "onecycle"], default="poly",
                    help="poly (power 0.9) or one-cycle (15 %% linear warm-up, cosine decay)")
    ap.add_argument("--stride", type=int, default=8)
    ap.add_argument("--dil", default="", help="D3,D4: dilation of stages 3 and 4 (the dilated layout: 2,4)")
    ap.add_argument("--stem1", action="store_true", help="stem at stride 1 (with --stride 16: output stride 8)")
    ap.add_argument("--pool", default="gap", help="gap, lseR (log-sum-exp, sharpness R) or topF (mean of top F)")
    ap.add_argument("--zero-init", action="store_true", help="zero-init the last BN of each residual block")
    ap.add_argument("--bias", action="store_true", help="a learned per-class bias on the pooled logits")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default="/tmp/cam_toy_sweep")
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    cache = Path(a.cache)
    imgs, _, tags = toy_arrays(cache, "train", a.n, a.size)
    X, Y = torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(tags)

    bb = build_backbone("tiny", a.stride)
    if a.dil:
        for stage, d in zip((bb.stage3, bb.stage4), map(int, a.dil.split(","))):
            for c in (stage.conv1, stage.conv2):
                c.dilation, c.padding = (d, d), (d, d)
    if a.stem1:
        bb.stem[0].stride = (1, 1)
    model = CamNet(bb, 5)
    if a.zero_init:
        for name, m in model.backbone.named_modules():
            if name.endswith("bn2"):
                torch.nn.init.zeros_(m.weight)
    bias = torch.nn.Parameter(torch.zeros(5)) if a.bias else None

    def logits_of(x):
        sm = model.classifier(model.backbone(x)[-1])
        if a.pool == "gap":
            z = sm.mean((2, 3))
        elif a.pool.startswith("lse"):
            r = float(a.pool[3:])
            z = (torch.logsumexp(r * sm.flatten(2), 2) - math.log(sm[0, 0].numel())) / r
        else:
            k = max(1, int(round(float(a.pool[3:]) * sm[0, 0].numel())))
            z = sm.flatten(2).topk(k, 2).values.mean(2)
        return z + bias if bias is not None else z

    params = list(model.parameters()) + ([bias] if bias is not None else [])
    opt = torch.optim.Adam(params, lr=a.lr, weight_decay=a.wd) if a.opt == "adam" else \
        torch.optim.SGD(params, lr=a.lr, momentum=0.9, nesterov=True, weight_decay=a.wd)
    per_epoch = a.n // a.bs
    total = int(a.epochs * per_epoch)

    def lr_at(step):
        p = step / total
        if a.sched == "poly":
            return a.lr * (1 - p) ** 0.9
        return a.lr * (p / 0.15 if p < 0.15 else 0.5 * (1 + math.cos(math.pi * (p - 0.15) / 0.85)))

    g = torch.Generator().manual_seed(a.seed)
    t0, step, losses = time.process_time(), 0, []
    model.train()
    while step < total:
        perm = torch.randperm(a.n, generator=g)
        run = []
        for i in range(per_epoch):
            if step >= total:
                break
            idx = perm[i * a.bs:(i + 1) * a.bs]
            x = prep(X[idx])
            flip = torch.rand(len(idx), generator=g) < 0.5
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
            loss = multilabel_loss(logits_of(x), Y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            run.append(loss.item())
        losses.append(round(float(np.mean(run)), 4))
    res = {"args": vars(a), "train_cpu_s": round(time.process_time() - t0, 1), "epoch_loss": losses}
    model.eval()
    with torch.no_grad():
        p = torch.sigmoid(torch.cat([logits_of(prep(X[i:i + 100])) for i in range(0, min(1000, a.n), 100)]))
        res["train_map"] = round(mean_average_precision(p.numpy(), Y[:min(1000, a.n)].numpy()), 3)
        for size in (64, 96):
            vi, vs, vt = toy_arrays(cache, "val", 300, size)
            VX = prep(torch.from_numpy(vi).permute(0, 3, 1, 2))
            pv = torch.sigmoid(logits_of(VX)).numpy()
            res[f"val{size}"] = {"map": round(mean_average_precision(pv, vt), 3),
                                 "ap_per_class": [round(average_precision(pv[:, k], vt[:, k]), 2) for k in range(5)]}
            for name, scales in (("1", (1.0,)), ("1,0.5", (1.0, 0.5)), ("4 scales", (1.0, 0.5, 1.5, 2.0))):
                conf = 0
                for i in range(0, len(VX), 50):
                    maps, _, _ = forward_cams(model, VX[i:i + 50], scales, True)
                    for j in range(maps.shape[0]):
                        labels = np.flatnonzero(vt[i + j]) + 1
                        conf = conf + threshold_confusions(finalize_cams(maps[j], labels).numpy(), labels,
                                                           vs[i + j], 5)
                inter = np.diagonal(conf, axis1=1, axis2=2).astype(float)
                miou = (inter / np.maximum(conf.sum(2) + conf.sum(1) - inter, 1)).mean(1)
                b = int(np.argmax(miou))
                res[f"val{size}"][f"cam_miou {name}"] = [round(float(miou[b]), 3), float(DEFAULT_THRESHOLDS[b])]
    print(json.dumps(res))


if __name__ == "__main__":
    main()
