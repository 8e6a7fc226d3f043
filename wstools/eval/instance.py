"""Instance segmentation scores: COCO mask AP, mAP^r, ABO.

Two protocols, fed image by image (memory bounded by one image's masks):

COCO (Lin et al., ECCV 2014): the algorithm of pycocotools' ``COCOeval`` with
``iouType="segm"`` re-implemented on numpy, giving identical numbers (tested to
1e-9): per image and category, detections sorted by score (stable) and cut to
the 100 best; greedy matching at IoU 0.50:0.05:0.95 where a detection takes the
best still-free ground truth (ties to the later one, crowd regions never used up,
ignored ground truth only when no regular one matches); detections matched to
ignored ground truth or unmatched and outside the area range are ignored;
precision made monotone and sampled at 101 recall points; AP = mean over
thresholds, recall points and categories with ground truth. Area ranges: small
< 32^2 <= medium < 96^2 <= large (bounds inclusive as in pycocotools).

mAP^r (Hariharan et al., ECCV 2014 "SDS"; the weakly supervised instance
protocol of PRM (Zhou et al., CVPR 2018), LIID and Huang et al. 2021 at IoU
0.25, 0.5, 0.75): per class, all detections of the set sorted by score; each
is a true positive when its best-overlapping ground truth of that class has
IoU >= t and was not taken by a higher-scored detection; crowd ground truth is
treated like VOC "difficult" (a detection whose best overlap is a crowd region
counts neither way; crowd objects are not in the recall denominator). AP is the
VOC 2010+ all-point interpolated area under the monotone precision envelope;
mAP^r is the mean over classes with ground truth.

ABO: for every (non-crowd) ground-truth instance the best IoU among all
predicted masks of its image (any class), averaged over instances.
"""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils

from ..masks import as_rles, rle_iou as mask_iou

IOU_THRS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
REC_THRS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
MAX_DETS = (1, 10, 100)
AREA_RNGS = ((0 ** 2, 1e5 ** 2), (0 ** 2, 32 ** 2), (32 ** 2, 96 ** 2), (96 ** 2, 1e5 ** 2))
AREA_NAMES = ("all", "small", "medium", "large")
MAPR_THRS = (0.25, 0.5, 0.75)


def _last_argmax(values: np.ndarray) -> np.ndarray:
    """Index of the last maximum along axis 1."""
    g = values.shape[1]
    return g - 1 - np.argmax(values[:, ::-1], axis=1)


