"""The ``resv1x`` family: the ResNet v1 bottleneck in its general form, with its own width and grouping.

``resv1``'s bottleneck is ``cout // 4`` wide and ungrouped (ResNet-50/101/152). ResNeXt groups the k x k
convolution (``resnext50_32x4d``: 32 groups, twice the width) and Wide ResNet doubles its width; a decomposed
model is matched only exactly (:mod:`profiler.decompose`), so this family states both:

- ``width``: the bottleneck's inner width, a multiple of 16 from ``cout / 8`` to ``cout``;
- ``groups``: of the k x k convolution (1 to 64, dividing ``width``).

Layers as ``resv1``'s bottleneck: 1x1 conv cin -> width + BN + ReLU, k x k conv (stride, groups) + BN + ReLU,
1x1 conv width -> cout + BN; the shortcut is the identity when stride == 1 and cin == cout, else a strided 1x1
conv + BN; Add and a final ReLU. A family of its own so that every stored ``resv1`` key and bundle stays valid;
ResNet-50's blocks match both (:meth:`profiler.decompose.Decomposition.prefer`).

Example:
    >>> from profiler.families import get_family
    >>> fam = get_family("resv1x")
    >>> cfg = {"input_hw": 56, "cin": 64, "width": 128, "cout": 256, "kernel": 3, "stride": 1, "groups": 32}
    >>> c = fam.counts(cfg)
    >>> c.params == sum(p.numel() for p in fam.build(cfg).parameters())
    True
    >>> fam.build(cfg).residual[3].groups
    32
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from profiler.families._base import register_family
from profiler.families._layers import Tally
from profiler.families._tallied import TalliedFamily, size_constraints
from profiler.families.resnet import _tally
from profiler.space import Choice, Constraint, Integer, Space

__all__ = ["ResV1XFamily", "resv1x"]


def _shape_ok(cfg: Mapping[str, Any]) -> bool:
    return cfg["cout"] <= 8 * cfg["width"] and cfg["width"] <= cfg["cout"] and cfg["width"] % cfg["groups"] == 0


def _bottleneck(cfg: Mapping[str, Any]) -> Tally:
    return _tally(dict(cfg, variant="bottleneck"), preact=False)


class ResV1XFamily(TalliedFamily):
    """ResNeXt / Wide ResNet bottleneck (see the module docstring)."""

    name = "resv1x"
    space = Space(
        [
            Integer("input_hw", 7, 224, log=True),
            Integer("cin", 16, 2048, step=16, log=True),
            Integer("width", 16, 2048, step=16, log=True),
            Integer("cout", 16, 2048, step=16, log=True),
            Choice("kernel", (3, 5, 7)),
            Choice("stride", (1, 2)),
            Choice("groups", (1, 2, 4, 8, 16, 32, 64)),
        ],
        [Constraint("width", _shape_ok, "width must lie between cout / 8 and cout, and groups must divide it"),
         *size_constraints(_bottleneck, _shape_ok)],
    )
    tally = staticmethod(_bottleneck)

    def build(self, config: Mapping[str, Any]) -> Any:  # -> torch.nn.Module
        from profiler.families._modules import ResV1Block  # torch, only when a block is built

        cfg = self.validate(config)
        return ResV1Block(cfg["cin"], cfg["cout"], cfg["kernel"], cfg["stride"], "bottleneck", width=cfg["width"],
                          groups=cfg["groups"]).eval()


resv1x = register_family(ResV1XFamily())
