"""Small building blocks shared by the built-in families, and the closed-form counting helper.

It mirrors :mod:`profiler.families._modules`, the leaf :class:`torch.nn.Module` s the blocks are built from
(``Add``, ``Scale``, ``SqueezeExcite``, the activation table): counting imports no torch.

- :class:`Tally`, plain integer arithmetic that walks the same layer sequence as a built block and adds up
  MACs, parameters, moved elements (inputs + output + own parameters of every leaf module, exactly what
  :func:`profiler.families._base.module_counts` measures with forward hooks), layers and the largest
  activation tensor. No torch is involved in the arithmetic.

Example:
    >>> t = Tally()
    >>> t.tensor(16, 32)                     # the block input: 16 x 32 x 32
    >>> hw = t.conv(16, 32, kernel=3, stride=2, hw=32)
    >>> t.bn(32, hw); t.act(32, hw)
    >>> (hw, t.macs, t.params, t.layers)
    (16, 1179648, 4672, 1)
    >>> t.counts().bytes_moved == 4 * t.elements
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field

from profiler.families._base import BYTES_PER_ELEMENT, Counts

__all__ = [
    "ACTIVATION_LIMIT",
    "MACS_LIMIT",
    "Tally",
    "conv_out",
    "make_divisible",
    "se_width",
]

#: Largest activation tensor a block may hold (elements at batch 1): a 224 x 224 x 64 feature map.
ACTIVATION_LIMIT = 224 * 224 * 64
#: Largest block cost in multiply-accumulates.
MACS_LIMIT = 2_000_000_000

def conv_out(hw: int, kernel: int, stride: int) -> int:
    """Output side of a convolution with padding ``kernel // 2`` and odd ``kernel``: ``(hw - 1) // stride + 1``."""
    if kernel % 2 != 1:
        raise ValueError(f"kernel={kernel} must be odd")
    return (hw - 1) // stride + 1


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` (half up), at least ``min_value`` (default
    ``divisor``) and never below 90% of ``value`` (the MobileNetV2/V3 / torchvision ``_make_divisible``).

    >>> [make_divisible(v) for v in (4, 12, 16, 10, 18, 96)]
    [8, 16, 16, 16, 24, 96]
    """
    min_value = divisor if min_value is None else min_value
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def se_width(mid: int) -> int:
    """Squeeze width of the squeeze-excite on ``mid`` channels: ``mid // 4`` rounded to a multiple of 8, >= 8."""
    return make_divisible(mid // 4, 8)


# -- closed-form counting ------------------------------------------------------------------------------------
@dataclass
class Tally:
    """Running closed-form counts of a block, one call per leaf module in forward order.

    ``elements`` counts, for every leaf module, the elements of its tensor inputs + its output + its own
    parameters (multiply by the bytes per element for ``bytes_moved``); ``max_activation`` is the largest
    feature tensor seen (inputs and outputs of every leaf, plus anything passed to :meth:`tensor`).
    """

    macs: int = 0
    params: int = 0
    elements: int = 0
    layers: int = 0
    max_activation: int = 0
    work: list = field(default_factory=list)  # (kind, macs, elements) per leaf: conv | depthwise | elementwise
    shapes: list = field(default_factory=list)  # (kind, cin, cout, kernel, stride, hw_in, hw_out, groups) per conv

    def tensor(self, channels: int, hw: int) -> None:
        """Note a feature map (e.g. the block input) for :attr:`max_activation`."""
        self.max_activation = max(self.max_activation, channels * hw * hw)

    def _leaf(self, inputs: int, output: int, params: int = 0, kind: str = "elementwise", macs: int = 0) -> None:
        self.elements += inputs + output + params
        self.params += params
        self.max_activation = max(self.max_activation, inputs, output)
        self.work.append((kind, macs, inputs + output + params))

    def conv(self, cin: int, cout: int, kernel: int, stride: int, hw: int, *, groups: int = 1,
             bias: bool = False) -> int:
        """A ``kernel`` x ``kernel`` convolution (padding ``kernel // 2``) on ``cin`` x ``hw`` x ``hw``; returns
        the output side."""
        out = conv_out(hw, kernel, stride)
        weights = cout * (cin // groups) * kernel * kernel
        macs = out * out * weights
        self.macs += macs
        self.layers += 1
        kind = "depthwise" if groups > 1 else "conv"
        self._leaf(cin * hw * hw, cout * out * out, weights + (cout if bias else 0), kind=kind, macs=macs)
        self.shapes.append((kind, cin, cout, kernel, stride, hw, out, groups))
        return out

    def bn(self, channels: int, hw: int) -> None:
        """BatchNorm2d: weight and bias are parameters (running statistics are buffers)."""
        n = channels * hw * hw
        self._leaf(n, n, 2 * channels)

    def act(self, channels: int, hw: int) -> None:
        """An elementwise activation (or gate)."""
        n = channels * hw * hw
        self._leaf(n, n)

    def pool(self, channels: int, hw: int) -> None:
        """Global average pooling to 1 x 1."""
        self._leaf(channels * hw * hw, channels)

    def maxpool(self, channels: int, hw: int) -> int:
        """3 x 3 max pooling of stride 2, padding 1 (ResNet's stem); returns the output side."""
        out = (hw - 1) // 2 + 1
        self._leaf(channels * hw * hw, channels * out * out)
        return out

    def scale(self, channels: int, hw: int) -> None:
        """:class:`Scale`: features (channels x hw x hw) times a channels x 1 x 1 gate."""
        n = channels * hw * hw
        self.elements += n + channels + n
        self.max_activation = max(self.max_activation, n)
        self.work.append(("elementwise", 0, n + channels + n))

    def add(self, channels: int, hw: int) -> None:
        """:class:`Add` of two equal feature maps."""
        n = channels * hw * hw
        self.elements += 3 * n
        self.max_activation = max(self.max_activation, n)
        self.work.append(("elementwise", 0, 3 * n))

    def counts(self, dtype: str = "float32") -> Counts:
        b = BYTES_PER_ELEMENT[dtype]
        return Counts(macs=self.macs, params=self.params, bytes_moved=self.elements * b, layers=self.layers,
                      work=tuple((k, m, e * b) for k, m, e in self.work), shapes=tuple(self.shapes))
