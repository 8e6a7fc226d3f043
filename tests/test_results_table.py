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
    assert "above beyond the spread" in text             # 0.91 vs 0.50
    # a clear gain is "holds"
    for seed, f in enumerate(folders):
        _run(f, seed, 0.6 + 0.01 * seed, 0.4, 0.9, 0.6 + 0.01 * seed)
    assert "| holds (+0.210," in results.report(folders)


def test_a_broken_metric_is_refused(tmp_path):
    _run(tmp_path, 0, 0.5, 0.4, 0.9, 0.5)
    (tmp_path / "dsrg" / "eval_semantic_val.json").write_text(json.dumps({"miou": None}))
    with pytest.raises(SystemExit, match="not a finite number"):
        results.report([tmp_path])
