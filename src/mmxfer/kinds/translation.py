"""Translation pairs (``source``, ``target``): featurised and batched like bitext retrieval pairs, but not
evaluated by retrieval on the trunk."""

from __future__ import annotations

from mmxfer.catalog import KINDS
from mmxfer.kinds.retrieval import Retrieval


@KINDS.register("translation")
class Translation(Retrieval):
    name = "translation"
    trunk_only = False