def coco_match(ious: np.ndarray, gt_ignore: np.ndarray, gt_crowd: np.ndarray, iou_thrs=IOU_THRS):
    """pycocotools' greedy matching of one image and category, all thresholds at once.

    Parameters
    ----------
    ious : (D, G) IoU, detections in score order, ground truth sorted non-ignored first
    gt_ignore, gt_crowd : (G,) bool in the same ground-truth order

    Returns
    -------
    dt_matched (T, D) bool, dt_ignore_match (T, D) bool (matched to an ignored GT),
    gt_matched (T, G) bool.
    """
    d_count, g_count = ious.shape
    t_count = len(iou_thrs)
    dtm = np.zeros((t_count, d_count), dtype=bool)
    dtig = np.zeros((t_count, d_count), dtype=bool)
    gtm = np.zeros((t_count, g_count), dtype=bool)
    if d_count == 0 or g_count == 0:
        return dtm, dtig, gtm
    thr = np.minimum(np.asarray(iou_thrs, dtype=np.float64), 1 - 1e-10)[:, None]      # (T, 1)
    ign = np.asarray(gt_ignore, dtype=bool)[None, :]
    crowd = np.asarray(gt_crowd, dtype=bool)[None, :]
    rows = np.arange(t_count)
    candidates = np.flatnonzero((ious >= thr.min()).any(axis=1))   # others match nothing at any threshold
    for d in candidates:
        row = ious[d][None, :]
        ok = (~gtm | crowd) & (row >= thr)                         # (T, G)
        ok_reg = ok & ~ign
        ok_ign = ok & ign
        has_reg = ok_reg.any(axis=1)
        has_ign = ok_ign.any(axis=1)
        if not (has_reg.any() or has_ign.any()):
            continue
        m_reg = _last_argmax(np.where(ok_reg, row, -1.0))
        m_ign = _last_argmax(np.where(ok_ign, row, -1.0))
        m = np.where(has_reg, m_reg, np.where(has_ign, m_ign, -1))
        hit = m >= 0
        dtm[hit, d] = True
        dtig[hit, d] = ign[0, m[hit]]
        gtm[rows[hit], m[hit]] = True
    return dtm, dtig, gtm


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC 2010+ all-point interpolated AP: area under the monotone precision envelope."""
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


class InstanceEvaluator:
    """Accumulate COCO AP, mAP^r and ABO image by image.

    ``categories`` are the category labels (any ints, e.g. 1..K) in report order.
    Call :meth:`add` for every image of the set, in the order pycocotools would
    visit them (sorted image ids) — the order only matters to break exact score
    ties between images — then :meth:`result`.
    """

    def __init__(self, categories, *, mapr_thresholds=MAPR_THRS, max_dets=MAX_DETS, keep_curves=False):
        self.categories = [int(c) for c in categories]
        self.cat_index = {c: k for k, c in enumerate(self.categories)}
        self.mapr_thresholds = tuple(float(t) for t in mapr_thresholds)
        self.max_dets = tuple(int(m) for m in max_dets)
        self.keep_curves = keep_curves
        k, a = len(self.categories), len(AREA_RNGS)
        # COCO evaluateImg results: per (category, area) lists over images
        self._coco = [[[] for _ in range(a)] for _ in range(k)]
        # mAP^r: per category lists of (scores, tp (R, D), ignore (R, D)) and positives
        self._r_scores = [[] for _ in range(k)]
        self._r_tp = [[] for _ in range(k)]
        self._r_ig = [[] for _ in range(k)]
        self._r_npos = np.zeros(k, dtype=np.int64)
        self._abo = []
        self._abo_labels = []
        self.images = 0

    def add(self, gt_masks, gt_labels, dt_masks, dt_labels, dt_scores, *, gt_crowd=None, height=None,
            width=None):
        """One image.

        Parameters
        ----------
        gt_masks : (G, H, W) bool or list of RLE dicts / counts; gt_labels : (G,) category labels
        dt_masks : (D, H, W) bool or list of RLE dicts / counts; dt_labels : (D,); dt_scores : (D,)
        gt_crowd : (G,) bool or None (no crowd)
        height, width : needed only for bare RLE counts
        """
        gt = as_rles(gt_masks, height, width)
        dt = as_rles(dt_masks, height, width)
        g_lab = np.asarray(gt_labels, dtype=np.int64).reshape(-1)
        d_lab = np.asarray(dt_labels, dtype=np.int64).reshape(-1)
        scores = np.asarray(dt_scores, dtype=np.float64).reshape(-1)
        crowd = np.zeros(len(gt), dtype=bool) if gt_crowd is None else np.asarray(gt_crowd, dtype=bool).reshape(-1)
        if not (len(gt) == len(g_lab) == len(crowd)) or not (len(dt) == len(d_lab) == len(scores)):
            raise ValueError("masks, labels, scores and crowd flags differ in length")
        for lab in np.concatenate([g_lab, d_lab]):
            if int(lab) not in self.cat_index:
                raise ValueError(f"category {int(lab)} is not one of {self.categories}")
        g_area = mask_utils.area(gt).astype(np.float64) if gt else np.zeros(0)
        d_area = mask_utils.area(dt).astype(np.float64) if dt else np.zeros(0)
        self.images += 1

        # ABO over all predictions of the image (any class), crowd excluded
        regular = np.flatnonzero(~crowd)
        if len(regular):
            iou_all = mask_iou([gt[i] for i in regular], dt)
            best = iou_all.max(axis=1) if iou_all.shape[1] else np.zeros(len(regular))
            self._abo.append(best)
            self._abo_labels.append(g_lab[regular])

        for c in np.unique(np.concatenate([g_lab, d_lab])):
            k = self.cat_index[int(c)]
            gi = np.flatnonzero(g_lab == c)
            di = np.flatnonzero(d_lab == c)
            order = di[np.argsort(-scores[di], kind="mergesort")]
            self._add_coco(k, [gt[i] for i in gi], crowd[gi], g_area[gi],
                           [dt[i] for i in order], scores[order], d_area[order])
            self._add_mapr(k, [gt[i] for i in gi], crowd[gi], [dt[i] for i in order], scores[order])

    def _add_coco(self, k, gt, crowd, g_area, dt, scores, d_area):
        max_det = self.max_dets[-1]
        dt, scores, d_area = dt[:max_det], scores[:max_det], d_area[:max_det]
        ious = mask_iou(dt, gt, crowd)       # (D, G), pycocotools' crowd IoU
        for a, (lo, hi) in enumerate(AREA_RNGS):
            if len(gt) == 0 and len(dt) == 0:
                continue
            g_ign = crowd | (g_area < lo) | (g_area > hi)
            gind = np.argsort(g_ign, kind="mergesort")
            g_ign_s = g_ign[gind]
            dtm, dtig, _ = coco_match(ious[:, gind], g_ign_s, crowd[gind])
            out_of_range = (d_area < lo) | (d_area > hi)
            dtig = dtig | (~dtm & out_of_range[None, :])
            self._coco[k][a].append((scores, dtm, dtig, int(np.count_nonzero(~g_ign_s))))

    def _add_mapr(self, k, gt, crowd, dt, scores):
        n_thr = len(self.mapr_thresholds)
        self._r_npos[k] += int(np.count_nonzero(~crowd))
        if len(dt) == 0:
            return
        tp = np.zeros((n_thr, len(dt)), dtype=bool)
        ig = np.zeros((n_thr, len(dt)), dtype=bool)
        if len(gt):
            ious = mask_iou(dt, gt)            # plain IoU (VOC has no crowd IoU)
            best = ious.argmax(axis=1)
            best_iou = ious[np.arange(len(dt)), best]
            for r, t in enumerate(self.mapr_thresholds):
                used = np.zeros(len(gt), dtype=bool)
                for d in range(len(dt)):
                    if best_iou[d] >= t:
                        j = best[d]
                        if crowd[j]:
                            ig[r, d] = True
                        elif not used[j]:
                            tp[r, d] = True
                            used[j] = True
        self._r_scores[k].append(scores)
        self._r_tp[k].append(tp)
        self._r_ig[k].append(ig)

    # results ----------------------------------------------------------------
    def coco_arrays(self):
        """pycocotools' ``eval['precision']`` (T, R, K, A, M) and ``eval['recall']`` (T, K, A, M)."""
        t_count, r_count = len(IOU_THRS), len(REC_THRS)
        k_count, a_count, m_count = len(self.categories), len(AREA_RNGS), len(self.max_dets)
        precision = -np.ones((t_count, r_count, k_count, a_count, m_count))
        recall = -np.ones((t_count, k_count, a_count, m_count))
        for k in range(k_count):
            for a in range(a_count):
                entries = self._coco[k][a]
                npig = sum(e[3] for e in entries)
                if npig == 0:
                    continue
                for mi, max_det in enumerate(self.max_dets):
                    if entries:
                        dt_scores = np.concatenate([e[0][:max_det] for e in entries])
                        dtm = np.concatenate([e[1][:, :max_det] for e in entries], axis=1)
                        dtig = np.concatenate([e[2][:, :max_det] for e in entries], axis=1)
                    else:
                        dt_scores = np.zeros(0)
                        dtm = dtig = np.zeros((t_count, 0), dtype=bool)
                    inds = np.argsort(-dt_scores, kind="mergesort")
                    dtm, dtig = dtm[:, inds], dtig[:, inds]
                    tps = np.logical_and(dtm, np.logical_not(dtig))
                    fps = np.logical_and(np.logical_not(dtm), np.logical_not(dtig))
                    tp_sum = np.cumsum(tps, axis=1).astype(dtype=float)
                    fp_sum = np.cumsum(fps, axis=1).astype(dtype=float)
                    for t in range(t_count):
                        tp, fp = tp_sum[t], fp_sum[t]
                        nd = len(tp)
                        rc = tp / npig
                        pr = tp / (fp + tp + np.spacing(1))
                        recall[t, k, a, mi] = rc[-1] if nd else 0
                        q = np.zeros(r_count)
                        if nd:
                            pr = np.maximum.accumulate(pr[::-1])[::-1]
                            pos = np.searchsorted(rc, REC_THRS, side="left")
                            inside = pos < nd
                            q[inside] = pr[pos[inside]]
                        precision[t, :, k, a, mi] = q
        return precision, recall

    def coco_stats(self):
        """The 12 numbers of ``COCOeval.summarize()`` (AP, AP50, AP75, APs, APm, APl, AR1, AR10,
        AR100, ARs, ARm, ARl; -1 where undefined) and per-category AP / AP50."""
        precision, recall = self.coco_arrays()
        mi = len(self.max_dets) - 1

        def summ(ap, iou=None, area=0, m=mi):
            s = precision if ap else recall
            if iou is not None:
                t = np.where(np.isclose(IOU_THRS, iou))[0]
                s = s[t]
            s = s[:, :, :, area, m] if ap else s[:, :, area, m]
            return -1.0 if len(s[s > -1]) == 0 else float(np.mean(s[s > -1]))

        names = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
        values = [summ(1), summ(1, .5), summ(1, .75), summ(1, area=1), summ(1, area=2), summ(1, area=3),
                  summ(0, m=0), summ(0, m=min(1, mi)), summ(0), summ(0, area=1), summ(0, area=2), summ(0, area=3)]
        per_cat = []
        for k in range(len(self.categories)):
            p = precision[:, :, k, 0, mi]
            p50 = precision[0, :, k, 0, mi]
            per_cat.append({"ap": float(np.mean(p[p > -1])) if (p > -1).any() else None,
                            "ap50": float(np.mean(p50[p50 > -1])) if (p50 > -1).any() else None})
        return dict(zip(names, values)), per_cat

    def mapr(self):
        """Per-class VOC AP at each mAP^r threshold and their means over classes with ground truth."""
        out = {f"{t:g}": {"per_class": [], "map": None} for t in self.mapr_thresholds}
        curves = {}
        for r, t in enumerate(self.mapr_thresholds):
            aps = []
            for k in range(len(self.categories)):
                npos = int(self._r_npos[k])
                if npos == 0:
                    out[f"{t:g}"]["per_class"].append(None)
                    continue
                if self._r_scores[k]:
                    s = np.concatenate(self._r_scores[k])
                    tp = np.concatenate([x[r] for x in self._r_tp[k]])
                    ig = np.concatenate([x[r] for x in self._r_ig[k]])
                    order = np.argsort(-s, kind="mergesort")
                    tp, ig = tp[order], ig[order]
                    keep = ~ig
                    tp = tp[keep]
                    tpc = np.cumsum(tp).astype(np.float64)
                    fpc = np.cumsum(~tp).astype(np.float64)
                    rec = tpc / npos
                    prec = tpc / np.maximum(tpc + fpc, np.finfo(np.float64).eps)
                else:
                    rec = prec = np.zeros(0)
                ap = voc_ap(rec, prec)
                aps.append(ap)
                out[f"{t:g}"]["per_class"].append(ap)
                if self.keep_curves:
                    curves[(t, self.categories[k])] = (rec, prec)
            out[f"{t:g}"]["map"] = float(np.mean(aps)) if aps else None
        if self.keep_curves:
            out["_curves"] = curves
        return out

    def abo(self):
        """(ABO over all instances, per-category ABO list with None where a class has none)."""
        if not self._abo:
            return 0.0, [None] * len(self.categories)
        best = np.concatenate(self._abo)
        labels = np.concatenate(self._abo_labels)
        per = [float(best[labels == c].mean()) if (labels == c).any() else None for c in self.categories]
        return float(best.mean()), per

    def result(self) -> dict:
        stats, per_cat = self.coco_stats()
        mapr = self.mapr()
        curves = mapr.pop("_curves", None)
        abo, abo_per = self.abo()
        per_class = []
        for k, c in enumerate(self.categories):
            row = {"category": c, "ap": per_cat[k]["ap"], "ap50": per_cat[k]["ap50"]}
            for t in self.mapr_thresholds:
                row[f"ap^r@{t:g}"] = mapr[f"{t:g}"]["per_class"][k]
            row["abo"] = abo_per[k]
            row["gt_instances"] = int(self._r_npos[k])
            per_class.append(row)
        # COCOeval's -1 ("no ground truth in this area range") is null in the JSON, as the other
        # undefined numbers are; coco_stats keeps -1 for parity with pycocotools
        coco = {k: (None if v == -1.0 else v) for k, v in stats.items()}
        out = {"coco": coco, "map_r": {t: v["map"] for t, v in mapr.items()}, "abo": abo,
               "images": self.images, "per_class": per_class}
        if curves is not None:
            out["_curves"] = curves
        return out
