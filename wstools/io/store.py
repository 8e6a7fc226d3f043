"""HDF5 stores: every intermediate result of the pipeline is one file of a known kind.

Root attributes (all stores):

==============  ==============================================================
``ws_kind``     one of ``KINDS``
``ws_schema``   integer version of that kind's layout
``ws_version``  the ``wstools`` version that wrote it
``ws_uid``      random id given at creation; later stages record it in ``inputs``
``command``     the command line that made the file
``params``      JSON object of the parameters
``classes``     JSON list of foreground class names (label i+1 = classes[i])
``dataset``     JSON ``{path, sha256, name, images}`` of the manifest, or ``null``
``inputs``      JSON list of ``{path, kind, uid}`` of the input stores
``complete``    1 once the writer finished; a store without it is refused
==============  ==============================================================

Per-image kinds (``proposals``, ``cams``, ``labels``, ``probs``) keep one group per image,
``/images/<key>`` with ``key = image_key(id)``, and every group gets attribute
``complete = 1`` after its datasets are written (``--resume`` skips those).
Dataset-level kinds (``features``, ``graph``, ``assignment``) keep flat arrays.

Stores are written under a hidden temporary name and renamed when complete, so
an interrupted run never leaves a file that a later stage would take for done.
Input stores are identified by ``ws_uid`` rather than a content hash: a store is
never modified after its rename, and hashing a multi-gigabyte feature file for
provenance would cost more than the stage that reads it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import uuid
from pathlib import Path
from urllib.parse import quote, unquote

import h5py
import numpy as np

from .. import __version__
from ..errors import InputError, raise_if_terminated
from .atomic import check_output, partial_path

KINDS = {
    "proposals": 1,
    "cams": 1,
    "features": 1,
    "graph": 1,
    "assignment": 1,
    "labels": 1,
    "probs": 1,
    "responses": 1,
}
PER_IMAGE_KINDS = ("proposals", "cams", "labels", "probs", "responses")

_RLE_DTYPE = h5py.vlen_dtype(np.dtype("uint8"))


def image_key(image_id: str) -> str:
    """HDF5-safe group name of an image id ('/' and '.' are escaped, reversibly)."""
    return quote(image_id, safe="-_~").replace(".", "%2E")


def image_id_of(key: str) -> str:
    return unquote(key)


def command_line() -> str:
    """The command that is running, as the user typed it (program name shortened)."""
    argv = list(sys.argv)
    if argv:
        argv[0] = Path(argv[0]).name
    return " ".join(argv)


def _json_attr(value) -> str:
    return json.dumps(value, sort_keys=True, default=_json_default)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (Path,)):
        return str(o)
    if isinstance(o, (tuple, set)):
        return list(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def write_rles(group: h5py.Group, name: str, counts: list) -> None:
    """Store a list of RLE ``counts`` (bytes) as a variable-length uint8 dataset."""
    ds = group.create_dataset(name, shape=(len(counts),), dtype=_RLE_DTYPE)
    for i, c in enumerate(counts):
        ds[i] = np.frombuffer(c, dtype=np.uint8)


def read_rles(dataset: h5py.Dataset, height: int | None = None, width: int | None = None) -> list[bytes]:
    """The RLE strings of a per-image dataset (e.g. ``masks``), each checked to describe a mask
    of the image's size (``height`` / ``width``, else the group's attributes): an invalid one
    is an ``InputError`` naming the file, the image and the mask, never a hang in pycocotools."""
    from ..masks import InvalidRLE, check_rles

    counts = [bytes(np.asarray(x, dtype=np.uint8)) for x in dataset[()]]
    attrs = dataset.parent.attrs
    height = attrs.get("height") if height is None else height
    width = attrs.get("width") if width is None else width
    if height is not None and width is not None and counts:
        try:
            check_rles(counts, int(height), int(width))
        except InvalidRLE as e:
            image_id = attrs.get("id")
            raise InputError(f"{dataset.name.rsplit('/', 1)[-1]}: {e.problem}", path=dataset.file.filename,
                             image_id=None if image_id is None else _str_attr(image_id)) from None
    return counts


class Store:
    """An open store. Use :func:`open_store` to read and :func:`create_store` to write."""

    def __init__(self, h5: h5py.File, path: Path, writable: bool = False):
        self.h5 = h5
        self.path = Path(path)
        self.writable = writable
        self._open_parts = []

    # provenance --------------------------------------------------------
    @property
    def kind(self) -> str:
        return _str_attr(self.h5.attrs.get("ws_kind"))

    @property
    def schema(self) -> int:
        return int(self.h5.attrs.get("ws_schema", 0))

    @property
    def uid(self) -> str:
        return _str_attr(self.h5.attrs.get("ws_uid"))

    def _json(self, name, default=None):
        raw = self.h5.attrs.get(name)
        if raw is None:
            return default
        return json.loads(_str_attr(raw))

    @property
    def classes(self) -> list:
        return self._json("classes", [])

    @property
    def params(self) -> dict:
        return self._json("params", {})

    @property
    def dataset(self):
        return self._json("dataset")

    @property
    def inputs(self) -> list:
        return self._json("inputs", [])

    @property
    def command(self) -> str:
        return _str_attr(self.h5.attrs.get("command", ""))

    def provenance(self) -> dict:
        return {"kind": self.kind, "schema": self.schema, "ws_version": _str_attr(self.h5.attrs.get("ws_version")),
                "uid": self.uid, "command": self.command, "params": self.params, "classes": self.classes,
                "dataset": self.dataset, "inputs": self.inputs}

    def as_input(self) -> dict:
        """How a later stage records this store in its ``inputs`` attribute."""
        return {"path": str(self.path), "kind": self.kind, "uid": self.uid}

    # per-image groups --------------------------------------------------
    # While a per-image store is written (``self.parts`` is set), every completed image
    # lives in its own small HDF5 file ``.NAME.partial/NNNNNNNN.h5``, written under a
    # ``.tmp`` name, closed, fsync'ed and renamed: a kill at any instant leaves either a
    # whole part or an ignored temp file. ``create_store`` assembles the parts at the end.
    parts = None

    def _base_keys(self) -> list:
        if "images" not in self.h5:
            return []
        grp = self.h5["images"]
        keys = [k for k in grp.keys() if grp[k].attrs.get("complete", 0)]
        order = {k: int(grp[k].attrs.get("order", 0)) for k in keys}
        return sorted(keys, key=lambda k: order[k])

    def image_ids(self) -> list:
        """Ids of the complete images, in the order they were written."""
        keys = self._base_keys()
        if self.parts is not None:
            keys = [k for k in keys if k not in self.parts] + list(self.parts)
        return [image_id_of(k) for k in keys]

    def has_image(self, image_id: str) -> bool:
        key = image_key(image_id)
        if self.parts is not None and key in self.parts:
            return True
        return "images" in self.h5 and key in self.h5["images"] and \
            bool(self.h5["images"][key].attrs.get("complete", 0))

    def image(self, image_id: str) -> h5py.Group:
        if not self.has_image(image_id):
            raise InputError("has no data for this image", path=self.path, image_id=image_id)
        key = image_key(image_id)
        if self.parts is not None and key in self.parts:
            f = h5py.File(self.parts[key], "r")
            self._open_parts.append(f)
            return f["images"][key]
        return self.h5["images"][key]

    @contextlib.contextmanager
    def write_image(self, image_id: str):
        """Yield the group of one image to fill; it is marked complete only if the block succeeds."""
        raise_if_terminated()
        key = image_key(image_id)
        if self.parts is None:
            images = self.h5.require_group("images")
            if key in images:
                del images[key]
            grp = images.create_group(key)
            grp.attrs["id"] = image_id
            grp.attrs["order"] = len(images) - 1
            try:
                yield grp
            except BaseException:
                if key in images:
                    del images[key]
                raise
            grp.attrs["complete"] = 1
            return
        self._seq += 1
        final = self._folder / f"{self._seq:08d}.h5"
        tmp = self._folder / f"{self._seq:08d}.h5.tmp"
        f = None
        try:                      # the file is made inside: a signal while h5py opens it must remove it too
            f = h5py.File(tmp, "w")
            grp = f.require_group("images").create_group(key)
            grp.attrs["id"] = image_id
            yield grp
            grp.attrs["complete"] = 1
            f.close()
            _fsync(tmp)
            os.replace(tmp, final)
            _fsync_dir(self._folder)
        except BaseException:
            if f is not None:
                with contextlib.suppress(Exception):
                    f.close()
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        self.parts.pop(key, None)
        self.parts[key] = final

    # checks ------------------------------------------------------------
    def check_classes(self, classes, other_path=None) -> None:
        if list(classes) != self.classes:
            raise InputError(f"class list {self.classes} differs from {list(classes)}"
                             + (f" of {other_path}" if other_path else ""), path=self.path)

    def check_images(self, manifest, require_all: bool = True) -> None:
        """Refuse a store whose class list or image ids do not fit ``manifest`` (or a manifest
        listing no images)."""
        if not manifest.images:
            raise InputError("the manifest lists no images", path=manifest.path)
        self.check_classes(manifest.classes, manifest.path)
        ids = set(manifest.ids())
        extra = [i for i in self.image_ids() if i not in ids]
        if extra:
            raise InputError(f"has {len(extra)} images not in {manifest.path}", path=self.path, image_id=extra[0])
        if require_all:
            have = set(self.image_ids())
            missing = [i for i in manifest.ids() if i not in have]
            if missing:
                raise InputError(f"lacks {len(missing)} images of {manifest.path} (merge all shards first?)",
                                 path=self.path, image_id=missing[0])

    def close(self):
        for f in self._open_parts:
            with contextlib.suppress(Exception):
                f.close()
        self._open_parts = []
        self.h5.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _str_attr(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bytes):
        return v.decode()
    return str(v)


_OPENED_INPUTS: list = []


def opened_inputs(reset: bool = False) -> list:
    """Paths of the stores :func:`open_store` opened since the last reset (a command's start):
    what a corrupt-HDF5 error, which does not say its file, can name."""
    if reset:
        _OPENED_INPUTS.clear()
    return list(dict.fromkeys(_OPENED_INPUTS))


def unreadable_input_message(error: BaseException):
    """The one-line message for an error HDF5 raised while reading an input store that opened
    fine (a byte-corrupted file: "bad local heap signature", "wrong B-tree signature", "ran off
    end of input buffer"; an object a hand-edited store lacks), or ``None`` for anything else (an
    errno such as a full disk is the environment's fault). HDF5 does not say which file: the
    stores this command opened are named."""
    if not isinstance(error, (OSError, KeyError, ValueError, RuntimeError)) or getattr(error, "errno", None):
        return None
    tb, last = error.__traceback__, None
    while tb is not None:
        last, tb = tb, tb.tb_next
    if last is None or "h5py" not in last.tb_frame.f_code.co_filename.replace("\\", "/"):
        return None
    message = str(error.args[0] if isinstance(error, KeyError) and error.args else error)
    reading = ("read", "open object", "signature", "decod", "doesn't exist", "not aligned", "b-tree", "heap",
               "inflate", "filter")
    if "create" in message.lower() or not any(w in message.lower() for w in reading):
        return None
    paths = opened_inputs()
    if not paths:
        return None
    which = paths[0] if len(paths) == 1 else "one of " + ", ".join(paths[:4]) + (" ..." if len(paths) > 4 else "")
    return f"{which}: unreadable HDF5 data ({message}): the file is corrupt or not as ws writes it"


def open_store(path, kind=None) -> Store:
    """Open a finished store for reading; refuse a missing, truncated, unfinished,
    wrong-kind or newer-schema file with an ``InputError`` naming it."""
    path = Path(path)
    if len(_OPENED_INPUTS) < 1000:
        _OPENED_INPUTS.append(str(path))
    if not path.exists():
        raise InputError("file does not exist", path=path)
    try:
        h5 = h5py.File(path, "r")
    except OSError:
        raise InputError("not an HDF5 file, or truncated", path=path) from None
    store = Store(h5, path)
    try:
        actual = store.kind
        if not actual:
            raise InputError("HDF5 file without ws_kind: not written by ws", path=path)
        if kind is not None:
            allowed = (kind,) if isinstance(kind, str) else tuple(kind)
            if actual not in allowed:
                raise InputError(f"is a {actual!r} store, expected {' or '.join(map(repr, allowed))}", path=path)
        if actual not in KINDS:
            raise InputError(f"unknown store kind {actual!r}", path=path)
        if store.schema > KINDS[actual]:
            raise InputError(f"{actual} schema {store.schema} is newer than this ws reads ({KINDS[actual]}); "
                             "upgrade ws", path=path)
        if not h5.attrs.get("complete", 0):
            raise InputError("store is incomplete (its writer did not finish)", path=path)
    except BaseException:
        h5.close()
        raise
    return store


def _recorded_file(record: dict, beside: Path):
    """The file an ``inputs`` record names, if it is still there with the recorded uid:
    the path as recorded (relative to where that command ran), else relative to the folder
    of the store that records it, else its name in that folder. ``None`` if not found."""
    recorded = Path(str(record.get("path", "")))
    candidates = [recorded] if recorded.is_absolute() else [recorded, beside / recorded, beside / recorded.name]
    for c in candidates:
        if not c.is_file():
            continue
        try:
            s = open_store(c)
        except InputError:
            continue
        if s.uid == record.get("uid"):
            return s
        s.close()
    return None


def check_made_from(store: Store, source: Store, *, force: bool = False, max_files: int = 32) -> dict:
    """Refuse ``source`` (a store given beside ``store``, e.g. the proposals an assignment's
    indices refer to) when ``store``'s recorded provenance shows it was made from another one.

    The ``inputs`` chain is walked as far as its files are still there with their recorded
    uids (an assignment records its graph, the graph its features, the features their
    proposals). Every record of ``source``'s kind on the chain must be ``source`` itself or one
    of the parts ``source`` was merged from (``ws merge`` records them: shards computed per
    part and merged later). ``source`` is proven when such records appear and no other;
    refused when a record of its kind with another uid appears, or a store on the chain was
    made from another manifest (``dataset`` sha256), unless ``force`` (then the caller warns).
    Returns ``{"checked": "uid" | "dataset" | "unverified" | "forced", ...}``; ``unverified``
    when the chain breaks before reaching ``source``'s kind (intermediate files moved)."""
    acceptable = {source.uid} | {r.get("uid") for r in source.inputs if r.get("kind") == source.kind}
    matched, others, broken, shas, opened = [], [], [], [], []
    queue = [(r, store.path.parent) for r in store.inputs]
    if (store.dataset or {}).get("sha256"):
        shas.append((store.path, store.dataset["sha256"]))
    try:
        while queue and len(opened) < max_files:
            record, beside = queue.pop(0)
            if record.get("kind") == source.kind or record.get("uid") in acceptable:
                (matched if record.get("uid") in acceptable else others).append(record)
                continue                          # what that store was made from does not matter here
            child = _recorded_file(record, beside)
            if child is None:
                broken.append(str(record.get("path")))
                continue
            opened.append(child)
            if (child.dataset or {}).get("sha256"):
                shas.append((child.path, child.dataset["sha256"]))
            queue.extend((r, child.path.parent) for r in child.inputs)
    finally:
        for s in opened:
            s.close()
    problem = None
    if others:
        r = others[0]
        problem = (f"{store.path} was made from the {source.kind} store {r.get('path')} "
                   f"(uid {str(r.get('uid'))[:12]}), not from this one (uid {source.uid[:12]})")
    else:
        mine = (source.dataset or {}).get("sha256")
        for path, sha in shas:
            if mine and sha != mine:
                problem = f"made from another manifest than {path} (on the inputs chain of {store.path})"
                break
    if problem is None:
        if matched:
            return {"checked": "uid"}
        if broken:
            return {"checked": "unverified", "missing": broken}
        return {"checked": "dataset" if shas else "unverified", "missing": []}
    if not force:
        raise InputError(f"{problem}; give the store it was made from, or --force-mismatch if you know "
                         "they hold the same data", path=source.path)
    return {"checked": "forced", "mismatch": problem}


def check_same_manifest(*stores, force: bool = False) -> str | None:
    """Refuse stores given together (seeds and probabilities, responses and proposals, proposals
    and CAMs) that record different manifests (``dataset`` sha256), naming both files; stores
    without a recorded manifest are not compared. With ``force`` the problem is returned
    instead (for the caller's warning); ``None`` when they agree."""
    from .dataset import recorded_dataset

    # a store that records no manifest (ws grow seeds without --manifest) counts with its inputs' one
    recorded = [recorded_dataset(s)[0] or {} for s in stores]
    # the tags-only hash where every store records it: ground truth added in between is no difference
    key = "tags_sha256" if all(d.get("tags_sha256") for d in recorded if d.get("sha256")) else "sha256"
    known = [(s.path, d.get(key)) for s, d in zip(stores, recorded)]
    known = [(p, sha) for p, sha in known if sha]
    for path, sha in known[1:]:
        if sha != known[0][1]:
            problem = f"made from another manifest than {known[0][0]} (dataset sha256 {sha[:12]} vs {known[0][1][:12]})"
            if force:
                return f"{path}: {problem}"
            raise InputError(f"{problem}; --force-mismatch if you know they belong together", path=path)
    return None


_HELD_LOCKS: dict = {}


def lock_path(path) -> Path:
    """The hidden lock file of an output: ``.NAME.lock`` beside it."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def output_lock(path):
    """Hold the output ``path`` for this process while the block runs: a second writer (another
    ``ws`` run, with or without ``--force``) gets an ``InputError`` "is being written by process
    N" at once instead of both writing one file. A POSIX record lock on ``.NAME.lock``: released
    by the kernel when the writer dies (even by SIGKILL, even while forked workers live on), so
    a stale lock file is harmless. Under ``torchrun`` only rank 0 takes it (the ranks of one job
    are one writer). The same output asked for twice in one process (``--probs`` equal to
    ``-o``) is refused too."""
    import errno
    import fcntl

    path = Path(path)
    if int(os.environ.get("RANK", "0") or 0) > 0:
        yield
        return
    lock = lock_path(path)
    if not lock.parent.is_dir():
        raise InputError("output folder does not exist", path=lock.parent)
    key = str(lock.parent.resolve() / lock.name)
    if key in _HELD_LOCKS:
        raise InputError("is already an output of this command (the same file given twice?)", path=path)
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise InputError(f"cannot write in the output folder ({e.strerror})", path=lock.parent) from None
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EACCES, errno.EAGAIN):
                os.close(fd)
                raise
            try:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            finally:
                os.close(fd)
            raise InputError(f"is being written by process {holder} (wait for it to end, or stop it; "
                             "--force does not take over a live writer)", path=path) from None
        try:                    # the file may have been removed by a writer that just finished
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _HELD_LOCKS[key] = fd
    try:
        yield
    finally:
        if _HELD_LOCKS.pop(key, None) is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)
            os.close(fd)


def release_output_locks() -> None:
    """Release every output lock this process holds (a command's end): a lock held by an object
    a failed command's traceback keeps alive would otherwise stay, and its file with it."""
    for key in list(_HELD_LOCKS):
        fd = _HELD_LOCKS.pop(key)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(key)
        os.close(fd)


def _fsync(path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path) -> None:
    with contextlib.suppress(OSError):
        _fsync(path)


def _scan_parts(folder: Path) -> tuple[dict, int]:
    """Completed part files of ``folder`` as ``{key: path}`` in write order, and the last
    sequence number; leftover ``.tmp`` files (a kill mid-write) and unreadable parts are removed."""
    parts, seq, dropped = {}, 0, 0
    for p in sorted(folder.iterdir()):
        if p.name.endswith(".tmp"):
            p.unlink()
            continue
        if not (p.suffix == ".h5" and p.stem.isdigit()):
            continue
        seq = max(seq, int(p.stem))
        try:
            with h5py.File(p, "r") as f:
                keys = [k for k in f.get("images", {}).keys() if f["images"][k].attrs.get("complete", 0)]
        except (OSError, KeyError):
            keys = []
        if not keys:
            p.unlink()
            dropped += 1
            continue
        parts.pop(keys[0], None)
        parts[keys[0]] = p
    if dropped:
        sys.stderr.write(f"warning: {folder}: {dropped} unreadable part file(s) removed; their images are made "
                         "again\n")
    return parts, seq


def _reopen_root(root: Path, path: Path):
    """``root.h5`` of a partial folder opened for ``--resume``, or ``None`` when it is missing or
    unreadable (killed while it was made or assembled): it is then moved aside as
    ``root.h5.broken`` and rebuilt, never truncated in place. A root another process still holds
    open (its HDF5 lock) is an ``InputError``: that process is still writing."""
    if not root.exists():
        return None
    try:
        return h5py.File(root, "r+")
    except BlockingIOError:
        raise InputError("its partial folder is held by another process (a writer still running, or "
                         f"its orphaned workers): {root}", path=path) from None
    except OSError as e:
        if "lock" in str(e).lower():
            raise InputError("its partial folder is held by another process (a writer still running, or "
                             f"its orphaned workers): {root}", path=path) from None
        broken = root.with_name("root.h5.broken")
        os.replace(root, broken)
        sys.stderr.write(f"warning: {root} is unreadable ({e.__class__.__name__}): rebuilt from the image "
                         f"parts (the old one kept as {broken.name} until the run ends)\n")
        return None


def _new_root(root: Path, kind, params, classes) -> h5py.File:
    h5 = h5py.File(root, "w")
    h5.attrs["ws_kind"] = kind
    h5.attrs["ws_schema"] = KINDS[kind]
    h5.attrs["ws_uid"] = uuid.uuid4().hex
    h5.attrs["params"] = _json_attr(params)
    h5.attrs["classes"] = _json_attr(list(classes))
    return h5


@contextlib.contextmanager
def create_store(path, kind: str, *, classes, params: dict, dataset=None, inputs=(), command=None,
                 force: bool = False, resume: bool = False):
    """Write a store atomically: yields a writable :class:`Store` (see :func:`_create_store`);
    the output is locked for this process meanwhile (:func:`output_lock`)."""
    if dataset is not None and not dataset.images:       # an empty store would pass for a result
        raise InputError("the manifest lists no images", path=dataset.path)
    with output_lock(path), _create_store(path, kind, classes=classes, params=params, dataset=dataset,
                                          inputs=inputs, command=command, force=force, resume=resume) as store:
        yield store


@contextlib.contextmanager
def _create_store(path, kind: str, *, classes, params: dict, dataset=None, inputs=(), command=None,
                  force: bool = False, resume: bool = False):
    """Write a store atomically: yields a writable :class:`Store`.

    Dataset-level kinds are written to a hidden temporary file renamed onto
    ``path`` on success (removed on any failure). Per-image kinds are written
    into a hidden folder ``.NAME.partial/``: ``root.h5`` (attributes and
    non-image datasets), ``meta.json`` (kind, params, classes) and one small
    part file per completed image, each renamed into place atomically after an
    fsync, so SIGKILL or SIGTERM at any instant keeps every completed image. On
    success the parts are assembled into ``root.h5``, which is marked complete
    and renamed onto ``path`` (one HDF5 file, groups ``/images/<key>``), and the
    folder is removed. On an ``InputError`` the folder is removed; on an
    interruption or a runtime failure it is kept for ``resume=True``.

    ``resume`` continues ``.NAME.partial/`` if present, else the finished
    ``path`` itself (to add images a shard or a larger manifest lacks); the
    parameters and classes must match. ``dataset`` is a
    :class:`~wstools.io.dataset.Manifest` or ``None``; ``inputs`` are open input stores.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind}")
    path = Path(path)
    tmp = partial_path(path)
    dataset_attr = None if dataset is None else dataset.provenance()
    params_json = json.loads(_json_attr(params))
    per_image = kind in PER_IMAGE_KINDS
    if not per_image:
        check_output(path, force)
        if tmp.is_dir():
            shutil.rmtree(tmp)
        elif tmp.exists():
            tmp.unlink()
        h5 = _new_root(tmp, kind, params, classes)
        _set_run_attrs(h5, command, dataset_attr, inputs)
        store = Store(h5, path, writable=True)
        try:
            yield store
        except BaseException:
            h5.close()
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        h5.attrs["complete"] = 1
        h5.close()
        os.replace(tmp, path)
        return

    root, meta = tmp / "root.h5", tmp / "meta.json"
    h5 = None
    parts, seq = {}, 0
    if resume and (tmp.exists() or path.exists()):
        if tmp.exists() and not tmp.is_dir():       # a partial file of an older ws: start afresh
            tmp.unlink()
        if tmp.is_dir() and meta.exists():
            try:
                old = json.loads(meta.read_text())
            except ValueError:
                old = None
            if old is not None and (old.get("kind") != kind or old.get("params") != params_json
                                    or old.get("classes") != list(classes)):
                raise InputError("cannot resume: the earlier run had other parameters or classes "
                                 f"({old.get('params')} vs {params_json})", path=path)
        elif tmp.is_dir():
            shutil.rmtree(tmp)
        if tmp.is_dir():
            parts, seq = _scan_parts(tmp)
            with contextlib.suppress(FileNotFoundError):
                (tmp / "root.h5.tmp").unlink()
            h5 = _reopen_root(root, path)
        if h5 is None and path.exists():
            try:
                with h5py.File(path, "r") as f:
                    prev = Store(f, path)
                    same = prev.kind == kind and prev.params == params_json and prev.classes == list(classes)
                    prev_desc = prev.params
            except OSError:
                same, prev_desc = None, None
            if same is False:
                raise InputError("cannot resume: the earlier run had other parameters or classes "
                                 f"({prev_desc} vs {params_json})", path=path)
            if same:
                tmp.mkdir(exist_ok=True)
                shutil.copyfile(path, tmp / "root.h5.tmp")
                os.replace(tmp / "root.h5.tmp", root)
                h5 = h5py.File(root, "r+")
    else:
        if not resume:
            check_output(path, force)
        elif not path.parent.exists():
            raise InputError("output folder does not exist", path=path.parent)
        if tmp.is_dir():
            shutil.rmtree(tmp)
        elif tmp.exists():
            tmp.unlink()
    if h5 is None:
        tmp.mkdir(exist_ok=True)
        h5 = _new_root(root, kind, params, classes)
    if not meta.exists():
        with open(tmp / "meta.json.tmp", "w") as f:
            json.dump({"kind": kind, "params": params_json, "classes": list(classes)}, f)
        os.replace(tmp / "meta.json.tmp", meta)
    _set_run_attrs(h5, command, dataset_attr, inputs)
    h5.flush()
    store = Store(h5, path, writable=True)
    store.parts, store._seq, store._folder = parts, seq, tmp
    try:
        yield store
    except BaseException as e:
        store.close()
        if isinstance(e, InputError) or unreadable_input_message(e) is not None:    # bad input: nothing to resume
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    for f in store._open_parts:
        with contextlib.suppress(Exception):
            f.close()
    store._open_parts = []
    images = h5.require_group("images")
    n = len([k for k in images.keys() if images[k].attrs.get("complete", 0)])
    for key, part in store.parts.items():
        if key in images:
            del images[key]
        with h5py.File(part, "r") as f:
            f.copy(f["images"][key], images, name=key)
        images[key].attrs["order"] = n
        n += 1
    h5.attrs["complete"] = 1
    h5.close()
    _fsync(root)
    os.replace(root, path)
    shutil.rmtree(tmp, ignore_errors=True)


def _set_run_attrs(h5, command, dataset_attr, inputs) -> None:
    h5.attrs["ws_version"] = __version__
    h5.attrs["command"] = command if command is not None else command_line()
    h5.attrs["dataset"] = _json_attr(dataset_attr)
    h5.attrs["inputs"] = _json_attr([s.as_input() if isinstance(s, Store) else s for s in inputs])
    h5.attrs["complete"] = 0


def _stored_shard(store):
    """``(I, N)`` of the ``shard`` parameter (``"I/N"``) a part written with ``--shard`` records,
    or None; a malformed one is an ``InputError`` naming the store."""
    text = store.params.get("shard")
    if text is None:
        return None
    try:
        i, n = (int(x) for x in str(text).split("/"))
    except ValueError:
        i, n = -1, 0
    if n < 1 or not 0 <= i < n:
        raise InputError(f"records shard {text!r}, not I/N with 0 <= I < N", path=store.path)
    return i, n


def shard_coverage(stores, *, partial: bool = False) -> dict:
    """Check that parts written with ``--shard I/N`` cover their input: one N, every I once.

    Returns ``{"shards": N or None, "missing_shards": ["I/N", ...]}``; missing shards are an
    ``InputError`` naming them unless ``partial``. Parts written without ``--shard`` hold the
    whole input each (two of them overlap, which the merge refuses)."""
    seen = {}
    count = None
    for s in stores:
        shard = _stored_shard(s)
        if shard is None:
            continue
        i, n = shard
        if count is None:
            count, first = n, s.path
        elif n != count:
            raise InputError(f"is shard {i}/{n}, {first} is a shard of {count}", path=s.path)
        if i in seen:
            raise InputError(f"overlaps {seen[i]}: both are shard {i}/{n}", path=s.path)
        seen[i] = s.path
    if count is None:
        return {"shards": None, "missing_shards": []}
    missing = [f"{i}/{count}" for i in range(count) if i not in seen]
    if missing and not partial:
        shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        raise InputError(f"the parts do not cover the input: shard {shown} missing "
                         "(--partial merges them anyway)", path=first)
    return {"shards": count, "missing_shards": missing}


def merge_stores(out, parts, *, force: bool = False, command=None, partial: bool = False) -> dict:
    """Join shards of a per-image store into one file.

    Refuses parts of different kinds, schemas, classes, datasets or parameters
    (other than ``shard``), parts that share an image, and (unless ``partial``) shards
    that do not cover the input (:func:`shard_coverage`). Returns a summary.
    """
    if not parts:
        raise InputError("no parts to merge")
    stores = []
    try:
        for p in parts:
            stores.append(open_store(p))
        first = stores[0]
        if first.kind not in PER_IMAGE_KINDS:
            raise InputError(f"{first.kind!r} stores are dataset-level and cannot be merged", path=first.path)

        def strip(params):
            return {k: v for k, v in params.items() if k not in ("shard", "workers", "resume", "force")}

        owner = {}
        for s in stores:
            if s.kind != first.kind or s.schema != first.schema:
                raise InputError(f"is a {s.kind} v{s.schema} store, {first.path} is {first.kind} v{first.schema}",
                                 path=s.path)
            if s.classes != first.classes:
                raise InputError(f"class list differs from {first.path}", path=s.path)
            if strip(s.params) != strip(first.params):
                raise InputError(f"parameters differ from {first.path}", path=s.path)
            d0, d1 = first.dataset or {}, s.dataset or {}
            if d0.get("sha256") != d1.get("sha256"):
                raise InputError(f"made from another dataset than {first.path}", path=s.path)
            for image_id in s.image_ids():
                if image_id in owner:
                    raise InputError(f"overlaps {owner[image_id]}", path=s.path, image_id=image_id)
                owner[image_id] = s.path
        coverage = shard_coverage(stores, partial=partial)
        params = strip(first.params)
        params["merged_from"] = [str(s.path) for s in stores]
        with create_store(out, first.kind, classes=first.classes, params=params, dataset=None,
                          inputs=stores, command=command, force=force) as dst:
            dst.h5.attrs["dataset"] = _json_attr(first.dataset)
            images = dst.h5.require_group("images")
            n = 0
            for s in stores:
                for image_id in s.image_ids():
                    key = image_key(image_id)
                    s.h5.copy(s.h5["images"][key], images, name=key)
                    images[key].attrs["order"] = n
                    n += 1
            for name, obj in first.h5.items():
                if name != "images":
                    first.h5.copy(obj, dst.h5, name=name)
        return {"kind": first.kind, "parts": len(stores), "images": n, "partial": bool(coverage["missing_shards"]),
                **coverage}
    finally:
        for s in stores:
            s.close()
