"""The ``mbconvx`` family: the inverted residual in the general form published models use.

``mbconv`` spells the block the way MobileNetV2 does (width = ``cin`` x an integer expansion, one squeeze-excite
form). Published MobileNetV3s and EfficientNets need more, and a decomposed model is matched only exactly
(:mod:`profiler.decompose`), so this family states the block directly:

- ``mid``: the width between the 1x1 convolutions, any multiple of 8 from ``cin`` to ``8 x cin`` (MobileNetV3's
  80 -> 200 and 80 -> 184 are expansions 2.5 and 2.3); ``mid == cin``: no expansion convolution;
- ``se``: ``none``; ``hsigmoid``, MobileNetV3's squeeze-excite (squeeze width ``make_divisible(mid / 4, 8)``,
  ReLU inside, Hardsigmoid gate); ``sigmoid``, EfficientNet's (squeeze width ``cin / 4``, the block's own
  activation inside, Sigmoid gate);
- ``act``: the block's activation (expansion and depthwise).

Layers otherwise as ``mbconv``: 1x1 conv + BatchNorm2d + act (when ``mid != cin``), depthwise k x k conv
(stride, padding k // 2) + BatchNorm2d + act, the squeeze-excite, 1x1 projection + BatchNorm2d, and the
residual Add when stride == 1 and cin == cout.

It is a family of its own, not new fields of ``mbconv``: every stored ``mbconv`` key, bundle and default study
stays valid, and a model's MobileNetV2 blocks match both (:meth:`profiler.decompose.Decomposition.prefer` picks
the one a user has a bundle for).

Example:
    >>> from profiler.families import get_family
    >>> fam = get_family("mbconvx")
    >>> cfg = {"input_hw": 14, "cin": 80, "mid": 184, "cout": 80, "kernel": 3, "stride": 1, "act": "hswish",
    ...        "se": "none"}
    >>> c = fam.counts(cfg)
    >>> c.macs, c.params
    (6094816, 31992)
    >>> c.params == sum(p.numel() for p in fam.build(cfg).parameters())
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from profiler.families._base import register_family
from profiler.families._layers import Tally, make_divisible
from profiler.families._tallied import TalliedFamily, size_constraints
from profiler.families.mbconv import inverted_residual_tally
from profiler.space import Categorical, Choice, Constraint, Integer, Space

if TYPE_CHECKING:
    from profiler.families._modules import MBConv

__all__ = ["MAX_EXPANSION", "MBConvXFamily", "mbconvx", "squeeze_width"]

#: Largest ``mid / cin``: published inverted residuals stay at or below 6.
MAX_EXPANSION = 8


def squeeze_width(cfg: Mapping[str, Any]) -> int:
    """The squeeze-excite's inner width of a configuration (0: none).

    >>> squeeze_width({"cin": 40, "mid": 240, "se": "hsigmoid"}), squeeze_width({"cin": 40, "mid": 240,
    ...                                                                          "se": "sigmoid"})
    (64, 10)
    """
    se = cfg["se"]
    if se == "hsigmoid":
        return make_divisible(cfg["mid"] / 4, 8)
    if se == "sigmoid":
        return max(1, cfg["cin"] // 4)
    return 0


def _tally(cfg: Mapping[str, Any]) -> Tally:
    return inverted_residual_tally(cfg["input_hw"], cfg["cin"], cfg["mid"], cfg["cout"], cfg["kernel"],
                                   cfg["stride"], squeeze_width(cfg))


def _mid_ok(cfg: Mapping[str, Any]) -> bool:
    return cfg["cin"] <= cfg["mid"] <= MAX_EXPANSION * cfg["cin"]


class MBConvXFamily(TalliedFamily):
    """The inverted residual of MobileNetV3 / EfficientNet / MNASNet (see the module docstring)."""

    name = "mbconvx"
    space = Space(
        [
            Integer("input_hw", 7, 224, log=True),
            Integer("cin", 8, 1024, step=8, log=True),
            Integer("mid", 8, 4096, step=8, log=True),
            Integer("cout", 8, 1024, step=8, log=True),
            Choice("kernel", (3, 5, 7)),
            Choice("stride", (1, 2)),
            Categorical("act", ("relu", "relu6", "hswish", "swish")),
            Categorical("se", ("none", "hsigmoid", "sigmoid")),
        ],
        [Constraint("mid", _mid_ok, f"mid must lie between cin and {MAX_EXPANSION} x cin"),
         *size_constraints(_tally, _mid_ok)],
    )
    tally = staticmethod(_tally)

    def build(self, config: Mapping[str, Any]) -> MBConv:
        from profiler.families._modules import MBConv  # torch, only when a block is built

        cfg = self.validate(config)
        se = cfg["se"]
        return MBConv(cfg["cin"], cfg["cout"], 1, cfg["kernel"], cfg["stride"], se != "none", cfg["act"],
                      mid=cfg["mid"], se_squeeze=squeeze_width(cfg) or None,
                      se_act=cfg["act"] if se == "sigmoid" else "relu",
                      se_gate=se if se != "none" else None).eval()


mbconvx = register_family(MBConvXFamily())
