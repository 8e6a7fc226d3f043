import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from wstools.io.dataset import load_instances, load_manifest, load_semantic
from wstools.io.images import read_label_png
from wstools.io.toy import write_dataset
from wstools.toy import FAMILIES, make_image

from conftest import assert_bad_input, run_ws

pytestmark = pytest.mark.cli


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 8), size=st.sampled_from([48, 64, 96]))
def test_image_properties(seed, k, size):
    toy = make_image(np.random.default_rng(seed), size=size, num_classes=k)
    assert toy.image.shape == (size, size, 3) and toy.image.dtype == np.uint8
    n_inst = len(toy.instance_labels)
    assert 1 <= n_inst <= 4
    assert 1 <= len(toy.tags) <= 3
    assert sorted({FAMILIES[lab - 1] for lab in toy.instance_labels}) == sorted(toy.tags)
    # semantic labels are exactly the instances' classes; distractors are background
    present = set(np.unique(toy.semantic)) - {0}
    assert present == {lab for lab in toy.instance_labels}
    assert set(np.unique(toy.instances)) - {0} == set(range(1, n_inst + 1))
    for i, lab in enumerate(toy.instance_labels, start=1):
        assert (toy.semantic[toy.instances == i] == lab).all()
    n_obj = len(toy.object_families)
    assert n_obj - n_inst <= 2
    assert all(f not in FAMILIES[:k] for f in toy.object_families if f not in [FAMILIES[lab - 1] for lab in
                                                                                  toy.instance_labels])
    assert set(np.unique(toy.objects)) - {0} == set(range(1, n_obj + 1))
    # every target instance is covered by exactly one object
    assert ((toy.instances > 0) <= (toy.objects > 0)).all()


def test_border_is_ignore_band():
    toy = make_image(np.random.default_rng(3), size=96, border=2)
    assert (toy.semantic == 255).any()
    assert ((toy.semantic == 255) == (toy.instances == 255)).all()


def test_deterministic_and_extendable(tmp_path):
    a = write_dataset(tmp_path / "a", "train", 5, size=48, seed=7)
    b = write_dataset(tmp_path / "b", "train", 8, size=48, seed=7)
    c = write_dataset(tmp_path / "c", "train", 5, size=48, seed=8)
    for rec in a.images:
        assert (tmp_path / "a" / rec.image).read_bytes() == (tmp_path / "b" / rec.image).read_bytes()
    assert any((tmp_path / "a" / r.image).read_bytes() != (tmp_path / "c" / r.image).read_bytes()
               for r in a.images)
    assert [r.tags for r in a.images] == [r.tags for r in b.images[:5]]


def test_colour_does_not_identify_class(toy_dir):
    """Mean colours of two classes overlap: the palette is shared."""
    m = load_manifest(toy_dir / "train.json")
    means = {}
    for rec in m.images:
        img = m.read_image(rec).astype(float)
        sem = load_semantic(m, rec)
        for lab in np.unique(sem):
            if 0 < lab < 255:
                means.setdefault(int(lab), []).append(img[sem == lab].mean(0))
    spreads = [np.std(np.array(v), axis=0).mean() for v in means.values() if len(v) > 3]
    assert spreads and min(spreads) > 15


def test_cli_toy_writes_valid_dataset(tmp_path):
    out = tmp_path / "toy"
    r = run_ws("toy", out, "--train", 6, "--val", 3, "--size", 48, "--classes", 3)
    s = r.json
    assert s["train"]["images"] == 6 and s["val"]["images"] == 3
    assert s["classes"] == ["disc", "square", "triangle"]
    m = load_manifest(out / "train.json")
    assert len(m.images) == 6 and m.classes == ["disc", "square", "triangle"]
    for rec in m.images:
        gt = load_instances(m, rec)
        assert sorted({m.classes[lab - 1] for lab in gt.labels}) == sorted(rec.tags)
        objects = read_label_png(m.resolve(rec.extra["objects"]))
        assert objects.max() == len(rec.extra["object_families"])
    run_ws("dataset", "check", out / "val.json")


def test_cli_toy_refuses_existing_output(tmp_path):
    out = tmp_path / "toy"
    run_ws("toy", out, "--train", 2, "--val", 1, "--size", 32)
    before = (out / "train.json").read_text()
    assert_bad_input(run_ws("toy", out, "--train", 3, "--val", 1, "--size", 32, expect=2), "train.json",
                     "--force")
    assert (out / "train.json").read_text() == before
    run_ws("toy", out, "--train", 3, "--val", 1, "--size", 32, "--force")
    assert len(json.loads((out / "train.json").read_text())["images"]) == 3


@pytest.mark.parametrize("args", [["--classes", "9"], ["--size", "8"], ["--train", "-1"]])
def test_cli_toy_bad_usage(tmp_path, args):
    r = run_ws("toy", tmp_path / "x", *args, expect=2)
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "x" / "train.json").exists()
