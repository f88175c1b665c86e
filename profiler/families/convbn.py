"""The ``convbn`` family: one convolution + batch norm + activation, optionally max-pooled: a model's stem and
the 1 x 1 convolution of its head.

These are what a published model holds outside its blocks and what costs most of its glue: ResNet's 7 x 7 stem
with its max pooling is 11-18 % of a small ResNet's latency on a CPU, MobileNetV2's 320 -> 1280 head 3-4 %. As a
family they can be predicted like any block (a ``convbn`` bundle), so that the share of a model that block
predictors cover reaches the stem; without a bundle they are measured once per platform, like glue
(:attr:`ConvBNFamily.measured_without_bundle`).

Layers: ``kernel`` x ``kernel`` conv cin -> cout (stride, padding kernel // 2, no bias) + BatchNorm2d +
``act`` (``none``: no activation) + ``pool``: 3 x 3 max pooling of stride 2, padding 1. ``cin`` is 3 (an RGB
stem) or a multiple of 8.

Example:
    >>> from profiler.families import get_family
    >>> fam = get_family("convbn")
    >>> stem = {"input_hw": 224, "cin": 3, "cout": 64, "kernel": 7, "stride": 2, "act": "relu", "pool": True}
    >>> fam.counts(stem).macs == 112 * 112 * 64 * 3 * 49
    True
    >>> fam.counts(stem).params == sum(p.numel() for p in fam.build(stem).parameters())
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from profiler.families._base import register_family
from profiler.families._layers import Tally
from profiler.families._tallied import TalliedFamily, size_constraints
from profiler.space import Boolean, Categorical, Choice, Constraint, Integer, Space

__all__ = ["ConvBNFamily", "convbn"]


def _tally(cfg: Mapping[str, Any]) -> Tally:
    hw, cin, cout = cfg["input_hw"], cfg["cin"], cfg["cout"]
    t = Tally()
    t.tensor(cin, hw)
    out = t.conv(cin, cout, cfg["kernel"], cfg["stride"], hw)
    t.bn(cout, out)
    if cfg["act"] != "none":
        t.act(cout, out)
    if cfg["pool"]:
        t.maxpool(cout, out)
    return t


def _cin_ok(cfg: Mapping[str, Any]) -> bool:
    return cfg["cin"] == 3 or cfg["cin"] % 8 == 0


class ConvBNFamily(TalliedFamily):
    """Convolution + batch norm + activation (+ max pooling): stems and heads (see the module docstring)."""

    name = "convbn"
    #: Without a bundle for this family, its blocks are measured on the device (like glue) rather than refused.
    measured_without_bundle: ClassVar[bool] = True
    space = Space(
        [
            Integer("input_hw", 7, 224, log=True),
            Integer("cin", 3, 2048, log=True),
            Integer("cout", 8, 2048, step=8, log=True),
            Choice("kernel", (1, 3, 5, 7)),
            Choice("stride", (1, 2)),
            Categorical("act", ("none", "relu", "relu6", "hswish", "swish")),
            Boolean("pool"),
        ],
        [Constraint("cin", _cin_ok, "cin must be 3 (an RGB stem) or a multiple of 8"),
         *size_constraints(_tally, _cin_ok)],
    )
    tally = staticmethod(_tally)

    def build(self, config: Mapping[str, Any]) -> Any:  # -> torch.nn.Module
        from profiler.families._modules import ConvBN  # torch, only when a block is built

        cfg = self.validate(config)
        return ConvBN(cfg["cin"], cfg["cout"], cfg["kernel"], cfg["stride"], cfg["act"], cfg["pool"]).eval()


convbn = register_family(ConvBNFamily())
