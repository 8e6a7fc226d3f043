"""benchmarks/val_size.py: the larger val set is the run's own val set extended, or it is refused."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import run_ws

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import val_size  # noqa: E402

sys.path.pop(0)


def _run_folder(tmp_path: Path, seed: int, recorded_seed: int) -> Path:
    folder = tmp_path / "run"
    run_ws("toy", folder / "toy", "--train", 4, "--val", 3, "--size", 48, "--seed", seed)
    (folder / "run.json").write_text(json.dumps({"seed": recorded_seed}) + "\n")
    return folder


def test_larger_val_starts_with_the_runs_val_images(tmp_path):
    folder = _run_folder(tmp_path, 5, 5)
    val = val_size.larger_val(folder, 7, tmp_path / "work")
    images = json.loads(val.read_text())["images"]
    small = json.loads((folder / "toy" / "val.json").read_text())["images"]
    assert len(images) == 7 and [i["id"] for i in images[:3]] == [i["id"] for i in small]


def test_larger_val_of_other_toy_data_is_refused(tmp_path):
    folder = _run_folder(tmp_path, 5, 6)       # run.json names another seed than its toy data's
    with pytest.raises(SystemExit, match="differs from"):
        val_size.larger_val(folder, 7, tmp_path / "work")


def test_a_run_without_a_network_figure_prints_a_dash(capsys, monkeypatch, tmp_path):
    # a run made before examples.sh scored DSRG's stage 1: its 40-image cells are dashes, the rest is judged
    runs = [{"small": [0.3, 0.5, None, 0.52, 0.6], "large": [0.3, 0.5, 0.52, 0.51, 0.6], "seconds": 1.0}] * 3
    monkeypatch.setattr(val_size, "run_folder", lambda folder, n, work: runs[0])
    monkeypatch.setattr(sys, "argv", ["val_size.py", "a", "b", "c", "--work", str(tmp_path)])
    val_size.main()
    out = capsys.readouterr().out
    assert "| DSRG: growing (stage 1) | - | 0.520 ± 0.000 |" in out
    assert "| DSRG growing (stage 1) vs seeding loss alone | - | " in out
