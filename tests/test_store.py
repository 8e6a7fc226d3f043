import h5py
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from pycocotools import mask as coco_mask

from wstools.errors import InputError
from wstools import masks as mask_io
from wstools.io.atomic import partial_path
from wstools.io.dataset import load_manifest
from wstools.cli.stage import parse_shard, shard_items
from wstools.io.store import create_store, image_id_of, image_key, merge_stores, open_store, read_rles, write_rles

pytestmark = pytest.mark.unit


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(1, 40), st.integers(1, 40), st.integers(0, 2 ** 31 - 1))
def test_masks_round_trip_through_store_bit_for_bit(tmp_path_factory, n, h, w, seed):
    rng = np.random.default_rng(seed)
    masks = rng.random((n, h, w)) < rng.random()
    counts = mask_io.encode(masks)
    # pycocotools is the oracle for the encoding itself
    ref = coco_mask.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    assert counts == [r["counts"] for r in ref]
    path = tmp_path_factory.mktemp("rt") / "p.h5"
    with create_store(path, "proposals", classes=["a"], params={}) as s:
        with s.write_image("img/1.png") as g:
            write_rles(g, "masks", counts)
    with open_store(path, "proposals") as s:
        back = read_rles(s.image("img/1.png")["masks"])
    assert back == counts
    decoded = mask_io.decode(back, h, w)
    assert decoded.dtype == bool and (decoded == masks).all()
    assert (mask_io.area(back, h, w) == masks.reshape(n, -1).sum(1)).all()


def test_boxes_and_iou_match_pycocotools():
    masks = np.zeros((2, 10, 12), bool)
    masks[0, 2:5, 3:9] = True
    masks[1, 4:10, 5:7] = True
    c = mask_io.encode(masks)
    assert mask_io.boxes(c, 10, 12).tolist() == [[3, 2, 9, 5], [5, 4, 7, 10]]
    inter = (masks[0] & masks[1]).sum()
    union = (masks[0] | masks[1]).sum()
    assert mask_io.iou(c, c, 10, 12)[0, 1] == pytest.approx(inter / union)


@given(st.text(min_size=1, max_size=30))
def test_image_key_round_trip(image_id):
    key = image_key(image_id)
    assert "/" not in key and key not in (".", "..")
    assert image_id_of(key) == image_id


def test_provenance_and_kind_checks(tmp_path, toy_dir):
    m = load_manifest(toy_dir / "train.json")
    path = tmp_path / "c.h5"
    with create_store(path, "labels", classes=m.classes, params={"theta": 0.85}, dataset=m,
                      command="ws test") as s:
        with s.write_image(m.images[0].id) as g:
            g["labels"] = np.zeros((4, 4), np.uint8)
    with open_store(path) as s:
        assert s.kind == "labels" and s.schema == 1 and s.params == {"theta": 0.85}
        assert s.command == "ws test" and s.classes == m.classes
        assert s.dataset["sha256"] == m.sha256() and len(s.uid) == 32
        assert s.image_ids() == [m.images[0].id]
        with pytest.raises(InputError, match="lacks"):
            s.check_images(m)
    with pytest.raises(InputError, match="is a 'labels' store, expected 'cams'"):
        open_store(path, "cams")
    with h5py.File(path, "r+") as f:
        f.attrs["ws_schema"] = 99
    with pytest.raises(InputError, match="newer"):
        open_store(path)


def test_failed_write_leaves_no_output(tmp_path):
    path = tmp_path / "x.h5"
    with pytest.raises(InputError):
        with create_store(path, "proposals", classes=["a"], params={}) as s:
            with s.write_image("a") as g:
                g["boxes"] = np.zeros((1, 4))
            raise InputError("bad image", image_id="b")
    assert not path.exists() and not partial_path(path).exists()


def test_existing_output_needs_force(tmp_path):
    path = tmp_path / "x.h5"
    for _ in range(2):
        with create_store(path, "graph", classes=["a"], params={}, force=True):
            pass
    with pytest.raises(InputError, match="--force"):
        with create_store(path, "graph", classes=["a"], params={}):
            pass


def test_resume_continues_an_interrupted_run(tmp_path):
    path = tmp_path / "p.h5"
    ids = [f"im{i}" for i in range(6)]
    written = []

    def run(fail_at=None):
        with create_store(path, "labels", classes=["a"], params={"x": 1}, resume=True) as s:
            for i, image_id in enumerate(ids):
                if s.has_image(image_id):
                    continue
                if i == fail_at:
                    raise RuntimeError("killed")
                with s.write_image(image_id) as g:
                    g["labels"] = np.full((2, 2), i, np.uint8)
                written.append(image_id)

    with pytest.raises(RuntimeError):
        run(fail_at=3)
    assert not path.exists() and partial_path(path).exists()
    run()
    assert written == ids  # nothing written twice
    with open_store(path, "labels") as s:
        assert s.image_ids() == ids
        assert int(s.image("im5")["labels"][0, 0]) == 5
    with pytest.raises(InputError, match="cannot resume"):
        with create_store(path, "labels", classes=["a"], params={"x": 2}, resume=True):
            pass


def test_incomplete_store_is_refused(tmp_path):
    path = tmp_path / "p.h5"
    with create_store(path, "labels", classes=["a"], params={}) as s:
        pass
    with h5py.File(path, "r+") as f:
        f.attrs["complete"] = 0
    with pytest.raises(InputError, match="incomplete"):
        open_store(path)


