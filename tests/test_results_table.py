"""benchmarks/results.py: mean +- std over seeds, and ablations / ceilings judged against the spread."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import results  # noqa: E402

sys.path.pop(0)


def _run(folder: Path, seed: int, dsrg_on: float, dsrg_off: float, full: float, dsrg_val: float):
    def put(recipe, name, summary):
        (folder / recipe).mkdir(parents=True, exist_ok=True)
        (folder / recipe / f"{name}.json").write_text(json.dumps(summary) + "\n")

    put("dsrg", "eval_semantic_val", {"miou": dsrg_on})
    put("dsrg", "ablation_off", {"miou": dsrg_off})
    put("dsrg", "eval_cues_train", {"miou": 0.8, "labeled_fraction": 0.5})
    put("full", "eval_semantic_val", {"miou": full})
    (folder / "dsrg" / "times.tsv").write_text("train-seg \t10.5\n")
    (folder / "run.json").write_text(json.dumps({"caption": "test run", "seed": seed}) + "\n")
    assert dsrg_val == dsrg_on


def test_one_run_has_no_spread(tmp_path):
    _run(tmp_path, 0, 0.5, 0.4, 0.9, 0.5)
    text = results.report([tmp_path])
    assert "One run (seeds: 0)" in text
    assert "| DSRG (CVPR 2018) | - | 0.800 (0.50) | - | - | 0.500 | 0.56 |" in text
    assert "+0.100, one seed: no spread" in text
    assert "above (one seed: no spread)" in text


def test_three_runs_mean_std_and_verdicts(tmp_path):
    folders = []
    # with - without: +0.10, +0.02, -0.06 -> mean +0.02, far below the spread: level
    for seed, (on, off) in enumerate([(0.5, 0.4), (0.52, 0.5), (0.48, 0.54)]):
        f = tmp_path / f"seed{seed}"
        _run(f, seed, on, off, 0.9 + 0.01 * seed, on)
        folders.append(f)
    text = results.report(folders)
    assert "Mean ± sample standard deviation over 3 runs (seeds: 0, 1, 2)" in text
    assert "0.500 ± 0.020" in text                       # DSRG val: mean 0.5, stdev 0.02
    assert "| level (+0.020," in text
    assert "per seed +0.100, +0.020, -0.060) |" in text # the reversal on seed 2 is shown
    assert "above every weak row beyond the spread; per seed +0.400, +0.390, +0.440 over DSRG" in text
    # a clear gain is "holds"
    for seed, f in enumerate(folders):
        _run(f, seed, 0.6 + 0.01 * seed, 0.4, 0.9, 0.6 + 0.01 * seed)
    assert "| holds (+0.210," in results.report(folders)


def test_a_broken_metric_is_refused(tmp_path):
    _run(tmp_path, 0, 0.5, 0.4, 0.9, 0.5)
    (tmp_path / "dsrg" / "eval_semantic_val.json").write_text(json.dumps({"miou": None}))
    with pytest.raises(SystemExit, match="not a finite number"):
        results.report([tmp_path])


def test_ceiling_checks_every_weak_row_not_only_the_best(tmp_path):
    """Full 0.60 +- 0.01 beats DSRG (0.50 +- 0.01) beyond the spread, but not CAM only, whose
    lower mean (0.45) has a spread (0.20) wider than its margin (0.15)."""
    folders = []
    for seed, (full, dsrg, cam) in enumerate([(0.59, 0.49, 0.25), (0.60, 0.50, 0.45), (0.61, 0.51, 0.65)]):
        f = tmp_path / f"seed{seed}"
        _run(f, seed, dsrg, 0.4, full, dsrg)
        (f / "cam").mkdir()
        (f / "cam" / "eval_semantic_val.json").write_text(json.dumps({"miou": cam}) + "\n")
        for recipe, ap in (("full", 0.3 + 0.1 * seed), ("dsrg", 0.1)):
            (f / recipe / "eval_instance_val.json").write_text(
                json.dumps({"coco": {"AP50": ap, "AP75": 0.0}, "abo": 0.5}) + "\n")
        folders.append(f)
    text = results.report(folders)
    semantic = next(line for line in text.splitlines() if line.startswith("Semantic ceiling"))
    assert "vs the best weak row (DSRG (CVPR 2018), 0.500 ± 0.010): margin +0.100" in semantic
    assert "not above every weak row beyond the spread (CAM only" in semantic
    assert "+0.150, spread 0.200" in semantic and "DSRG (CVPR 2018) +0.100" not in semantic
    instance = next(line for line in text.splitlines() if line.startswith("Instance ceiling"))
    assert "val AP50 0.400 ± 0.100" in instance and "above every weak row beyond the spread" in instance
    assert "per seed +0.200, +0.300, +0.400 over DSRG" in instance
