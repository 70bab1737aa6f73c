"""Contrastive losses shared by the paper reproductions.

Temperature convention everywhere: logits = similarity / temperature.
"""

from common.losses.decoupled import dcl, dclw
from common.losses.hypersphere import alignment, uniformity
from common.losses.infonce import info_nce
from common.losses.ntxent import nt_xent
from common.losses.supervised import supcon

__all__ = ["alignment", "dcl", "dclw", "info_nce", "nt_xent", "supcon", "uniformity"]