def test_shards_partition_and_merge(tmp_path):
    ids = [f"im{i}" for i in range(7)]
    assert parse_shard("1/3") == (1, 3)
    parts = [shard_items(ids, (i, 3)) for i in range(3)]
    assert sorted(sum(parts, [])) == sorted(ids) and parts[1] == ["im1", "im4"]
    paths = []
    for i, part in enumerate(parts):
        p = tmp_path / f"part{i}.h5"
        with create_store(p, "labels", classes=["a"], params={"t": 1, "shard": f"{i}/3"}) as s:
            for image_id in part:
                with s.write_image(image_id) as g:
                    g["labels"] = np.full((2, 2), int(image_id[2:]), np.uint8)
        paths.append(p)
    summary = merge_stores(tmp_path / "all.h5", paths)
    assert summary == {"kind": "labels", "parts": 3, "images": 7, "partial": False, "shards": 3, "missing_shards": []}
    with pytest.raises(InputError, match="shard 1/3 missing"):
        merge_stores(tmp_path / "two.h5", [paths[0], paths[2]])
    two = merge_stores(tmp_path / "two.h5", [paths[0], paths[2]], partial=True)
    assert two["images"] == 5 and two["partial"] and two["missing_shards"] == ["1/3"]
    with open_store(tmp_path / "all.h5", "labels") as s:
        assert sorted(s.image_ids()) == sorted(ids)
        assert all(int(s.image(i)["labels"][1, 1]) == int(i[2:]) for i in ids)
        assert "shard" not in s.params and len(s.inputs) == 3
    with pytest.raises(InputError, match="overlaps"):
        merge_stores(tmp_path / "bad.h5", [paths[0], paths[0]])
    assert not (tmp_path / "bad.h5").exists()


@pytest.mark.parametrize("text", ["3", "a/b", "3/3", "-1/2", "0/0"])
def test_bad_shard_spec(text):
    with pytest.raises(InputError, match="--shard"):
        parse_shard(text)


def _interrupted_store(path, ids):
    with pytest.raises(KeyboardInterrupt):
        with create_store(path, "labels", classes=["a"], params={"t": 1}) as s:
            for image_id in ids:
                with s.write_image(image_id) as g:
                    g["labels"] = np.full((2, 2), int(image_id[2:]), np.uint8)
            raise KeyboardInterrupt
    return path.with_name(f".{path.name}.partial")


def test_resume_never_truncates_a_root_held_by_another_process(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "l.h5"
    folder = _interrupted_store(out, ["im0", "im1"])
    root = folder / "root.h5"
    size = root.stat().st_size
    holder = subprocess.Popen([sys.executable, "-c", "import h5py, sys, time; f = h5py.File(sys.argv[1], 'r+'); "
                               "print('open', flush=True); time.sleep(60)", str(root)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(InputError, match="held by another process"):
            with create_store(out, "labels", classes=["a"], params={"t": 1}, resume=True):
                pass
        assert root.stat().st_size == size and len(list(folder.glob("*.h5"))) == 3
    finally:
        holder.kill()
        holder.wait()
    with create_store(out, "labels", classes=["a"], params={"t": 1}, resume=True) as s:
        assert s.has_image("im0") and s.has_image("im1")
    with open_store(out, "labels") as s:
        assert sorted(s.image_ids()) == ["im0", "im1"]


def test_resume_rebuilds_an_unreadable_root_and_says_so(tmp_path, capsys):
    out = tmp_path / "l.h5"
    folder = _interrupted_store(out, ["im0", "im1"])
    (folder / "root.h5").write_bytes(b"\0" * 100)          # killed while it was being assembled
    with create_store(out, "labels", classes=["a"], params={"t": 1}, resume=True) as s:
        assert s.has_image("im0")
        with s.write_image("im2") as g:
            g["labels"] = np.full((2, 2), 2, np.uint8)
    assert "unreadable" in capsys.readouterr().err
    with open_store(out, "labels") as s:
        assert sorted(s.image_ids()) == ["im0", "im1", "im2"] and s.kind == "labels"


def test_a_second_writer_in_the_same_process_is_refused(tmp_path):
    out = tmp_path / "l.h5"
    with create_store(out, "labels", classes=["a"], params={}):
        with pytest.raises(InputError, match="already an output of this command"):
            with create_store(out, "labels", classes=["a"], params={}, force=True):
                pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.h5"]


def test_resume_drops_an_unreadable_part_and_says_so(tmp_path, capsys):
    out = tmp_path / "l.h5"
    folder = _interrupted_store(out, ["im0", "im1", "im2"])
    part = sorted(p for p in folder.iterdir() if p.stem.isdigit())[1]
    part.write_bytes(part.read_bytes()[:200])
    with create_store(out, "labels", classes=["a"], params={"t": 1}, resume=True) as s:
        missing = [i for i in ("im0", "im1", "im2") if not s.has_image(i)]
        assert missing == ["im1"]
        with s.write_image("im1") as g:
            g["labels"] = np.full((2, 2), 1, np.uint8)
    assert "1 unreadable part file(s) removed" in capsys.readouterr().err
    with open_store(out, "labels") as s:
        assert sorted(s.image_ids()) == ["im0", "im1", "im2"]
