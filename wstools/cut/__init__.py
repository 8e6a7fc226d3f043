"""Tag assignment on the similarity graph: LIID's multi-way cut, Fan et al.'s Eq. 8, attention baseline."""

from .attention import attention_cut, attention_labels
from .fan import fan_objective, fan_partition
from .multiway import CutResult, multiway_cut, potts_energy, upper_edges

METHODS = ("multiway", "fan", "attention")

__all__ = ["METHODS", "CutResult", "attention_cut", "attention_labels", "fan_objective", "fan_partition",
           "multiway_cut", "potts_energy", "upper_edges"]
