"""RLE strings are checked against the image size before pycocotools decodes them: an invalid
one is an input error naming the file, image and mask, never a hang (issue 22)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import assert_bad_input, run_ws_inproc
from eval_stores import gt_instance_masks, load_manifest, write_assignment, write_proposals
from wstools.masks import InvalidRLE, check_rles, encode, rle_problem, rle_runs

pytestmark = pytest.mark.cli


def _reference_runs(s: bytes) -> list:
    """pycocotools' rleFrString, transcribed loop for loop (the trusted oracle)."""
    cnts, p = [], 0
    while p < len(s):
        x, k, more = 0, 0, 1
        while more:
            c = s[p] - 48
            x |= (c & 0x1F) << 5 * k
            more = c & 0x20
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << 5 * k
        if len(cnts) > 2:
            x += cnts[-2]
        cnts.append(x)
    return cnts


def test_hand_cases():
    # a 5 x 7 mask with a 2 x 3 block at rows 1-2, columns 2-4 (column-major runs)
    m = np.zeros((5, 7), bool)
    m[1:3, 2:5] = True
    (c,) = encode(m)
    assert rle_runs(c).tolist() == [11, 2, 3, 2, 3, 2, 12]
    assert rle_problem(c, 5, 7) is None
    assert rle_problem(c, 7, 5) is None                    # same pixel count: a size mismatch is not seen
    assert "covers 35 pixels" in rle_problem(c, 6, 7)
    assert rle_problem(b"", 5, 7) == "RLE covers 0 pixels, the image 5 x 7 = 35"
    assert rle_problem(b"zz\x7f", 5, 7) == "malformed RLE string"
    assert rle_problem(c[:-1] + b"h", 5, 7) == "malformed RLE string"   # cut inside a number
    assert rle_problem(b"P" * 8 + b"0", 5, 7) == "malformed RLE string"  # a 9-group number
    assert rle_problem(b"O" + b"S1", 5, 7) == "RLE with a negative run"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=24).map(lambda b: bytes(48 + x % 64 for x in b)))
def test_runs_agree_with_pycocotools_reading(s):
    runs = rle_runs(s)
    if runs is not None:
        assert runs.tolist() == _reference_runs(s)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 30), st.integers(1, 30), st.integers(0, 2 ** 31), st.integers(0, 4))
def test_every_encoded_mask_is_valid_and_the_batch_check_finds_the_first_bad_one(h, w, seed, bad_at):
    rng = np.random.default_rng(seed)
    counts = encode(np.cumsum(rng.random((5, h, w)) < 0.1, axis=1) % 2 == 1)
    check_rles(counts, h, w)
    counts[bad_at] = counts[bad_at] + b"1"
    with pytest.raises(InvalidRLE, match=rf"^mask {bad_at}: "):
        check_rles(counts, h, w)


@pytest.fixture
def stores(toy_dir, tmp_path):
    val = toy_dir / "val.json"
    m = load_manifest(val)
    masks, entries = {}, []
    for rec in m.images:
        gm, gl = gt_instance_masks(m, rec)
        masks[rec.id] = gm
        entries += [(rec.id, j, int(lab)) for j, lab in enumerate(gl)]
    props = tmp_path / "props.h5"
    write_proposals(props, m, masks)
    write_assignment(tmp_path / "a.h5", m, entries)
    return val, m, props


@pytest.mark.parametrize("garbage", [b"\x01\x02", b"0" * 40, b"O" * 12 + b"0"])
def test_eval_proposals_and_assignment_refuse_an_invalid_rle(stores, tmp_path, garbage):
    val, m, props = stores
    victim = m.images[2].id
    from wstools.io.store import image_key

    with h5py.File(props, "r+") as f:
        ds = f["images"][image_key(victim)]["masks"]
        data = list(ds[()])
        data[1] = np.frombuffer(garbage, np.uint8)
        del f["images"][image_key(victim)]["masks"]
        f["images"][image_key(victim)].create_dataset("masks", data=data, dtype=ds.dtype)
    r = run_ws_inproc("eval", "proposals", props, "--gt", val, expect=2)
    assert_bad_input(r, "props.h5", f"image {victim}", "masks: mask 1:")
    r = run_ws_inproc("eval", "assignment", tmp_path / "a.h5", "--proposals", props, "--gt", val, expect=2)
    assert_bad_input(r, "props.h5", f"image {victim}", "mask 1")


def test_an_invalid_ground_truth_rle_is_named_as_the_manifest(stores, toy_dir, tmp_path):
    import json

    val, m, props = stores
    data = json.loads(val.read_text())
    for rec in data["images"]:
        for key in ("image", "semantic", "instances", "objects"):
            rec[key] = str(toy_dir / rec[key])
    rec = data["images"][1]
    rec["instances"] = [{"label": m.classes[0], "iscrowd": 0,
                         "segmentation": {"size": [rec["height"], rec["width"]], "counts": "O" * 9 + "0"}}]
    bad = tmp_path / "bad_gt.json"
    bad.write_text(json.dumps(data))
    r = run_ws_inproc("eval", "proposals", props, "--gt", bad, expect=2)
    assert_bad_input(r, "bad_gt.json", f"image {rec['id']}", "ground truth mask 0")
    r = run_ws_inproc("eval", "assignment", tmp_path / "a.h5", "--proposals", props, "--gt", bad, expect=2)
    assert_bad_input(r, "bad_gt.json", f"image {rec['id']}", "ground truth mask 0")


def test_eval_proposals_refuses_non_finite_boxes(stores):
    from wstools.io.store import image_key

    val, m, props = stores
    victim = m.images[4].id
    with h5py.File(props, "r+") as f:
        boxes = f["images"][image_key(victim)]["boxes"]
        b = boxes[()]
        b[0, 2] = np.nan
        boxes[...] = b
    assert_bad_input(run_ws_inproc("eval", "proposals", props, "--gt", val, expect=2), "props.h5",
                     f"image {victim}", "boxes or scores hold NaN or infinite values")
