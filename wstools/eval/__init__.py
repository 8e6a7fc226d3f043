"""Metrics of ``ws eval``: plain functions on numpy arrays and RLE masks.

* :mod:`.semantic` — confusion matrices and the PASCAL VOC mIoU protocol.
* :mod:`.instance` — COCO mask AP (identical to pycocotools' COCOeval), mAP^r, ABO.
* :mod:`.proposals` — proposal ABO / MABO / recall against the number kept.
* :mod:`.cams` — IRN's background-threshold sweep and classification mAP.
* :mod:`.assignment` — tag-assignment accuracy of labelled proposals (LIID Table 7).
"""
