"""DSRG's ablation from oracle seeds: does growing + retraining beat the seeding loss alone when
the seeds are near perfect?

The results table's DSRG ablation (growing + retraining vs the balanced seeding loss alone, val
mIoU) fails over three seeds. That alone does not say whether the growing and retraining steps
fail or the classifier's seeds give them nothing to work with. This script trains the
recipe's two networks of each examples.sh work folder once more, from the seeds of *oracle* CAMs
(``ws oracle cams``: blurred GT masks, through DSRG's own seed rules; examples.sh writes them as
``OUT/dsrg/seeds_oracle.h5``), with every other flag exactly as the recipe ran it (read from the
command each of its checkpoints records), and prints both pairs side by side, mean +- sample
standard deviation over the folders, with results.py's verdict (level unless the difference is
larger than the spread):

    bash examples.sh --full                        # or: examples.sh dsrg full --seeds 0,1,2
    python benchmarks/dsrg_oracle.py OUT/seed0 OUT/seed1 OUT/seed2 --work /tmp/dsrg_oracle

Per folder it runs two ``ws train-seg``, two ``ws predict --crf`` and three ``ws eval semantic``
(the val predictions and the stage-1 labels of the training images; summaries kept as
``WORK/*/eval_*.json``), a few minutes on 2 cores;
a network already in ``--work`` that the same command wrote is reused.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import Stat, metric, verdict  # noqa: E402

NETWORKS = ("deeplab", "deeplab_seed_only")   # examples.sh's names: with and without growing + retraining


def ws(*args) -> str:
    """Run ``ws ARGS``; its stdout (the JSON summary line). A failure ends the script with its stderr."""
    proc = subprocess.run(["ws", *map(str, args)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"ws {' '.join(map(str, args[:2]))} failed:\n{proc.stderr.strip()}")
    return proc.stdout


def evaluate(work: Path, name: str, labels: Path, gt: Path) -> float:
    """``ws eval semantic LABELS --gt GT``, its summary saved as ``work/NAME.json`` (as examples.sh
    saves its own); the mIoU."""
    (work / f"{name}.json").write_text(ws("eval", "semantic", labels, "--gt", gt))
    return metric(work, name, "miou|best_miou")


def device_of(argv: list[str]) -> str:
    """The ``--device`` of a recorded command (cpu when it has none)."""
    return argv[argv.index("--device") + 1] if "--device" in argv else "cpu"


def scored(work: Path, name: str, model: Path, val: Path, device: str, crf: bool = True) -> float:
    """``ws predict VAL --model MODEL [--crf]`` into ``work/NAME_val.h5``, scored (``eval_NAME_val``); the mIoU."""
    pred = work / f"{name}_val.h5"
    ws("predict", val, "--model", model, "--device", device, *(["--crf"] if crf else []), "-o", pred, "--force")
    return evaluate(work, f"eval_{name}_val", pred, val)


def checkpoint_info(checkpoint: Path) -> dict:
    """``ws info --json`` of ``checkpoint`` (its command, its recorded arguments as ``params``, ...)."""
    if not checkpoint.exists():
        raise SystemExit(f"{checkpoint}: missing (run examples.sh's dsrg recipe into this folder first)")
    return json.loads(ws("info", checkpoint, "--json"))


def recorded_command(checkpoint: Path, info: dict | None = None) -> list[str]:
    """The ``ws train-seg`` argument list that wrote ``checkpoint`` (from ``info``, its
    :func:`checkpoint_info`, when the caller has it)."""
    argv = shlex.split((info or checkpoint_info(checkpoint))["command"])
    if argv[:2] != ["ws", "train-seg"]:
        raise SystemExit(f"{checkpoint}: written by {' '.join(argv[:2])!r}, not ws train-seg")
    return argv[1:]


def replace(argv: list[str], flag: str, value) -> list[str]:
    if flag not in argv:
        raise SystemExit(f"the recorded command has no {flag}: {' '.join(argv)}")
    i = argv.index(flag)
    return argv[:i + 1] + [str(value)] + argv[i + 2:]


def run_folder(folder: Path, work: Path) -> dict:
    """Both networks of ``folder``'s DSRG recipe retrained from its oracle seeds, into ``work``."""
    dsrg = folder / "dsrg"
    seeds = dsrg / "seeds_oracle.h5"
    if not seeds.exists():
        raise SystemExit(f"{seeds}: missing (examples.sh's dsrg recipe writes it)")
    work.mkdir(parents=True, exist_ok=True)
    out, t0 = {}, time.time()
    for name in NETWORKS:
        argv = recorded_command(dsrg / f"{name}.pt")
        model = work / f"{name}.pt"
        argv = replace(replace(argv, "--labels", seeds), "-o", model)
        if not (model.exists() and recorded_command(model) == argv):   # a finished earlier run is reused
            ws(*argv)
        train = Path(argv[1])
        out[name] = scored(work, name, model, train.with_name("val.json"), device_of(argv))
        if name == "deeplab":
            out["stage1_labels"] = evaluate(work, "eval_stage1_labels_train", work / "deeplab.stage1_labels.h5", train)
    out["seconds"] = time.time() - t0
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", type=Path, nargs="+", help="examples.sh work folders, one per seed")
    ap.add_argument("--work", type=Path, required=True, help="where the oracle-seed networks go")
    a = ap.parse_args()
    real = {"deeplab": [], "deeplab_seed_only": [], "stage1_labels": []}
    oracle = {k: [] for k in real}
    full = []
    for i, folder in enumerate(a.folders):
        d = folder / "dsrg"
        real["deeplab"].append(metric(d, "eval_semantic_val", "miou|best_miou"))
        real["deeplab_seed_only"].append(metric(d, "ablation_off", "miou|best_miou"))
        real["stage1_labels"].append(metric(d, "eval_pseudo_train", "miou|best_miou"))
        full.append(metric(folder / "full", "eval_semantic_val", "miou|best_miou"))
        r = run_folder(folder, a.work / f"{i}_{folder.name}")
        for k in oracle:
            oracle[k].append(r[k])
        print(f"{folder}: oracle seeds: growing + retraining {r['deeplab']:.3f}, seeding loss alone "
              f"{r['deeplab_seed_only']:.3f}, stage-1 labels {r['stage1_labels']:.3f} ({r['seconds']:.0f} s)",
              file=sys.stderr)

    def row(title, figures):
        on, off = Stat(figures["deeplab"]), Stat(figures["deeplab_seed_only"])
        diffs = [x - y for x, y in zip(figures["deeplab"], figures["deeplab_seed_only"])
                 if x is not None and y is not None]
        return (f"| {title} | {Stat(figures['stage1_labels']).fmt()} | {on.fmt()} | {off.fmt()} | "
                f"{verdict(on, off, diffs)} |")

    n = len(a.folders)
    print(f"DSRG's ablation, val mIoU, {'mean ± sample standard deviation over ' + str(n) + ' runs' if n > 1 else 'one run'}"
          f" ({', '.join(str(f) for f in a.folders)}):\n")
    print("| seeds from | stage-1 labels mIoU (train) | growing + retraining (val) | seeding loss alone (val) "
          "| with - without |")
    print("|---|---|---|---|---|")
    print(row("the classifier's CAMs (examples.sh)", real))
    print(row("oracle CAMs (blurred GT masks)", oracle))
    print(f"\nfully supervised (GT labels), the same network: {Stat(full).fmt()} val mIoU")


if __name__ == "__main__":
    main()
