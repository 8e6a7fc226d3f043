"""Training stops with exit 1 naming the epoch when the loss or a weight becomes NaN / inf,
and never leaves a NaN checkpoint as its output (issue 22)."""

from __future__ import annotations

import pytest
import torch

from conftest import run_ws_inproc
from wstools.train.loop import NonFiniteTraining, fit, make_optimizer

pytestmark = pytest.mark.cli


class _Points(torch.utils.data.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return {"index": i, "image": torch.tensor([float(i), 1.0]), "target": torch.zeros(1), "error": None}


def _run(step, epochs=3, on_epoch=None, set_epoch=None):
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    opt = make_optimizer([{"params": list(model.parameters())}], "sgd", lr=0.01)
    fit(model, _Points(), step=step, optimizer=opt, epochs=epochs, batch_size=4, on_epoch=on_epoch,
        set_epoch=set_epoch)
    return model


def test_a_nan_loss_stops_before_the_step_naming_the_epoch():
    seen, epoch_box = [], [0]

    def step(net, batch):
        loss = net(batch["image"]).pow(2).mean()
        return (loss * float("nan") if epoch_box[0] == 1 else loss), None

    with pytest.raises(NonFiniteTraining, match=r"epoch 2: the loss became nan at batch 1 of 2") as e:
        _run(step, on_epoch=lambda ep, rec, m, o: seen.append(ep), set_epoch=lambda ep: epoch_box.__setitem__(0, ep))
    assert e.value.epoch == 2 and seen == [0]      # epoch 1 was finished (and saved by on_epoch), epoch 2 not


def test_weights_that_become_inf_with_a_finite_loss_are_caught_at_the_epoch_end():
    calls = []

    def step(net, batch):
        loss = net(batch["image"]).pow(2).mean()
        calls.append(1)
        if len(calls) == 2:       # the epoch's last batch: its loss finite, the weights not
            with torch.no_grad():
                net.weight.fill_(float("inf"))
        return loss, None

    with pytest.raises(NonFiniteTraining, match=r"^epoch 1: weight weight became NaN or inf"):
        _run(step)


def test_cam_train_with_an_exploding_learning_rate_exits_1_and_writes_no_checkpoint(toy_dir, tmp_path):
    out = tmp_path / "nan.pt"
    r = run_ws_inproc("cam", "train", toy_dir / "train.json", "--arch", "tiny", "--crop", "64", "--epochs", "2",
                      "--batch-size", "8", "--lr", "1e30", "--threads", "1", "-o", out, expect=1)
    lines = [line for line in r.stderr.splitlines() if "failed" in line]
    assert len(lines) == 1 and "epoch 1: the loss became nan" in lines[0], r.stderr
    assert "no checkpoint written" in lines[0]
    assert "Traceback" not in r.stderr
    assert not out.exists() and not (tmp_path / "nan.last.pt").exists()
    assert not (tmp_path / "nan.log.jsonl").exists()


def test_finish_refuses_nan_weights(tmp_path):
    from wstools.cli.training import TrainingRun

    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.bias.fill_(float("nan"))
    run = TrainingRun(tmp_path / "m.pt", {"lr": 1.0}, kind="classifier", classes=["a"])
    with pytest.raises(NonFiniteTraining, match="weight bias is NaN or inf; no checkpoint written"):
        with run:
            run.finish({"arch": "x", "classes": ["a"]}, model, 1, {"loss": 1.0})
    assert not (tmp_path / "m.pt").exists()
