"""Dataset-level stores (``features``, ``graph``, ``assignment``): flat arrays indexed by proposal.

Layouts (M proposals of the dataset, K classes, E stored CSR entries):

* ``features``: ``image_ids`` (images,) str; ``image`` (M,) int64 into ``image_ids``;
  ``proposal`` (M,) int64 index within the image's proposals; ``box`` (M, 4) float32;
  ``feat`` (M, D) float32; ``prob`` (M, K+1) float32 (column 0 = background/noise);
  ``allowed`` (M, K+1) bool (tags + 0); optional ``truth`` (M,) int64 (synthetic
  stores: the true label, 0 = noise; used only to report accuracy).
* ``graph``: ``indptr`` (M+1,) int64, ``indices`` (E,) int64, ``weights`` (E,) float32
  (symmetric CSR, no self loops); ``unary`` (M, K+1) float32 terminal weights (the
  probabilities: LIID's proposal-terminal edge weights, Fan's p); ``allowed``;
  ``image_ids``, ``image``, ``proposal`` and optional ``truth`` copied from the features.
* ``assignment``: ``labels`` (M,) int64 in 0..K (0 = noise / not kept), ``image_ids``,
  ``image``, ``proposal``, optional ``truth``; attrs ``objective``, ``bound``, ``gap``,
  ``method``; ``component_sizes`` (components,) int64, ``component_exact`` (components,) bool.
"""

from __future__ import annotations

import h5py
import numpy as np

from ..errors import InputError

_STR = h5py.string_dtype()

PROPOSAL_INDEX = ("image_ids", "image", "proposal")


def _need(store, names):
    for name in names:
        if name not in store.h5:
            raise InputError(f"{store.kind} store lacks dataset {name!r}", path=store.path)


def write_index(store, image_ids, image, proposal, truth=None) -> None:
    h5 = store.h5
    h5.create_dataset("image_ids", data=np.asarray(list(image_ids), dtype=object), dtype=_STR)
    h5.create_dataset("image", data=np.asarray(image, dtype=np.int64))
    h5.create_dataset("proposal", data=np.asarray(proposal, dtype=np.int64))
    if truth is not None:
        h5.create_dataset("truth", data=np.asarray(truth, dtype=np.int64))


def read_index(store) -> dict:
    _need(store, PROPOSAL_INDEX)
    out = {"image_ids": [x.decode() if isinstance(x, bytes) else str(x) for x in store.h5["image_ids"][()]],
           "image": store.h5["image"][()].astype(np.int64), "proposal": store.h5["proposal"][()].astype(np.int64)}
    out["truth"] = store.h5["truth"][()].astype(np.int64) if "truth" in store.h5 else None
    M = out["image"].shape[0]
    if out["proposal"].shape != (M,):
        raise InputError("'image' and 'proposal' differ in length", path=store.path)
    if M and (out["image"].min() < 0 or out["image"].max() >= len(out["image_ids"])):
        raise InputError("'image' indexes outside 'image_ids'", path=store.path)
    return out


def write_features(store, *, image_ids, image, proposal, box, feat, prob, allowed, truth=None) -> None:
    """Fill a ``features`` store opened with ``create_store(..., "features", ...)``."""
    write_index(store, image_ids, image, proposal, truth)
    h5 = store.h5
    h5.create_dataset("box", data=np.asarray(box, dtype=np.float32))
    h5.create_dataset("feat", data=np.asarray(feat, dtype=np.float32), chunks=True)
    h5.create_dataset("prob", data=np.asarray(prob, dtype=np.float32))
    h5.create_dataset("allowed", data=np.asarray(allowed, dtype=bool))


