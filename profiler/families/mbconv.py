"""The ``mbconv`` family: the MobileNetV2/V3 / EfficientNet inverted residual block.

Layers (batch 1, NCHW, float32), mid = cin * expansion:

- expansion != 1: 1x1 conv cin -> mid (no bias) + BatchNorm2d + act;
- depthwise k x k conv (stride, padding k // 2, groups = mid, no bias) + BatchNorm2d + act;
- se: squeeze-excite on mid channels, squeeze width ``make_divisible(mid // 4, 8)`` (at least 8): global
  average pool -> 1x1 conv (bias) -> ReLU -> 1x1 conv (bias) -> Hardsigmoid (Sigmoid for ``swish``) -> Scale;
- projection 1x1 conv mid -> cout (no bias) + BatchNorm2d, no activation;
- residual Add when stride == 1 and cin == cout.

Example:
    >>> from profiler.families import get_family
    >>> fam = get_family("mbconv")
    >>> cfg = {"input_hw": 56, "cin": 24, "cout": 24, "expansion": 6, "kernel": 3, "stride": 1,
    ...        "se": False, "act": "relu6"}
    >>> fam.input_shape(cfg)
    (1, 24, 56, 56)
    >>> c = fam.counts(cfg)
    >>> c.macs, c.params, c.layers
    (25740288, 8832, 3)
    >>> c.params == sum(p.numel() for p in fam.build(cfg).parameters())
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from profiler.families._base import register_family
from profiler.families._layers import Tally, se_width
from profiler.families._tallied import TalliedFamily, size_constraints
from profiler.space import Boolean, Categorical, Choice, Integer, Space

if TYPE_CHECKING:
    from profiler.families._modules import MBConv

__all__ = ["MBConv", "MBConvFamily", "inverted_residual_tally", "mbconv", "se_width"]


def inverted_residual_tally(hw: int, cin: int, mid: int, cout: int, kernel: int, stride: int,
                            squeeze: int) -> Tally:
    """Closed-form walk over an inverted residual's leaf modules, in forward order (``squeeze`` 0: no
    squeeze-excite; ``mid == cin``: no expansion convolution). Shared by ``mbconv`` and ``mbconvx``."""
    t = Tally()
    t.tensor(cin, hw)
    if mid != cin:
        t.conv(cin, mid, 1, 1, hw)
        t.bn(mid, hw)
        t.act(mid, hw)
    out = t.conv(mid, mid, kernel, stride, hw, groups=mid)
    t.bn(mid, out)
    t.act(mid, out)
    if squeeze:
        t.pool(mid, out)
        t.conv(mid, squeeze, 1, 1, 1, bias=True)
        t.act(squeeze, 1)
        t.conv(squeeze, mid, 1, 1, 1, bias=True)
        t.act(mid, 1)
        t.scale(mid, out)
    t.conv(mid, cout, 1, 1, out)
    t.bn(cout, out)
    if stride == 1 and cin == cout:
        t.add(cout, out)
    return t


def _tally(cfg: Mapping[str, Any]) -> Tally:
    mid = cfg["cin"] * cfg["expansion"]
    return inverted_residual_tally(cfg["input_hw"], cfg["cin"], mid, cfg["cout"], cfg["kernel"], cfg["stride"],
                                   se_width(mid) if cfg["se"] else 0)


class MBConvFamily(TalliedFamily):
    """MobileNetV2/V3 / EfficientNet inverted residual (see the module docstring)."""

    name = "mbconv"
    space = Space(
        [
            Integer("input_hw", 7, 224, log=True),
            Integer("cin", 8, 1024, step=8, log=True),
            Integer("cout", 8, 1024, step=8, log=True),
            Choice("expansion", (1, 3, 4, 6)),
            Choice("kernel", (3, 5, 7)),
            Choice("stride", (1, 2)),
            Boolean("se"),
            Categorical("act", ("relu", "relu6", "hswish", "swish")),
        ],
        size_constraints(_tally),
    )
    tally = staticmethod(_tally)

    def build(self, config: Mapping[str, Any]) -> MBConv:
        from profiler.families._modules import MBConv  # torch, only when a block is built

        cfg = self.validate(config)
        return MBConv(cfg["cin"], cfg["cout"], cfg["expansion"], cfg["kernel"], cfg["stride"], cfg["se"],
                      cfg["act"]).eval()


mbconv = register_family(MBConvFamily())


def __getattr__(name: str) -> Any:
    if name == "MBConv":  # the torch module, imported on first use
        from profiler.families import _modules

        return _modules.MBConv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
