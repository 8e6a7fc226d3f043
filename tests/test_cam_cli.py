"""``ws cam train|infer|import`` through the command line (conftest.run_ws), on tiny toy data."""

from __future__ import annotations

import json
import os

import h5py
import numpy as np
import pytest
import torch

from conftest import assert_bad_input, run_ws

pytestmark = pytest.mark.cli

FAST = ["--arch", "tiny", "--crop", "64", "--epochs", "1", "--batch-size", "8", "--lr", "0.01"]


@pytest.fixture(scope="module")
def trained(toy_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("cam")
    r = run_ws("cam", "train", toy_dir / "train.json", "--val", toy_dir / "val.json", *FAST,
               "--epochs", "2", "-o", out / "cls.pt")
    return out, r


def test_train_colour(trained, toy_dir):
    out, r = trained
    s = r.json
    assert s["images"] == 24 and s["epochs"] == 2 and s["gray"] is False
    assert 0 <= s["metrics"]["val_map"] <= 1 and np.isfinite(s["metrics"]["loss"])
    ckpt = torch.load(out / "cls.pt", weights_only=True)
    assert ckpt["arch"] == "tiny" and ckpt["classes"] == json.loads((toy_dir / "train.json").read_text())["classes"]
    assert ckpt["args"]["epochs"] == 2 and not ckpt["gray"]
    lines = [json.loads(x) for x in (out / "cls.log.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1, 2] and all("val_map" in x and "train_map" in x for x in lines)
    assert not (out / "cls.last.pt").exists()


def test_train_gray_and_infer_gray(toy_dir, tmp_path):
    r = run_ws("cam", "train", toy_dir / "train.json", *FAST, "--gray", "-o", tmp_path / "g.pt")
    assert r.json["gray"] is True
    assert torch.load(tmp_path / "g.pt", weights_only=True)["gray"] is True
    r = run_ws("cam", "infer", toy_dir / "val.json", "--model", tmp_path / "g.pt", "--scales", "1.0",
               "--no-flip", "-o", tmp_path / "g.h5")
    assert r.json["gray"] is True and r.json["images"] == 8


def test_infer_layout_and_info(trained, toy_dir, tmp_path):
    out, _ = trained
    h5 = tmp_path / "cams.h5"
    r = run_ws("cam", "infer", toy_dir / "train.json", "--model", out / "cls.pt", "--scales", "1.0,0.5",
               "--background", "features", "--subtract-others", "--batch-size", "5", "-o", h5)
    assert r.json["images"] == 24
    manifest = json.loads((toy_dir / "train.json").read_text())
    classes = manifest["classes"]
    with h5py.File(h5, "r") as f:
        assert f.attrs["ws_kind"] == "cams"
        for rec in manifest["images"]:
            g = f["images"][rec["id"]]
            labels = g["labels"][()]
            assert labels.dtype == np.int64
            assert sorted(labels.tolist()) == sorted(classes.index(t) + 1 for t in rec["tags"])
            cams = g["cams"][()]
            assert cams.dtype == np.float16 and cams.shape == (len(labels), rec["height"], rec["width"])
            assert cams.min() >= 0 and cams.max() <= 1
            assert g["scores"].shape == (len(classes),) and g["scores"].dtype == np.float32
            assert g["background"].shape == (rec["height"], rec["width"])
            assert (g.attrs["height"], g.attrs["width"]) == (rec["height"], rec["width"])
    info = run_ws("info", h5, "--json").json
    assert info["kind"] == "cams" and info["counts"]["images"] == 24
    ev = run_ws("eval", "cams", h5, "--gt", toy_dir / "train.json").json
    assert ev["images"] == 24 and 0 <= ev["best_miou"] <= 1 and 0 <= ev["classification_map"] <= 1


def test_infer_predicted_shard_resume(trained, toy_dir, tmp_path):
    out, _ = trained
    h5 = tmp_path / "p.h5"
    args = ["cam", "infer", toy_dir / "val.json", "--model", out / "cls.pt", "--scales", "1.0",
            "--classes-from", "predicted", "--score-threshold", "0.5"]
    r = run_ws(*args, "--shard", "0/2", "-o", tmp_path / "s0.h5")
    assert r.json["images"] == 4
    run_ws(*args, "--shard", "1/2", "-o", tmp_path / "s1.h5")
    run_ws("merge", h5, tmp_path / "s0.h5", tmp_path / "s1.h5")
    with h5py.File(h5, "r") as f:
        for key in f["images"]:
            g = f["images"][key]
            scores = g["scores"][()]
            expected = np.flatnonzero(scores >= 0.5) + 1
            if expected.size == 0:
                expected = [int(np.argmax(scores)) + 1]
            assert g["labels"][()].tolist() == list(expected)
    # resume on a finished shard adds nothing
    r = run_ws(*args, "--shard", "0/2", "--resume", "-o", tmp_path / "s0.h5")
    assert r.json["images"] == 0 and r.json["skipped_existing"] == 4


def test_train_resume_from_last_epoch(toy_dir, tmp_path):
    """A run stopped after epoch 1 (--stop-after) resumes at epoch 2 and ends with the same
    weights as an uninterrupted run."""
    common = ["cam", "train", toy_dir / "train.json", *FAST, "--epochs", "2"]
    run_ws(*common, "-o", tmp_path / "full.pt")
    full = torch.load(tmp_path / "full.pt", weights_only=True)
    r1 = run_ws(*common, "--stop-after", "1", "-o", tmp_path / "part.pt")
    assert r1.json["stopped_after_epoch"] == 1
    assert (tmp_path / "part.last.pt").exists() and not (tmp_path / "part.pt").exists(), r1
    # resuming with other arguments is refused, and leaves the resume file alone
    r = run_ws(*common, "--lr", "0.02", "--resume", "-o", tmp_path / "part.pt", expect=2)
    assert_bad_input(r, "part.last.pt", "lr")
    assert (tmp_path / "part.last.pt").exists()
    r2 = run_ws(*common, "--resume", "-o", tmp_path / "part.pt")
    assert r2.json["resumed_from_epoch"] == 1
    assert not (tmp_path / "part.last.pt").exists()
    part = torch.load(tmp_path / "part.pt", weights_only=True)
    for k, v in full["state_dict"].items():
        torch.testing.assert_close(part["state_dict"][k], v, atol=1e-5, rtol=1e-4)
    lines = (tmp_path / "part.log.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]


def _irn_dir(toy_dir, tmp_path, mutate=None):
    manifest = json.loads((toy_dir / "val.json").read_text())
    classes = manifest["classes"]
    d = tmp_path / "irn"
    d.mkdir()
    rng = np.random.default_rng(0)
    for rec in manifest["images"]:
        keys = sorted(classes.index(t) for t in rec["tags"])
        hr = rng.random((len(keys), rec["height"], rec["width"])).astype(np.float32)
        data = {"keys": torch.tensor(keys), "cam": torch.rand(len(keys), 4, 4), "high_res": hr}
        if mutate:
            data = mutate(rec, data)
        np.save(d / f"{rec['id']}.npy", data)
    return d, manifest


def test_import_irn(toy_dir, tmp_path):
    d, manifest = _irn_dir(toy_dir, tmp_path)
    r = run_ws("cam", "import", d, "--manifest", toy_dir / "val.json", "-o", tmp_path / "irn.h5")
    assert r.json["images"] == 8
    rec = manifest["images"][0]
    arr = np.load(d / f"{rec['id']}.npy", allow_pickle=True).item()   # the test wrote this file itself
    with h5py.File(tmp_path / "irn.h5", "r") as f:
        g = f["images"][rec["id"]]
        assert g["labels"][()].tolist() == [k + 1 for k in arr["keys"].tolist()]
        np.testing.assert_allclose(g["cams"][()], arr["high_res"], atol=1e-3)
        assert g["scores"][()].sum() == len(arr["keys"])
    assert run_ws("info", tmp_path / "irn.h5", "--json").json["kind"] == "cams"


def test_import_bad_input(toy_dir, tmp_path):
    d, manifest = _irn_dir(toy_dir, tmp_path, mutate=lambda rec, data: {**data, "high_res": data["high_res"][:, :5]})
    r = run_ws("cam", "import", d, "--manifest", toy_dir / "val.json", "-o", tmp_path / "a.h5", expect=None)
    assert_bad_input(r, manifest["images"][0]["id"], "the image is")
    assert not (tmp_path / "a.h5").exists() and not (tmp_path / ".a.h5.partial").exists()
    first = manifest["images"][0]["id"]
    (d / f"{first}.npy").unlink()
    r = run_ws("cam", "import", d, "--manifest", toy_dir / "val.json", "-o", tmp_path / "a.h5", expect=None)
    assert_bad_input(r, first, "no IRN CAM file")


def test_import_refuses_pickled_code(toy_dir, tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch pwned",))

    d, manifest = _irn_dir(toy_dir, tmp_path, mutate=lambda rec, data: {**data, "cam": Evil()})
    r = run_ws("cam", "import", d, "--manifest", toy_dir / "val.json", "-o", tmp_path / "a.h5", cwd=tmp_path,
               expect=None)
    assert_bad_input(r, "refusing to load global")
    assert not (tmp_path / "pwned").exists()


# bad input -------------------------------------------------------------------------------------

def test_train_untagged_skip_or_strict(toy_copy, tmp_path):
    m = json.loads((toy_copy / "train.json").read_text())
    m["images"][3]["tags"] = []
    (toy_copy / "train.json").write_text(json.dumps(m))
    r = run_ws("cam", "train", toy_copy / "train.json", *FAST, "--strict", "-o", tmp_path / "a.pt", expect=None)
    assert_bad_input(r, m["images"][3]["id"], "no tags")
    assert not (tmp_path / "a.pt").exists() and not (tmp_path / "a.log.jsonl").exists()
    r = run_ws("cam", "train", toy_copy / "train.json", *FAST, "-o", tmp_path / "a.pt")
    assert r.json["skipped_untagged"] == 1 and r.json["images"] == 23
    assert "skipping 1 images without tags" in r.stderr


def test_train_corrupt_image(toy_copy, tmp_path):
    m = json.loads((toy_copy / "train.json").read_text())
    (toy_copy / m["images"][5]["image"]).write_bytes(b"not a png")
    r = run_ws("cam", "train", toy_copy / "train.json", *FAST, "-o", tmp_path / "a.pt", expect=None)
    assert_bad_input(r, m["images"][5]["id"], "cannot read image")
    assert not (tmp_path / "a.pt").exists() and not (tmp_path / "a.log.jsonl").exists()


def test_infer_corrupt_image_leaves_no_output(trained, toy_copy, tmp_path):
    out, _ = trained
    m = json.loads((toy_copy / "val.json").read_text())
    (toy_copy / m["images"][6]["image"]).write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    r = run_ws("cam", "infer", toy_copy / "val.json", "--model", out / "cls.pt", "--scales", "1.0",
               "-o", tmp_path / "c.h5", expect=None)
    assert_bad_input(r, m["images"][6]["id"])
    assert not (tmp_path / "c.h5").exists() and not (tmp_path / ".c.h5.partial").exists()


def test_infer_class_list_mismatch(trained, toy_copy, tmp_path):
    out, _ = trained
    m = json.loads((toy_copy / "val.json").read_text())
    m["classes"] = m["classes"][::-1]
    (toy_copy / "val.json").write_text(json.dumps(m))
    r = run_ws("cam", "infer", toy_copy / "val.json", "--model", out / "cls.pt", "-o", tmp_path / "c.h5",
               expect=None)
    assert_bad_input(r, "cls.pt", "differ")
    assert not (tmp_path / "c.h5").exists()


def test_infer_not_a_checkpoint(toy_dir, tmp_path):
    bad = tmp_path / "bad.pt"
    torch.save({"weights": torch.zeros(2)}, bad)
    r = run_ws("cam", "infer", toy_dir / "val.json", "--model", bad, "-o", tmp_path / "c.h5", expect=None)
    assert_bad_input(r, "bad.pt", "not a ws checkpoint, expected a classifier checkpoint")


def test_train_weights_wrong_architecture(toy_dir, tmp_path):
    import torchvision

    path = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    r = run_ws("cam", "train", toy_dir / "train.json", *FAST, "--weights", path, "-o", tmp_path / "a.pt",
               expect=None)
    assert_bad_input(r, "r18.pth", "do not fit --arch tiny")
    assert not (tmp_path / "a.pt").exists() and not (tmp_path / "a.log.jsonl").exists()


def test_train_imagenet_weights_offline_or_tiny(toy_dir, tmp_path):
    r = run_ws("cam", "train", toy_dir / "train.json", *FAST, "--weights", "imagenet", "-o", tmp_path / "a.pt",
               expect=None)
    assert_bad_input(r, "no ImageNet weights for --arch tiny")


def test_train_imagenet_offline_message(toy_dir, tmp_path):
    """Offline (no proxy reachable), --weights imagenet says how to pass --weights PATH."""
    env = {"TORCH_HOME": str(tmp_path / "torch"), "HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}
    r = run_ws("cam", "train", toy_dir / "train.json", "--arch", "resnet18", "--epochs", "1", "--weights", "imagenet",
               "-o", tmp_path / "a.pt", env=env, expect=None)
    assert_bad_input(r, "resnet18-f37072fd.pth", "--weights PATH")


def test_device_cuda_absent(toy_dir, tmp_path, trained):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    r = run_ws("cam", "train", toy_dir / "train.json", *FAST, "--device", "cuda", "-o", tmp_path / "a.pt",
               expect=None)
    assert_bad_input(r, "no CUDA device")
    out, _ = trained
    r = run_ws("cam", "infer", toy_dir / "val.json", "--model", out / "cls.pt", "--device", "cuda",
               "-o", tmp_path / "c.h5", expect=None)
    assert_bad_input(r, "no CUDA device")
    assert not (tmp_path / "a.pt").exists() and not (tmp_path / "c.h5").exists()


def test_output_exists_needs_force(trained, toy_dir):
    out, _ = trained
    r = run_ws("cam", "train", toy_dir / "train.json", *FAST, "-o", out / "cls.pt", expect=None)
    assert_bad_input(r, "cls.pt", "--force")


def test_train_under_torchrun_ddp(toy_dir, tmp_path):
    """Two CPU processes (gloo) under torchrun: rank 0 writes one checkpoint and one log."""
    import shutil
    import subprocess
    import sys

    from conftest import REPO

    torchrun = shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun not installed")
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    p = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "wstools", "cam", "train",
                        str(toy_dir / "train.json"), *FAST, "--epochs", "2", "--device", "cpu",
                        "-o", str(tmp_path / "ddp.pt")], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    summaries = [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]
    assert len(summaries) == 1 and summaries[0]["processes"] == 2
    assert torch.load(tmp_path / "ddp.pt", weights_only=True)["arch"] == "tiny"
    assert len((tmp_path / "ddp.log.jsonl").read_text().splitlines()) == 2


class _Pickled:
    def __reduce__(self):
        return (os.getcwd, ())


@pytest.mark.parametrize("content", ["code", "text"])
def test_refused_checkpoint_error_stands_alone(toy_dir, tmp_path, content):
    """Issue 14: torch printed a multi-line UserWarning (pickle protocol) before the one-line error;
    the error must be the only line on stderr, for pickled code and for a file that is no pickle."""
    bad = tmp_path / "bad.pt"
    if content == "code":
        torch.save({"state_dict": {}, "x": _Pickled()}, bad)
    else:
        bad.write_text("not a checkpoint\n")
    r = run_ws("cam", "infer", toy_dir / "val.json", "--model", bad, "-o", tmp_path / "c.h5", expect=None)
    assert_bad_input(r, "bad.pt", "weights_only=True")
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Warning" not in r.stderr, r.stderr
    assert not (tmp_path / "c.h5").exists()


def test_recipe_toy_sets_defaults_and_explicit_options_win(toy_dir, tmp_path):
    """--recipe toy: tiny residual CNN at stride 8 with Adam; an option on the command line wins."""
    from wstools.cli.cam.train import RECIPES
    from wstools.io.checkpoint import load_checkpoint

    out = tmp_path / "cls.pt"
    run_ws("cam", "train", toy_dir / "train.json", "--recipe", "toy", "--epochs", "1", "--crop", "48",
           "--device", "cpu", "--threads", "1", "-o", out)
    ckpt = load_checkpoint(out, "classifier")
    args, toy = ckpt["args"], RECIPES["toy"]
    assert (ckpt["arch"], ckpt["stride"]) == ("tiny", 8)
    assert (args["optimizer"], args["lr"], args["head_lr_mult"], args["weight_decay"], args["batch_size"]) == \
        ("adam", toy["lr"], 1.0, 0.0, toy["batch_size"])
    assert args["crop"] == 48 and args["epochs"] == 1           # given explicitly
    assert RECIPES["irn"] == {}                                   # the default recipe is the option defaults