def _check_prob_allowed(store, prob, allowed, num_classes, image_ids, image):
    M = prob.shape[0]
    K1 = num_classes + 1
    if prob.ndim != 2 or prob.shape[1] != K1:
        raise InputError(f"'prob' has shape {prob.shape}, expected (M, {K1}) for {num_classes} classes",
                         path=store.path)
    if allowed.shape != (M, K1):
        raise InputError(f"'allowed' has shape {allowed.shape}, expected ({M}, {K1})", path=store.path)
    bad = ~np.isfinite(prob).all(axis=1) | (prob < 0).any(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"proposal {i} has NaN, infinite or negative probabilities", path=store.path,
                         image_id=image_ids[image[i]])
    none = ~allowed.any(axis=1)
    if none.any():
        i = int(np.flatnonzero(none)[0])
        raise InputError(f"proposal {i} has no allowed label ({int(none.sum())} such rows)", path=store.path,
                         image_id=image_ids[image[i]])


def read_features(store, num_classes: int) -> dict:
    """All arrays of a ``features`` store, checked; ``feat`` is read as float32 (M, D)."""
    _need(store, ("box", "feat", "prob", "allowed"))
    out = read_index(store)
    M = out["image"].shape[0]
    out["feat"] = store.h5["feat"][()].astype(np.float32, copy=False)
    out["prob"] = store.h5["prob"][()].astype(np.float32, copy=False)
    out["allowed"] = store.h5["allowed"][()].astype(bool)
    out["box"] = store.h5["box"][()].astype(np.float32, copy=False)
    if out["feat"].ndim != 2 or out["feat"].shape[0] != M:
        raise InputError(f"'feat' has shape {out['feat'].shape}, expected ({M}, D)", path=store.path)
    if not np.isfinite(out["feat"]).all():
        i = int(np.flatnonzero(~np.isfinite(out["feat"]).all(axis=1))[0])
        raise InputError(f"proposal {i} has a NaN or infinite feature", path=store.path,
                         image_id=out["image_ids"][out["image"][i]])
    _check_prob_allowed(store, out["prob"], out["allowed"], num_classes, out["image_ids"], out["image"])
    return out


def write_graph(store, *, indptr, indices, weights, unary, allowed, image_ids, image, proposal, truth=None) -> None:
    """Fill a ``graph`` store."""
    write_index(store, image_ids, image, proposal, truth)
    h5 = store.h5
    h5.create_dataset("indptr", data=np.asarray(indptr, dtype=np.int64))
    h5.create_dataset("indices", data=np.asarray(indices, dtype=np.int64))
    h5.create_dataset("weights", data=np.asarray(weights, dtype=np.float32))
    h5.create_dataset("unary", data=np.asarray(unary, dtype=np.float32))
    h5.create_dataset("allowed", data=np.asarray(allowed, dtype=bool))


def read_graph(store, num_classes: int) -> dict:
    """All arrays of a ``graph`` store, checked: a valid, symmetric CSR without self loops,
    finite non-negative weights, and at least one allowed label per row."""
    _need(store, ("indptr", "indices", "weights", "unary", "allowed"))
    out = read_index(store)
    M = out["image"].shape[0]
    indptr = store.h5["indptr"][()].astype(np.int64)
    indices = store.h5["indices"][()].astype(np.int64)
    weights = store.h5["weights"][()].astype(np.float32)
    path = store.path
    if indptr.shape != (M + 1,) or indptr[0] != 0 or (np.diff(indptr) < 0).any() or indptr[-1] != indices.size:
        raise InputError(f"'indptr' is not a CSR row pointer for {M} rows and {indices.size} entries", path=path)
    if weights.shape != indices.shape:
        raise InputError("'weights' and 'indices' differ in length", path=path)
    if indices.size and (indices.min() < 0 or indices.max() >= M):
        raise InputError("'indices' point outside the graph", path=path)
    bad = ~np.isfinite(weights) | (weights < 0)
    if bad.any():
        e = int(np.flatnonzero(bad)[0])
        row = int(np.searchsorted(indptr, e, side="right") - 1)
        raise InputError(f"edge {row}-{int(indices[e])} has a negative or NaN weight ({weights[e]})", path=path,
                         image_id=out["image_ids"][out["image"][row]])
    import scipy.sparse as sp

    W = sp.csr_matrix((weights, indices, indptr), shape=(M, M))
    if W.diagonal().any() or np.any(np.repeat(np.arange(M), np.diff(indptr)) == indices):
        raise InputError("graph has self loops", path=path)
    diff = W - W.T
    if diff.nnz and np.abs(diff.data).max() > 1e-6 * max(1.0, float(np.abs(weights).max())):
        r, c = diff.nonzero()
        raise InputError(f"CSR is not symmetric (w[{int(r[0])},{int(c[0])}] != w[{int(c[0])},{int(r[0])}])",
                         path=path, image_id=out["image_ids"][out["image"][int(r[0])]])
    out.update(indptr=indptr, indices=indices, weights=weights)
    out["unary"] = store.h5["unary"][()].astype(np.float32)
    out["allowed"] = store.h5["allowed"][()].astype(bool)
    _check_prob_allowed(store, out["unary"], out["allowed"], num_classes, out["image_ids"], out["image"])
    return out


