"""``io.checkpoint.load_model``: the one loader of a trained network (classifier, MIL,
segmentation, ICN) that every command uses (issue 21)."""

from __future__ import annotations

import pytest
import torch

from wstools.cam.model import CamNet
from wstools.errors import InputError
from wstools.features.mil import MilNet
from wstools.io.checkpoint import load_model, save_checkpoint
from wstools.nn.backbones import build_backbone
from wstools.prm.icn import ICN
from wstools.seg.models import build_semantic

pytestmark = pytest.mark.unit

CLASSES = ["disc", "square", "triangle"]


def _save(path, kind, model, **extra):
    save_checkpoint(path, {"classes": CLASSES, "state_dict": model.state_dict(), "args": {}, "metrics": {},
                           "epoch": 1, **extra}, kind=kind)
    return path


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("kind", ["classifier", "mil", "segmentation", "icn"])
def test_each_kind_comes_back_with_its_weights_in_eval_mode(tmp_path, kind):
    torch.manual_seed(0)
    if kind == "classifier":
        net, extra = CamNet(build_backbone("tiny", 8), 3), {"arch": "tiny", "stride": 8, "gray": False}
    elif kind == "mil":
        net, extra = MilNet(build_backbone("tiny", 16), 3, 7), {"arch": "tiny", "stride": 16, "roi_size": 7}
    elif kind == "segmentation":
        net, extra = build_semantic("tiny", 4, 8), {"arch": "tiny", "stride": 8, "task": "semantic"}
    else:
        net, extra = ICN("tiny"), {"arch": "tiny"}
    path = _save(tmp_path / f"{kind}.pt", kind, net, **extra)
    model, ckpt = load_model(path, kind, CLASSES)
    assert type(model) is type(net) and not model.training
    assert ckpt["ws_kind"] == kind
    assert _same_weights(model, net)


def test_other_classes_another_kind_and_weights_that_do_not_fit_are_refused(tmp_path):
    net = CamNet(build_backbone("tiny", 8), 3)
    path = _save(tmp_path / "cls.pt", "classifier", net, arch="tiny", stride=8, gray=False)
    with pytest.raises(InputError, match=r"checkpoint classes .* differ from the manifest's"):
        load_model(path, "classifier", ["disc", "square"])
    with pytest.raises(InputError, match="expected a segmentation checkpoint"):
        load_model(path, "segmentation", CLASSES)
    wrong = _save(tmp_path / "wrong.pt", "classifier", net, arch="resnet18", stride=8, gray=False)
    with pytest.raises(InputError, match="state_dict does not fit arch resnet18") as info:
        load_model(wrong, "classifier", CLASSES)
    assert info.value.path is not None and "wrong.pt" in str(info.value.path)
    unknown = _save(tmp_path / "unknown.pt", "classifier", net, arch="no-such-net", stride=8, gray=False)
    with pytest.raises(InputError, match="no-such-net"):
        load_model(unknown, "classifier", CLASSES)
