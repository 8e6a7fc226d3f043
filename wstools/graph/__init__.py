"""The dataset-level kNN similarity graph of Fan et al. (Eq. 5) and LIID (Eq. 10)."""

from .build import DEFAULT_DELTA, EDGE_RULES, WEIGHTINGS, edge_weights, knn_graph, unary_weights
from .knn import METHODS, knn, normalize, pca_project, recall_at_k

__all__ = ["DEFAULT_DELTA", "EDGE_RULES", "WEIGHTINGS", "METHODS", "edge_weights", "knn_graph", "unary_weights",
           "knn", "normalize", "pca_project", "recall_at_k"]