def write_assignment(store, *, labels, image_ids, image, proposal, truth=None, objective, bound, gap, method,
                     component_sizes, component_exact, report=None) -> None:
    """Fill an ``assignment`` store; ``report`` (JSON-able dict: label distribution, reductions,
    seconds per phase, warnings) is kept as the JSON attr ``report`` for ``ws info``."""
    write_index(store, image_ids, image, proposal, truth)
    h5 = store.h5
    h5.create_dataset("labels", data=np.asarray(labels, dtype=np.int64))
    h5.create_dataset("component_sizes", data=np.asarray(component_sizes, dtype=np.int64))
    h5.create_dataset("component_exact", data=np.asarray(component_exact, dtype=bool))
    h5.attrs["objective"] = float(objective)
    h5.attrs["bound"] = float(bound)
    h5.attrs["gap"] = float(gap)
    h5.attrs["method"] = method
    if report is not None:
        import json

        h5.attrs["report"] = json.dumps(report, sort_keys=False, default=float)



def read_assignment(store, num_classes: int) -> dict:
    """An ``assignment`` store's rows: ``image_ids`` (list of str), ``image``, ``proposal`` and
    ``labels`` (M,) int64 (0 = background, 1..K), ``truth`` or None. Refuses missing datasets,
    columns of different lengths, image indices outside ``image_ids`` and labels outside
    0..``num_classes``, naming the file."""
    _need(store, (*PROPOSAL_INDEX, "labels"))
    out = read_index(store)
    out["labels"] = store.h5["labels"][()].astype(np.int64)
    if out["labels"].shape != out["image"].shape:
        raise InputError("labels, image and proposal have different lengths", path=store.path)
    if len(out["labels"]) and (out["labels"].min() < 0 or out["labels"].max() > num_classes):
        raise InputError(f"labels outside 0..K={num_classes}", path=store.path)
    return out

# features written row block by row block (ws features), and the merge of features shards ----------

