"""Peak response maps, ICN and proposal matching (Huang et al., Neurocomputing 2021) on `ws toy`
data, CPU: the ablation of Huang et al. Tables 1, 3, 4 on our data, and speed.

Runs the whole route through the `ws` commands: `ws toy` -> `ws cam train` (tiny, stride 8)
-> `ws propose` -> `ws cam peaks` -> `ws match` (plain score of Zhou et al. / rebalanced Eq. 5)
-> `ws icn train` (tiny encoder, pseudo labels = top-3 union) -> `ws icn infer` (1, 2, 3 steps)
-> `ws match` -> `ws eval instance` on the val images. Prints a markdown table: mAP^r at 0.25 /
0.5 / 0.75 and ABO per variant, and the ratio of each mAP^r@0.5 to the naive-PRM plain-score
baseline measured in the same run. Then speed: `ws cam peaks` seconds per image (tiny trained
classifier; an untrained resnet50 classifier on 10 images), `ws icn infer` seconds per
instance, and the peak RSS of peak back-propagation against the number of peaks per image.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/prm_toy.py --out /tmp/prm_bench
    # re-running with the same --out reuses finished steps (delete the folder to start over)

Oracle rows (also alone, in about a minute: ``--oracle-only``): the val images' GT instances
as response maps — each instance's binary mask (the paper's binary final map, Sect. 4.6),
peak at its innermost pixel — matched to the same proposals with `ws match` and scored by
`ws eval instance`: the ceiling of the matching step on these proposals, next to the
proposals' own ceiling (best proposal per target, `ws eval proposals`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

T = ["--device", "cpu", "--threads", "1"]
# `ws match` defaults before the issue-19 audit (contour band, soft first term, peak score)
BEFORE_FLAGS = ["--contour", "band", "--soft", "--det-score", "peak"]
BEFORE_AUDIT = "flags before the audit (`--contour band --soft --det-score peak`)"


def ws(*args, out=None, reuse=True):
    """Run one ws command (skipped when ``out`` exists and ``reuse``); returns (summary, seconds)."""
    if out is not None and reuse and Path(out).exists() and Path(str(out) + ".json").exists():
        d = json.loads(Path(str(out) + ".json").read_text())
        return d["summary"], d["seconds"]
    t0 = time.perf_counter()
    p = subprocess.run(["ws", *map(str, args), "-q"], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    sec = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"ws {' '.join(map(str, args))} failed:\n{p.stderr[-3000:]}")
    summary = json.loads(p.stdout.strip().splitlines()[-1])
    if out is not None:
        Path(str(out) + ".json").write_text(json.dumps({"summary": summary, "seconds": sec}))
    return summary, sec


def mem_probe(arch: str, n: int, batch: int, size: int) -> None:
    """Child process: peak back-propagation of ``n`` peaks (``batch`` at a time) on one
    ``size`` x ``size`` image; prints the process's peak RSS in MiB."""
    import numpy as np
    import torch

    from wstools.cam.model import CamNet
    from wstools.nn.backbones import build_backbone
    from wstools.prm.response import peak_response_maps

    torch.set_num_threads(1)
    net = CamNet(build_backbone(arch, 16 if arch != "tiny" else 8), 5).eval()
    x = torch.randn(3, size, size)
    with torch.no_grad():
        h, w = net.score_maps(x[None])[0].shape[-2:]
    rng = np.random.default_rng(0)
    cells = np.stack([rng.integers(1, 6, n), rng.integers(0, h, n), rng.integers(0, w, n)], 1)
    t0 = time.perf_counter()
    peak_response_maps(net, x, cells, batch)
    print(json.dumps({"rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "seconds": time.perf_counter() - t0}))


def write_oracle_responses(manifest_path, out) -> int:
    """A `responses` store of GT-shaped maps: per target instance of each image its binary
    mask, the peak at its innermost pixel (distance-transform maximum), score 1. Returns the
    number of instances."""
    import numpy as np
    from scipy import ndimage

    from wstools.io.dataset import load_instances, load_manifest
    from wstools.io.responses import write_response_group
    from wstools.io.store import create_store

    m = load_manifest(manifest_path)
    n = 0
    with create_store(out, "responses", classes=m.classes, params={"oracle": "gt-masks"}, dataset=m,
                      force=True) as store:
        for rec in m.images:
            inst = load_instances(m, rec)
            masks = inst.masks()
            peaks = []
            for mk, lab in zip(masks, inst.labels):
                y, x = np.unravel_index(np.argmax(ndimage.distance_transform_edt(mk)), mk.shape)
                peaks.append([lab, y, x, 1.0])
            with store.write_image(rec.id) as g:
                write_response_group(g, np.array(peaks, np.float32).reshape(-1, 4),
                                     masks.astype(np.float32).reshape(-1, rec.height, rec.width))
            n += len(peaks)
    return n


def oracle_rows(val, props, out):
    """(name, map_r, abo, detections) of GT-shaped responses matched by each score."""
    resp = out / "oracle_val.h5"
    if not resp.exists():
        write_oracle_responses(val, resp)
    rows = []
    for name, score, flags in (("oracle: GT masks as responses, rebalanced (Eq. 5)", "rebalanced", []),
                               (f"oracle: GT masks as responses, rebalanced, {BEFORE_AUDIT}", "rebalanced",
                                BEFORE_FLAGS),
                               ("oracle: GT masks as responses, rebalanced, `--contour band`", "rebalanced",
                                ["--contour", "band"]),
                               ("oracle: GT masks as responses, plain score", "plain", [])):
        res = out / f"oracle_{score}{''.join(flags).replace('-', '_')}.json"
        ws("match", val, "--responses", resp, "--proposals", props, "--score", score, *flags, "--force", "-o", res,
           out=res)
        ev, _ = ws("eval", "instance", res, "--gt", val, "--force")
        rows.append((name, ev["map_r"], ev["abo"], ev["detections"]))
    return rows


def print_rows(rows, base):
    print("| variant | mAP^r@0.25 | mAP^r@0.5 | mAP^r@0.75 | ABO | detections | mAP^r@0.5 / baseline |")
    print("|---|---|---|---|---|---|---|")
    for name, mr, abo, n in rows:
        ratio = f"{mr['0.5'] / base:.2f}" if base == base else "-"
        print(f"| {name} | {mr['0.25']:.3f} | {mr['0.5']:.3f} | {mr['0.75']:.3f} | {abo:.3f} | {n} | {ratio} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/tmp/prm_bench")
    ap.add_argument("--train", type=int, default=3000, help="classifier training images")
    ap.add_argument("--icn-images", type=int, default=300, help="training images whose PRMs train the ICN")
    ap.add_argument("--val", type=int, default=50)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--cls-epochs", type=int, default=8)
    ap.add_argument("--icn-epochs", type=int, default=6)
    ap.add_argument("--icn-size", type=int, default=64)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--oracle-only", action="store_true",
                    help="only the toy val set, its proposals and the oracle rows (about a minute)")
    ap.add_argument("--mem-probe", nargs=4, metavar=("ARCH", "N", "BATCH", "SIZE"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.mem_probe:
        mem_probe(a.mem_probe[0], int(a.mem_probe[1]), int(a.mem_probe[2]), int(a.mem_probe[3]))
        return
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    toy = out / "toy"
    ws("toy", toy, "--train", 2 if a.oracle_only else a.train, "--val", a.val, "--size", a.size, "--seed", 1,
       "--force", out=toy / ("oracle_train.json" if a.oracle_only else "train.json"))
    val = toy / "val.json"
    if a.oracle_only:
        ws("propose", val, "--force", "-o", out / "props_val.h5", out=out / "props_val.h5")
        ep, _ = ws("eval", "proposals", out / "props_val.h5", "--gt", val)
        c = ep["mask"]["by_n"]["all"]
        print(f"\ntoy: {a.val} val images of {a.size} px (seed 1); proposals `ws propose` defaults: ABO {c['abo']:.3f}, "
              f"recall@0.5 {c['recall@0.5']:.3f} over {ep['mask']['objects']} target instances\n")
        print_rows(oracle_rows(val, out / "props_val.h5", out), float("nan"))
        return
    # the ICN's training images: the first --icn-images of the classifier's training set
    m = json.loads((toy / "train.json").read_text())
    sub = toy / "icn_train.json"
    if not sub.exists():
        m["images"] = m["images"][:a.icn_images]
        sub.write_text(json.dumps(m))
    cls = out / "cls.pt"
    s, t_cls = ws("cam", "train", toy / "train.json", "--val", val, "--arch", "tiny", "--stride", 8, "--optimizer",
                  "adam", "--lr", 0.002, "--head-lr-mult", 1, "--weight-decay", 0, "--crop", a.size, "--scales", "1,1",
                  "--batch-size", 16, "--epochs", a.cls_epochs, *T, "--force", "-o", cls, out=cls)
    val_map = s["metrics"].get("val_map")
    for name, man in (("train", sub), ("val", val)):
        ws("propose", man, "--force", "-o", out / f"props_{name}.h5", out=out / f"props_{name}.h5")
    s_pk, _ = ws("cam", "peaks", val, "--model", cls, *T, "--force", "-o", out / "prm_val.h5", out=out / "prm_val.h5")
    ws("cam", "peaks", sub, "--model", cls, *T, "--force", "-o", out / "prm_train.h5", out=out / "prm_train.h5")
    s_icn, t_icn = ws("icn", "train", sub, "--responses", out / "prm_train.h5", "--proposals", out / "props_train.h5",
                      "--encoder", "tiny", "--size", a.icn_size, "--epochs", a.icn_epochs, "--decay-every", 0,
                      "--batch-size", 8, *T, "--force", "-o", out / "icn.pt", out=out / "icn.pt")
    ws("cam", "peaks", val, "--model", cls, "--gradient", "positive", *T, "--force", "-o", out / "prm_pos_val.h5",
       out=out / "prm_pos_val.h5")
    variants = [("naive PRM, plain score (Zhou et al.)", out / "prm_val.h5", "plain", []),
                ("naive PRM, rebalanced score (Eq. 5)", out / "prm_val.h5", "rebalanced", []),
                (f"naive PRM, rebalanced, {BEFORE_AUDIT}", out / "prm_val.h5", "rebalanced", BEFORE_FLAGS),
                ("naive PRM, rebalanced, `--det-score peak`", out / "prm_val.h5", "rebalanced",
                 ["--det-score", "peak"]),
                ("naive PRM, rebalanced, `--nms-on mask`", out / "prm_val.h5", "rebalanced", ["--nms-on", "mask"]),
                ("naive PRM, rebalanced, `--nms-on mask-all --nms 0.3` (Zhou et al.'s code)", out / "prm_val.h5",
                 "rebalanced", ["--nms-on", "mask-all", "--nms", "0.3"]),
                ("naive PRM `--gradient positive`, rebalanced", out / "prm_pos_val.h5", "rebalanced", []),
                ("naive PRM `--gradient positive`, plain score", out / "prm_pos_val.h5", "plain", [])]
    infer_speed = {}
    for k in (1, 2, 3):
        e = out / f"enh{k}_val.h5"
        s, _ = ws("icn", "infer", val, "--responses", out / "prm_val.h5", "--model", out / "icn.pt", "--steps", k, *T,
                  "--force", "-o", e, out=e)
        infer_speed[k] = s["seconds_per_instance"]
        variants.append((f"ICN-enhanced PRM, {k} step{'s' if k > 1 else ''}, rebalanced", e, "rebalanced", []))
    variants.append((f"ICN-enhanced PRM, 3 steps, rebalanced, {BEFORE_AUDIT}", out / "enh3_val.h5", "rebalanced",
                     BEFORE_FLAGS))
    # the ICN trained without random crops (`--crop-scale 1`, the default before the audit)
    ws("icn", "train", sub, "--responses", out / "prm_train.h5", "--proposals", out / "props_train.h5", "--encoder",
       "tiny", "--size", a.icn_size, "--epochs", a.icn_epochs, "--decay-every", 0, "--batch-size", 8, "--crop-scale", 1,
       *T, "--force", "-o", out / "icn_nocrop.pt", out=out / "icn_nocrop.pt")
    for k in (1, 3):
        e = out / f"enh{k}_nocrop_val.h5"
        ws("icn", "infer", val, "--responses", out / "prm_val.h5", "--model", out / "icn_nocrop.pt", "--steps", k, *T,
           "--force", "-o", e, out=e)
        variants.append((f"ICN trained `--crop-scale 1` (no crop), {k} step{'s' if k > 1 else ''}, rebalanced", e,
                         "rebalanced", []))
    variants.append(("ICN-enhanced PRM, 3 steps, plain score", out / "enh3_val.h5", "plain", []))
    rows = []
    for i, (name, resp, score, flags) in enumerate(variants):
        res = out / f"res{i}.json"
        ws("match", val, "--responses", resp, "--proposals", out / "props_val.h5", "--score", score, *flags, "--force",
           "-o", res, out=res)
        ev, _ = ws("eval", "instance", res, "--gt", val, "--force")
        rows.append((name, ev["map_r"], ev["abo"], ev["detections"]))
    ep, _ = ws("eval", "proposals", out / "props_val.h5", "--gt", val)
    ceiling = ep["mask"]["by_n"]["all"]
    base = rows[0][1]["0.5"] or float("nan")
    print(f"\ntoy: {a.train} train / {a.val} val images of {a.size} px (seed 1); classifier `--arch tiny --stride 8` "
          f"{a.cls_epochs} epochs (val mAP {val_map:.3f}, {t_cls:.0f} s); ICN tiny trained on "
          f"{s_icn['instances']} instances of {a.icn_images} training images, {a.icn_epochs} epochs at "
          f"{a.icn_size} px ({t_icn:.0f} s); {s_pk['peaks']} peaks on the val images; proposals: ABO "
          f"{ceiling['abo']:.3f} over {ep['mask']['objects']} target instances (the ceiling of any matching)\n")
    print_rows(rows + oracle_rows(val, out / "props_val.h5", out), base)
    if a.skip_speed:
        return
    # speed ----------------------------------------------------------------------------------
    import torch

    from wstools.cam.model import CamNet
    from wstools.io.checkpoint import save_checkpoint
    from wstools.nn.backbones import build_backbone

    r50 = out / "cls_r50.pt"
    if not r50.exists():
        net = CamNet(build_backbone("resnet50", 16), 5)
        save_checkpoint(r50, {"arch": "resnet50", "stride": 16, "classes": m["classes"], "gray": False,
                              "state_dict": net.state_dict()}, kind="classifier")
    v10 = toy / "val10.json"
    mv = json.loads(val.read_text())
    mv["images"] = mv["images"][:10]
    v10.write_text(json.dumps(mv))
    s50, _ = ws("cam", "peaks", v10, "--model", r50, "--classes-from", "tags", *T, "--force", "-o", out / "prm_r50.h5",
                reuse=False)
    print("\n| speed (CPU, 1 thread) | value |\n|---|---|")
    print(f"| `ws cam peaks`, tiny classifier, {a.size} px | {s_pk['seconds_per_image']:.3f} s/image "
          f"({s_pk['peaks'] / max(s_pk['images'], 1):.1f} peaks/image) |")
    print(f"| `ws cam peaks`, resnet50 classifier (untrained), {a.size} px | {s50['seconds_per_image']:.3f} s/image "
          f"({s50['peaks'] / max(s50['images'], 1):.1f} peaks/image) |")
    for k, v in infer_speed.items():
        print(f"| `ws icn infer` tiny, {k} step{'s' if k > 1 else ''} | {v:.4f} s/instance |")
    print("\n| peaks per image (320 px image, --peak-batch 8) | tiny: peak RSS MiB | tiny: s | resnet50: peak RSS MiB "
          "| resnet50: s |\n|---|---|---|---|---|")
    for n in (1, 8, 32):
        cells = []
        for arch in ("tiny", "resnet50"):
            p = subprocess.run([sys.executable, __file__, "--mem-probe", arch, str(n), "8", "320"], capture_output=True,
                               text=True, env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
            d = json.loads(p.stdout.strip().splitlines()[-1])
            cells += [f"{d['rss_mib']:.0f}", f"{d['seconds']:.2f}"]
        print(f"| {n} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
