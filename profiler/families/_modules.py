"""The built-in families' torch modules: leaf modules, the activation table and the blocks themselves.

Kept apart from the families (:mod:`profiler.families.mbconv`, :mod:`profiler.families.resnet`) and the
closed-form counting (:mod:`profiler.families._layers`), so that what needs only a family's space and counts (a
predictor bundle's features, the CLI's ``predict``) does not import torch; ``family.build(config)`` imports this
module.
"""

from __future__ import annotations

import torch
from torch import nn

from profiler.families._layers import se_width

__all__ = ["ACTIVATIONS", "GATES", "Add", "ConvBN", "MBConv", "ResV1Block", "ResV2Block", "Scale", "SqueezeExcite"]

#: Activation name -> module class (``inplace`` is left off so forward hooks see separate tensors).
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "hswish": nn.Hardswish,
    "swish": nn.SiLU,
}
#: Squeeze-excite gate name -> module class.
GATES: dict[str, type[nn.Module]] = {"sigmoid": nn.Sigmoid, "hsigmoid": nn.Hardsigmoid}


# -- leaf modules ----------------------------------------------------------------------------------------------
class Add(nn.Module):
    """Elementwise sum of two tensors (a leaf, so the residual add is visible to per-module hooks)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class Scale(nn.Module):
    """Multiply features by a (broadcast) gate (a leaf, so the squeeze-excite product is visible to hooks)."""

    def forward(self, x: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        return x * gate


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation on ``channels`` with squeeze width ``squeeze``: global average pool, 1x1 conv
    (bias) -> ``act`` (ReLU unless given) -> 1x1 conv (bias) -> ``gate`` (Hardsigmoid or Sigmoid), then
    :class:`Scale`."""

    def __init__(self, channels: int, squeeze: int, gate: type[nn.Module], act: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, squeeze, 1, bias=True)
        self.relu = act()
        self.expand = nn.Conv2d(squeeze, channels, 1, bias=True)
        self.gate = gate()
        self.scale = Scale()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.gate(self.expand(self.relu(self.reduce(self.pool(x)))))
        return self.scale(x, s)  # positional, so forward hooks see both inputs


# -- mbconv ------------------------------------------------------------------------------------------------------
class MBConv(nn.Module):
    """One inverted residual block; ``expand``, ``se`` and ``add`` are ``None`` where the config has none.

    ``mid`` (default ``cin * expansion``) is the width between the 1x1 convolutions (no expansion convolution
    when it equals ``cin``); ``se_squeeze``, ``se_act`` and ``se_gate`` override the squeeze-excite's width
    (``se_width(mid)``), inner activation (ReLU) and gate (Sigmoid for ``swish``, else Hardsigmoid).
    """

    def __init__(self, cin: int, cout: int, expansion: int, kernel: int, stride: int, se: bool, act: str, *,
                 mid: int | None = None, se_squeeze: int | None = None, se_act: str | None = None,
                 se_gate: str | None = None) -> None:
        super().__init__()
        act_cls = ACTIVATIONS[act]
        mid = cin * expansion if mid is None else mid
        self.expand: nn.Sequential | None = None
        if mid != cin:
            self.expand = nn.Sequential(nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), act_cls())
        self.depthwise = nn.Sequential(
            nn.Conv2d(mid, mid, kernel, stride=stride, padding=kernel // 2, groups=mid, bias=False),
            nn.BatchNorm2d(mid),
            act_cls(),
        )
        self.se: SqueezeExcite | None = None
        if se:
            gate = GATES[se_gate] if se_gate else nn.Sigmoid if act == "swish" else nn.Hardsigmoid
            self.se = SqueezeExcite(mid, se_width(mid) if se_squeeze is None else se_squeeze, gate,
                                    ACTIVATIONS[se_act] if se_act else nn.ReLU)
        self.project = nn.Sequential(nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.add: Add | None = Add() if stride == 1 and cin == cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x if self.expand is None else self.expand(x)
        y = self.depthwise(y)
        if self.se is not None:
            y = self.se(y)
        y = self.project(y)
        return y if self.add is None else self.add(y, x)


# -- convbn -------------------------------------------------------------------------------------------------------
class ConvBN(nn.Module):
    """``k x k`` convolution (stride, padding k // 2, no bias) + BatchNorm2d + activation (``None``: none) +
    3 x 3 max pooling of stride 2 (``None``: none)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, act: str, pool: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act: nn.Module | None = ACTIVATIONS[act]() if act != "none" else None
        self.pool: nn.MaxPool2d | None = nn.MaxPool2d(3, 2, 1) if pool else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.conv(x))
        if self.act is not None:
            y = self.act(y)
        return y if self.pool is None else self.pool(y)


# -- resv1, resv2 -------------------------------------------------------------------------------------------------
def _conv(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False)


class ResV1Block(nn.Module):
    """ResNet v1 block: ``residual`` branch, ``shortcut`` (``None`` = identity), ``add``, final ``relu``."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, variant: str, *, width: int | None = None,
                 groups: int = 1) -> None:
        super().__init__()
        if variant == "basic":
            self.residual = nn.Sequential(
                _conv(cin, cout, kernel, stride), nn.BatchNorm2d(cout), nn.ReLU(),
                _conv(cout, cout, kernel), nn.BatchNorm2d(cout),
            )
        else:  # width (default cout // 4) and groups of the k x k convolution: ResNeXt, Wide ResNet
            width = cout // 4 if width is None else width
            self.residual = nn.Sequential(
                _conv(cin, width, 1), nn.BatchNorm2d(width), nn.ReLU(),
                _conv(width, width, kernel, stride, groups), nn.BatchNorm2d(width), nn.ReLU(),
                _conv(width, cout, 1), nn.BatchNorm2d(cout),
            )
        self.shortcut: nn.Sequential | None = None
        if not (stride == 1 and cin == cout):
            self.shortcut = nn.Sequential(_conv(cin, cout, 1, stride), nn.BatchNorm2d(cout))
        self.add = Add()
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.residual(x)
        skip = x if self.shortcut is None else self.shortcut(x)
        return self.relu(self.add(y, skip))


class ResV2Block(nn.Module):
    """Pre-activation block: ``preact`` (BN-ReLU), ``residual`` branch, ``shortcut`` (``None`` = identity on
    the raw input, else a strided 1x1 conv on the pre-activated input), ``add``."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, variant: str) -> None:
        super().__init__()
        self.preact = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU())
        if variant == "basic":
            self.residual = nn.Sequential(
                _conv(cin, cout, kernel, stride), nn.BatchNorm2d(cout), nn.ReLU(),
                _conv(cout, cout, kernel),
            )
        else:
            width = cout // 4
            self.residual = nn.Sequential(
                _conv(cin, width, 1), nn.BatchNorm2d(width), nn.ReLU(),
                _conv(width, width, kernel, stride), nn.BatchNorm2d(width), nn.ReLU(),
                _conv(width, cout, 1),
            )
        self.shortcut: nn.Conv2d | None = None
        if not (stride == 1 and cin == cout):
            self.shortcut = _conv(cin, cout, 1, stride)
        self.add = Add()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.preact(x)
        y = self.residual(a)
        skip = x if self.shortcut is None else self.shortcut(a)
        return self.add(y, skip)