def append_features(store, *, image, proposal, box, feat, prob, allowed, truth=None, feat_dtype="float32") -> int:
    """Append rows to a ``features`` store (layout above), creating resizable datasets on the first
    call (call it once with zero rows to get empty datasets of the right width). Memory is bounded
    by the rows passed. Returns the number of rows now stored. Finish with :func:`write_image_ids`."""
    h5 = store.h5
    arrays = {"image": np.asarray(image, dtype=np.int64), "proposal": np.asarray(proposal, dtype=np.int64),
              "box": np.asarray(box, dtype=np.float32).reshape(-1, 4),
              "feat": np.asarray(feat, dtype=np.dtype(feat_dtype)),
              "prob": np.asarray(prob, dtype=np.float32), "allowed": np.asarray(allowed, dtype=bool)}
    if truth is not None:
        arrays["truth"] = np.asarray(truth, dtype=np.int64)
    n = arrays["image"].shape[0]
    for name, a in arrays.items():
        if name not in h5:
            chunks = (max(1, min(4096, 2 ** 20 // max(1, int(np.prod(a.shape[1:], dtype=np.int64)) * a.itemsize))),
                      *a.shape[1:])
            h5.create_dataset(name, shape=(0, *a.shape[1:]), maxshape=(None, *a.shape[1:]), dtype=a.dtype,
                              chunks=chunks)
        ds = h5[name]
        if ds.shape[1:] != a.shape[1:]:
            raise ValueError(f"{name}: rows of shape {a.shape[1:]} do not fit {ds.shape[1:]}")
        m = ds.shape[0]
        if n:
            ds.resize(m + n, axis=0)
            ds[m:m + n] = a
    return int(h5["image"].shape[0])


def write_image_ids(store, image_ids) -> None:
    """The ``image_ids`` list of a store filled with :func:`append_features`."""
    store.h5.create_dataset("image_ids", data=np.asarray(list(image_ids), dtype=object), dtype=_STR)


def merge_features(out, parts, *, force: bool = False, block: int = 65536) -> dict:
    """Concatenate the rows of ``features`` stores written with ``--shard I/N`` into ``out``.

    Refuses parts with other classes, datasets, parameters (apart from ``shard``) or feature
    width, and parts that list the same image. Image indices are offset into the joined
    ``image_ids``; rows are copied ``block`` at a time (memory bounded by a block)."""
    from .store import _json_attr, create_store, open_store

    if not parts:
        raise InputError("no parts to merge")
    stores = []
    try:
        for p in parts:
            stores.append(open_store(p, "features"))
        first = stores[0]

        def strip(params):
            return {k: v for k, v in params.items() if k not in ("shard", "workers", "resume", "force", "device",
                                                                  "batch_size")}

        owner, ids_of = {}, []
        width = None
        for s in stores:
            if s.schema != first.schema:
                raise InputError(f"is features v{s.schema}, {first.path} is v{first.schema}", path=s.path)
            if s.classes != first.classes:
                raise InputError(f"class list differs from {first.path}", path=s.path)
            if strip(s.params) != strip(first.params):
                raise InputError(f"parameters differ from {first.path}", path=s.path)
            if (first.dataset or {}).get("sha256") != (s.dataset or {}).get("sha256"):
                raise InputError(f"made from another dataset than {first.path}", path=s.path)
            _need(s, ("box", "feat", "prob", "allowed"))
            idx = read_index(s)
            w = s.h5["feat"].shape[1:]
            if width is not None and w != width:
                raise InputError(f"features of width {w} differ from {width} of {first.path}", path=s.path)
            width = w
            if (idx["truth"] is None) != (read_index(first)["truth"] is None):
                raise InputError(f"has 'truth' where {first.path} has not (or the reverse)", path=s.path)
            for image_id in idx["image_ids"]:
                if image_id in owner:
                    raise InputError(f"overlaps {owner[image_id]}", path=s.path, image_id=image_id)
                owner[image_id] = s.path
            ids_of.append(idx["image_ids"])
        params = strip(first.params)
        params["merged_from"] = [str(s.path) for s in stores]
        all_ids, rows = [], 0
        with create_store(out, "features", classes=first.classes, params=params, dataset=None, inputs=stores,
                          force=force) as dst:
            dst.h5.attrs["dataset"] = _json_attr(first.dataset)
            feat_dtype = first.h5["feat"].dtype
            for s, ids in zip(stores, ids_of):
                offset = len(all_ids)
                all_ids.extend(ids)
                h5 = s.h5
                M = h5["image"].shape[0]
                has_truth = "truth" in h5
                for a in range(0, max(M, 1), block):
                    b = min(M, a + block)
                    rows = append_features(
                        dst, image=h5["image"][a:b] + offset, proposal=h5["proposal"][a:b], box=h5["box"][a:b],
                        feat=h5["feat"][a:b], prob=h5["prob"][a:b], allowed=h5["allowed"][a:b],
                        truth=h5["truth"][a:b] if has_truth else None, feat_dtype=feat_dtype)
            write_image_ids(dst, all_ids)
        return {"kind": "features", "parts": len(stores), "images": len(all_ids), "proposals": rows}
    finally:
        for s in stores:
            s.close()
