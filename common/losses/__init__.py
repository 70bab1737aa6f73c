"""Contrastive losses shared by the paper reproductions; ``common.losses.base`` holds the
building blocks for a paper's own loss.

Temperature convention everywhere: logits = similarity / temperature.
"""

from common.losses.infonce import info_nce
from common.losses.ntxent import nt_xent

__all__ = ["info_nce", "nt_xent"]
