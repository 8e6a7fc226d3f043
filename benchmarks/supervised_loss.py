"""The loss and test-time CRF of the fully supervised reference and of DSRG's retraining, measured
on examples.sh's own work folders: which training of the tiny network is the ceiling, and
whether DSRG's stage 2 ("in a fully-supervised way", Sect. 4.4) should train like it.

For each examples.sh work folder (one per seed) this script repeats two trainings of the
recipes with every flag as recorded in their checkpoints (``ws info --json``) except the loss:

- the fully supervised reference (``OUT/full/deeplab.pt``, GT label maps) with ``--loss ce`` and
  with ``--loss balanced-seed`` (DSRG Eq. 1 on dense labels: fore- and background pixels
  normalised separately; background is 86 % of a ``ws toy`` image), each predicted on val
  without and with ``ws predict --crf``;
- DSRG's second stage on the recipe's stage-1 labels (``OUT/dsrg/deeplab.stage1_labels.h5``)
  with each of the two losses — the flags of ``--retrain``'s stage 2 (the recorded command less
  the stage-1 flags ``--loss --boundary-weight --grow --grow-crf --theta-fg --theta-bg
  --retrain --retrain-loss --retrain-init``, with ``--init`` the stage-1 network where the
  recipe's stage 2 started from it), which is the network examples.sh's DSRG row tests —
  predicted with ``--crf`` as the recipe does.

It prints val mIoU as mean +- sample standard deviation over the folders and, with results.py's
rule, whether balanced-seed beats ce beyond the spread:

    bash examples.sh --full
    python benchmarks/supervised_loss.py OUT/seed0 OUT/seed1 OUT/seed2 --work /tmp/supervised_loss

Per folder: four ``ws train-seg`` (a network whose recorded command equals the one wanted,
the recipe's own included, is reused), six ``ws predict``, six ``ws eval semantic``
(summaries kept as ``WORK/*/eval_*.json``); a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dsrg_oracle import checkpoint_info, device_of, recorded_command, replace, scored, ws  # noqa: E402
from results import Stat, metric, verdict  # noqa: E402

LOSSES = ("ce", "balanced-seed")
STAGE1_FLAGS = {"--loss": 1, "--boundary-weight": 1, "--grow": 0, "--grow-crf": 0, "--theta-fg": 1,
                "--theta-bg": 1, "--retrain": 0, "--retrain-loss": 1, "--retrain-init": 1}   # flag -> number of values


def stage2_command(recorded: list[str], start: str | None, labels: Path) -> list[str]:
    """``--retrain``'s second stage as one ``ws train-seg``: the recorded command less the stage-1
    flags, on ``labels``, starting (``--init``) from the network stage 2 started from (``start``,
    the checkpoint's recorded stage-1 network; None: the recorded --init, a fresh network)."""
    argv = replace(without(recorded, STAGE1_FLAGS), "--labels", labels)
    return replace(argv, "--init", start) if start else argv


def without(argv: list[str], flags: dict) -> list[str]:
    """``argv`` less each flag of ``flags`` and its values."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] in flags:
            i += 1 + flags[argv[i]]
        else:
            out.append(argv[i])
            i += 1
    return out


def with_loss(argv: list[str], loss: str) -> list[str]:
    return replace(argv, "--loss", loss) if "--loss" in argv else [*argv, "--loss", loss]


def train(argv: list[str], model: Path, reuse: Path | None = None) -> Path:
    """The network ``argv`` trains, written to ``model`` — or ``reuse`` / an earlier ``model`` when
    the command that wrote it is ``argv``."""
    for existing in (reuse, model):
        if existing is not None and existing.exists() and \
                replace(recorded_command(existing), "-o", model) == replace(argv, "-o", model):
            return existing
    ws(*replace(argv, "-o", model))
    return model


def run_folder(folder: Path, work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    out, t0 = {}, time.time()
    full = recorded_command(folder / "full" / "deeplab.pt")
    device = device_of(full)
    val = Path(full[1]).with_name("val.json")
    for loss in LOSSES:
        model = train(with_loss(full, loss), work / f"full_{loss}.pt", reuse=folder / "full" / "deeplab.pt")
        for crf in (False, True):
            out[("full", loss, crf)] = scored(work, f"full_{loss}{'_crf' if crf else ''}", model, val, device, crf)
    labels = folder / "dsrg" / "deeplab.stage1_labels.h5"
    if not labels.exists():
        raise SystemExit(f"{labels}: missing (examples.sh's dsrg recipe writes it)")
    recipe = folder / "dsrg" / "deeplab.pt"
    info = checkpoint_info(recipe)
    recorded = recorded_command(recipe, info)
    stage2 = stage2_command(recorded, info["params"].get("start"), labels)
    out["recipe_loss"] = recorded[recorded.index("--retrain-loss") + 1] if "--retrain-loss" in recorded else "ce"
    for loss in LOSSES:
        model = train(with_loss(stage2, loss), work / f"dsrg_stage2_{loss}.pt")
        out[("dsrg", loss, True)] = scored(work, f"dsrg_stage2_{loss}_crf", model, val, device, True)
    out["recipe"] = metric(folder / "dsrg", "eval_semantic_val", "miou|best_miou")
    out["seconds"] = time.time() - t0
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", type=Path, nargs="+", help="examples.sh work folders, one per seed")
    ap.add_argument("--work", type=Path, required=True, help="where the retrained networks go")
    a = ap.parse_args()
    runs = []
    for i, folder in enumerate(a.folders):
        r = run_folder(folder, a.work / f"{i}_{folder.name}")
        runs.append(r)
        print(f"{folder}: " + ", ".join(f"{k[0]} {k[1]}{' +crf' if k[2] else ''} {v:.3f}"
                                        for k, v in r.items() if isinstance(k, tuple)) + f" ({r['seconds']:.0f} s)",
              file=sys.stderr)

    def stat(key):
        return Stat([r[key] for r in runs])

    def compare(on, off):
        diffs = [r[on] - r[off] for r in runs]
        return verdict(stat(on), stat(off), diffs)

    n = len(runs)
    print(f"val mIoU, {'mean ± sample standard deviation over ' + str(n) + ' runs' if n > 1 else 'one run'}"
          f" ({', '.join(str(f) for f in a.folders)}):\n")
    print("| network | labels | loss | argmax | ws predict --crf |")
    print("|---|---|---|---|---|")
    for loss in LOSSES:
        print(f"| fully supervised | GT label maps | {loss} | {stat(('full', loss, False)).fmt()} | "
              f"{stat(('full', loss, True)).fmt()} |")
    for loss in LOSSES:
        print(f"| DSRG stage 2 | its stage-1 labels | {loss} | - | {stat(('dsrg', loss, True)).fmt()} |")
    full_loss = compare(('full', 'balanced-seed', True), ('full', 'ce', True))
    dsrg_loss = compare(('dsrg', 'balanced-seed', True), ('dsrg', 'ce', True))
    print(f"\nbalanced-seed - ce, with --crf: fully supervised {full_loss}; DSRG stage 2 {dsrg_loss}")
    recipe_losses = sorted({r["recipe_loss"] for r in runs})
    print(f"(DSRG's row in examples.sh's table, the same stage 2 inside --retrain, --retrain-loss "
          f"{' / '.join(recipe_losses)}: {stat('recipe').fmt()})")
    print(f"--crf - argmax, fully supervised: ce {compare(('full', 'ce', True), ('full', 'ce', False))}; "
          f"balanced-seed {compare(('full', 'balanced-seed', True), ('full', 'balanced-seed', False))}")


if __name__ == "__main__":
    main()
