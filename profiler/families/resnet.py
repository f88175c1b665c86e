"""The ``resv1`` (ResNet v1, He et al. 2016) and ``resv2`` (pre-activation ResNet, He et al. ECCV 2016) families.

Both share one space: input_hw, cin, cout, kernel, stride and variant (``basic`` or ``bottleneck``, whose
bottleneck width is cout // 4). All convolutions have no bias and padding k // 2; the stride sits on the
k x k convolution. The shortcut is the identity when stride == 1 and cin == cout, else a strided 1x1
convolution cin -> cout (option B).

- ``resv1``: conv-BN-ReLU ... conv-BN on the residual branch, BN after the projection shortcut, then
  :class:`~profiler.families._modules.Add` and a final ReLU.
- ``resv2``: a BN-ReLU pre-activation on the input, shared by the residual branch and the projection shortcut
  (the identity shortcut takes the raw input), BN-ReLU before every further conv, no BN after the
  projection, Add and no final activation.

Example:
    >>> from profiler.families import get_family
    >>> v1, v2 = get_family("resv1"), get_family("resv2")
    >>> cfg = {"input_hw": 56, "cin": 64, "cout": 128, "kernel": 3, "stride": 2, "variant": "basic"}
    >>> v1.counts(cfg).macs == v2.counts(cfg).macs == 28 * 28 * 128 * (64 * 9 + 128 * 9 + 64)
    True
    >>> v1.build(cfg).shortcut is not None and v1.build(dict(cfg, stride=1, cin=128)).shortcut is None
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from profiler.families._base import BlockFamily, Counts, get_family, register_family
from profiler.families._layers import ACTIVATION_LIMIT, MACS_LIMIT, Tally
from profiler.space import Categorical, Choice, Constraint, Integer, Space

# and, from profiler.families._modules on first use: ResV1Block, ResV2Block
__all__ = ["ResNetFamily", "ResV1Family", "ResV2Family", "resv1", "resv2"]


# -- closed form -------------------------------------------------------------------------------------------------
def _tally(cfg: Mapping[str, Any], preact: bool) -> Tally:
    """Closed-form walk over the leaf modules of a v1 (``preact=False``) or v2 block, in forward order; a
    configuration with ``width`` and ``groups`` (``resv1x``) is a bottleneck of that width and grouping."""
    hw, cin, cout = cfg["input_hw"], cfg["cin"], cfg["cout"]
    k, s = cfg["kernel"], cfg["stride"]
    groups = cfg.get("groups", 1)
    t = Tally()
    t.tensor(cin, hw)
    if preact:
        t.bn(cin, hw)
        t.act(cin, hw)
    if cfg["variant"] == "basic":
        out = t.conv(cin, cout, k, s, hw)
        t.bn(cout, out)
        t.act(cout, out)
        t.conv(cout, cout, k, 1, out)
    else:
        width = cfg.get("width", cout // 4)
        t.conv(cin, width, 1, 1, hw)
        t.bn(width, hw)
        t.act(width, hw)
        out = t.conv(width, width, k, s, hw, groups=groups)
        t.bn(width, out)
        t.act(width, out)
        t.conv(width, cout, 1, 1, out)
    if not preact:
        t.bn(cout, out)
    if not (s == 1 and cin == cout):
        t.conv(cin, cout, 1, s, hw)
        if not preact:
            t.bn(cout, out)
    t.add(cout, out)
    if not preact:
        t.act(cout, out)
    return t


def _v1_activation_size_ok(cfg: Mapping[str, Any]) -> bool:
    return _tally(cfg, preact=False).max_activation <= ACTIVATION_LIMIT


def _v1_macs_ok(cfg: Mapping[str, Any]) -> bool:
    return _tally(cfg, preact=False).macs <= MACS_LIMIT


def _v2_activation_size_ok(cfg: Mapping[str, Any]) -> bool:
    return _tally(cfg, preact=True).max_activation <= ACTIVATION_LIMIT


def _v2_macs_ok(cfg: Mapping[str, Any]) -> bool:
    return _tally(cfg, preact=True).macs <= MACS_LIMIT


def _dimensions() -> list[Any]:
    return [
        Integer("input_hw", 7, 224, log=True),
        Integer("cin", 16, 2048, step=16, log=True),
        Integer("cout", 16, 2048, step=16, log=True),
        Choice("kernel", (3, 5, 7)),
        Choice("stride", (1, 2)),
        Categorical("variant", ("basic", "bottleneck")),
    ]


_ACT_DESCRIPTION = f"the largest activation tensor must have at most {ACTIVATION_LIMIT:,} elements (224 x 224 x 64)"
_MACS_DESCRIPTION = f"the block must cost at most {MACS_LIMIT:.0e} multiply-accumulates"


# -- families ------------------------------------------------------------------------------------------------------
class ResNetFamily(BlockFamily):
    """Shared implementation of ``resv1`` and ``resv2`` (``preact`` selects the block)."""

    preact: bool = False

    def build(self, config: Mapping[str, Any]) -> Any:  # -> torch.nn.Module
        from profiler.families._modules import ResV1Block, ResV2Block  # torch, only when a block is built

        cfg = self.validate(config)
        block_cls = ResV2Block if self.preact else ResV1Block
        return block_cls(cfg["cin"], cfg["cout"], cfg["kernel"], cfg["stride"], cfg["variant"]).eval()

    def input_shape(self, config: Mapping[str, Any], batch_size: int = 1) -> tuple[int, int, int, int]:
        cfg = self.validate(config)
        return (batch_size, cfg["cin"], cfg["input_hw"], cfg["input_hw"])

    def counts(self, config: Mapping[str, Any]) -> Counts:
        return _tally(self.validate(config), preact=self.preact).counts(self.dtype)

    def counts_of_valid(self, config: Mapping[str, Any]) -> Counts:
        """:meth:`counts` of a configuration this family already validated (no second validation: the feature
        encoder calls it for thousands of candidates)."""
        return _tally(config, preact=self.preact).counts(self.dtype)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # Unpickle to the registered instance (also in a fresh worker process).
        return get_family, (self.name,)


class ResV1Family(ResNetFamily):
    """ResNet v1 (post-activation, option-B projection shortcut)."""

    name = "resv1"
    preact = False
    space = Space(_dimensions(), [
        Constraint("activation_size", _v1_activation_size_ok, _ACT_DESCRIPTION),
        Constraint("macs", _v1_macs_ok, _MACS_DESCRIPTION),
    ])


class ResV2Family(ResNetFamily):
    """Pre-activation ResNet (identity mappings)."""

    name = "resv2"
    preact = True
    space = Space(_dimensions(), [
        Constraint("activation_size", _v2_activation_size_ok, _ACT_DESCRIPTION),
        Constraint("macs", _v2_macs_ok, _MACS_DESCRIPTION),
    ])


resv1 = register_family(ResV1Family())
resv2 = register_family(ResV2Family())


def __getattr__(name: str) -> Any:
    if name in ("ResV1Block", "ResV2Block"):  # the torch modules, imported on first use
        from profiler.families import _modules

        return getattr(_modules, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
