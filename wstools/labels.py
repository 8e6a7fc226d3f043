"""Label-map conventions shared by every package: 0 is the background, 1..K the manifest's
classes in order, and ``IGNORE`` marks a pixel that is unlabelled (a seed map's undecided
pixels, a crop's padding, VOC's object borders): no loss is taken and no score counted there.
"""

IGNORE = 255   # the PASCAL VOC convention
