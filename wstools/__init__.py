"""ws: weakly supervised segmentation from image-level tags.

Each stage of the pipeline is a plain function in an algorithm package
(``wstools.proposals``, ``wstools.cam``, ``wstools.graph``, ``wstools.cut``,
...), a file contract in ``wstools.io`` and a command in ``wstools.cli``.
"""

__version__ = "0.1.0"
