"""benchmarks/supervised_loss.py: the stage-2 command it rebuilds from a recorded ``--retrain`` command."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import supervised_loss  # noqa: E402

sys.path.pop(0)

RECORDED = ["train-seg", "t.json", "--labels", "seeds.h5", "--init", "cls.pt", "--epochs", "27", "--loss",
            "balanced-seed", "--boundary-weight", "1", "--grow", "--grow-crf", "--theta-fg", "0.8", "--retrain",
            "--retrain-loss", "ce", "--device", "cpu", "--seed", "0", "-o", "d.pt", "--force"]


def test_stage2_command_drops_every_stage1_flag_and_its_value():
    stage2 = supervised_loss.without(RECORDED, supervised_loss.STAGE1_FLAGS)
    assert stage2 == ["train-seg", "t.json", "--labels", "seeds.h5", "--init", "cls.pt", "--epochs", "27",
                      "--device", "cpu", "--seed", "0", "-o", "d.pt", "--force"]


def test_with_loss_replaces_or_adds_the_loss():
    assert supervised_loss.with_loss(["train-seg", "--loss", "ce", "-o", "x"], "balanced-seed") == \
        ["train-seg", "--loss", "balanced-seed", "-o", "x"]
    assert supervised_loss.with_loss(["train-seg", "-o", "x"], "ce") == ["train-seg", "-o", "x", "--loss", "ce"]


def test_stage2_starts_from_the_stage1_network_when_the_recipe_did():
    base = ["train-seg", "t.json", "--labels", "l.h5", "--init", "cls.pt", "-o", "d.pt"]
    assert supervised_loss.stage2_command([*base, "--retrain-init", "stage1"], "/w/d.stage1.pt", Path("s1.h5")) == \
        ["train-seg", "t.json", "--labels", "s1.h5", "--init", "/w/d.stage1.pt", "-o", "d.pt"]
    assert supervised_loss.stage2_command([*base, "--retrain-init", "init"], None, Path("s1.h5")) == \
        ["train-seg", "t.json", "--labels", "s1.h5", "--init", "cls.pt", "-o", "d.pt"]
