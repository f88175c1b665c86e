"""Network search spaces: stacked blocks of one family (the paper's §4.2) and a MobileNetV2-like stage space.

A space turns a sequence of named choices into a :class:`~nas.network.Network`. The same definition serves
random sampling (:meth:`NetworkSpace.sample`, seeded) and Optuna's define-by-run search
(:meth:`NetworkSpace.suggest` with a ``trial``), so a search and a random sample draw from one space.

- ``stacked-<family>`` (:class:`StackedSpace`), for any registered family with the conventional parameters
  ``input_hw``, ``cin``, ``cout``, ``stride`` (the built-in ``mbconv``, ``resv1``, ``resv2``): a 32 x 32 RGB input (the
  paper searched CIFAR-10), a stem of 16-32 channels, then 3-8 blocks, each with its own width and its own
  value of every other parameter of the family (kernel, expansion, ...), at most two of them with stride 2
  (never below 8 x 8); a global-pool classifier of 10 classes.
- ``mbv2`` (:class:`MobileNetV2Space`): MobileNetV2's seven stages at 224 x 224 (stem 32 channels, stride 2;
  stage widths 16-24-32-64-96-160-320, strides 1-2-2-2-1-2-1, head 1 x 1 conv to 1280), searching per stage the
  depth (1 to MobileNetV2's own), the kernel (3/5/7), the expansion (3/4/6; 1 in the first stage), the
  squeeze-excite and the activation (relu6/hswish): a once-for-all / FBNet-style stage space.
- ``mbv3`` (:class:`MobileNetV3Space`): EfficientNet-B0's seven stages of ``mbconvx`` blocks at 224 x 224
  (stem 32 channels, stride 2; widths 16-24-40-80-112-192-320 times a multiplier of 0.5/0.75/1/1.25, rounded to
  multiples of 8; strides 1-2-2-2-1-2-1, head 1 x 1 conv to 1280), searching per stage the depth (1 to B0's
  own), the kernel (3/5), the width ratio ``mid / cin`` (2.5/3/4/6, rounded to a multiple of 8; 1 in the first
  stage), the squeeze-excite form (none, MobileNetV3's, EfficientNet's) and the activation
  (relu/hswish/swish). It calibrates predictions of real MobileNetV3s and EfficientNets.
- ``resnet`` (:class:`ResNetSpace`): ResNet's four stages of ``resv1`` blocks at 224 x 224 (a 7 x 7 stem of
  stride 4 to 56 x 56, widths 64-128-256-512 for basic blocks or 256-512-1024-2048 for bottlenecks, times a width
  multiplier of 0.5/0.75/1, strides 1-2-2-2), searching the block variant, the multiplier and each stage's depth
  (1 to ResNet-50's 3-4-6-3); a 1000-class head. It calibrates predictions of real ResNets on networks of our own.
- ``resnext`` (:class:`ResNeXtSpace`): the same stages of ``resv1x`` bottlenecks, searching the groups (1/8/32),
  the bottleneck width (cout / 4 times 1 or 2: ResNet-50, ResNeXt-50 32x4d and Wide ResNet-50-2 are all in it),
  the multiplier (0.5/1) and the depths. It calibrates predictions of real ResNeXts and Wide ResNets.

Example:
    >>> space = get_space("stacked-mbconv")
    >>> nets = space.sample(3, seed=0)
    >>> [n.input_hw for n in nets], all(3 <= len(n.blocks) <= 8 for n in nets)
    ([32, 32, 32], True)
    >>> space.sample(3, seed=0) == nets
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

import numpy as np

from nas.network import Block, Head, Network, NetworkError, Stem

__all__ = ["MobileNetV2Space", "MobileNetV3Space", "NetworkSpace", "ResNeXtSpace", "ResNetSpace", "StackedSpace",
           "get_space", "list_spaces"]


class _Draw(Protocol):
    def integer(self, name: str, low: int, high: int) -> int: ...

    def choice(self, name: str, options: Sequence[Any]) -> Any: ...


class _RandomDraw:
    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def integer(self, name: str, low: int, high: int) -> int:
        return int(self.rng.integers(low, high + 1))

    def choice(self, name: str, options: Sequence[Any]) -> Any:
        return options[int(self.rng.integers(len(options)))]


class _TrialDraw:
    """Optuna's define-by-run: every choice is a named trial parameter."""

    def __init__(self, trial: Any) -> None:
        self.trial = trial

    def integer(self, name: str, low: int, high: int) -> int:
        return int(self.trial.suggest_int(name, low, high))

    def choice(self, name: str, options: Sequence[Any]) -> Any:
        return self.trial.suggest_categorical(name, list(options))


class NetworkSpace:
    """Base class: a name and ``define(draw) -> Network``."""

    name: str = ""

    def define(self, draw: _Draw) -> Network:
        raise NotImplementedError

    def sample(self, n: int, seed: int = 0) -> list[Network]:
        """``n`` random networks (seeded; duplicates are drawn again, up to a limit)."""
        if int(n) < 1:
            raise NetworkError(f"n={n!r} is not allowed: expected at least 1 network")
        rng = np.random.default_rng(seed)
        out: list[Network] = []
        seen: set[str] = set()
        for _ in range(50 * int(n)):
            net = self.define(_RandomDraw(rng))
            if net.key not in seen:
                seen.add(net.key)
                out.append(net)
            if len(out) == n:
                return out
        raise NetworkError(f"space {self.name!r} holds fewer than {n} distinct networks")

    def suggest(self, trial: Any) -> Network:
        """The network of an Optuna ``trial`` (its parameters are the space's named choices)."""
        return self.define(_TrialDraw(trial))

    def __repr__(self) -> str:
        return f"<network space {self.name!r}>"


_CONVENTIONAL = ("input_hw", "cin", "cout", "stride")


@dataclass(frozen=True)
class StackedSpace(NetworkSpace):
    """``depth`` blocks of ``family`` in sequence (module docstring)."""

    family: str
    input_hw: int = 32
    min_depth: int = 3
    max_depth: int = 8
    max_downsample: int = 2
    min_hw: int = 8
    max_width: int = 128
    classes: int = 10

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"stacked-{self.family}"

    @cached_property
    def _dims(self) -> tuple[Any, list[int], list[Any]]:
        """The family, the widths and the other choice parameters (worked out once per space)."""
        from profiler.families import get_family
        from profiler.space import Choice, Integer

        fam = get_family(self.family)
        names = fam.space.names
        missing = [p for p in _CONVENTIONAL if p not in names]
        if missing:
            raise NetworkError(f"family {self.family!r} cannot be stacked: it has no {', '.join(missing)} "
                               "parameter(s)")
        cin = fam.space["cin"]
        step = int(getattr(cin, "step", 8) or 8) if isinstance(cin, Integer) else 8
        low = int(getattr(cin, "low", step)) if isinstance(cin, Integer) else step
        widths = [w for w in (16, 24, 32, 48, 64, 96, 128, 192, 256) if w % step == 0 and w >= low
                  and w <= self.max_width]
        others = []
        for d in fam.space.dimensions:
            if d.name in _CONVENTIONAL:
                continue
            if not isinstance(d, Choice):
                raise NetworkError(f"family {self.family!r} cannot be stacked: parameter {d.name!r} is not a "
                                   "choice")
            others.append(d)
        return fam, widths, others

    def define(self, draw: _Draw) -> Network:
        _, widths, others = self._dims
        stem_w = draw.choice("stem_width", [w for w in widths if w <= 32] or widths[:1])
        depth = draw.integer("depth", self.min_depth, self.max_depth)
        c, hw, down = stem_w, self.input_hw, 0
        blocks = []
        for i in range(depth):
            cout = draw.choice(f"b{i}_width", widths)
            stride = draw.choice(f"b{i}_stride", [1, 2])
            if stride == 2 and (down >= self.max_downsample or (hw - 1) // 2 + 1 < self.min_hw):
                stride = 1  # the choice is kept as drawn; the network cannot go smaller here
            cfg = {"input_hw": hw, "cin": c, "cout": cout, "stride": stride}
            for d in others:
                cfg[d.name] = draw.choice(f"b{i}_{d.name}", list(d.choices))
            blocks.append(Block(self.family, cfg))
            down += stride == 2
            c, hw = cout, (hw - 1) // stride + 1
        return Network(input_hw=self.input_hw, blocks=blocks, stem=Stem(cout=stem_w), head=Head(self.classes),
                       space=self.name)


# MobileNetV2 (Sandler et al. 2018, Table 2): (expansion, channels, repeats, stride) per stage
_MBV2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1))


@dataclass(frozen=True)
class MobileNetV2Space(NetworkSpace):
    """MobileNetV2's stages with per-stage depth, kernel, expansion, squeeze-excite, activation (docstring)."""

    input_hw: int = 224
    classes: int = 1000

    @property
    def name(self) -> str:  # type: ignore[override]
        return "mbv2"

    def define(self, draw: _Draw) -> Network:
        c, hw = 32, (self.input_hw - 1) // 2 + 1
        blocks = []
        for s, (t, width, repeats, stride) in enumerate(_MBV2_STAGES):
            depth = draw.integer(f"s{s}_depth", 1, repeats) if repeats > 1 else 1
            kernel = draw.choice(f"s{s}_kernel", [3, 5, 7])
            expansion = 1 if t == 1 else draw.choice(f"s{s}_expansion", [3, 4, 6])
            se = draw.choice(f"s{s}_se", [False, True])
            act = draw.choice(f"s{s}_act", ["relu6", "hswish"])
            for j in range(depth):
                st = stride if j == 0 else 1
                blocks.append(Block("mbconv", {"input_hw": hw, "cin": c, "cout": width, "expansion": expansion,
                                               "kernel": kernel, "stride": st, "se": se, "act": act}))
                c, hw = width, (hw - 1) // st + 1
        return Network(input_hw=self.input_hw, blocks=blocks, stem=Stem(cout=32, kernel=3, stride=2),
                       head=Head(self.classes, conv=1280), space=self.name)


# EfficientNet-B0's stages (MobileNetV3-Large's widths are close): expansion, width, depth, stride
_MBV3_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 40, 2, 2), (6, 80, 3, 2), (6, 112, 3, 1), (6, 192, 4, 2),
                (6, 320, 1, 1))


@dataclass(frozen=True)
class MobileNetV3Space(NetworkSpace):
    """EfficientNet-B0's stages of ``mbconvx`` blocks: per stage depth, kernel, width ratio, squeeze-excite form
    and activation (see the module docstring)."""

    input_hw: int = 224
    classes: int = 1000

    @property
    def name(self) -> str:  # type: ignore[override]
        return "mbv3"

    def define(self, draw: _Draw) -> Network:
        from profiler.families._layers import make_divisible

        mult = draw.choice("width", [0.5, 0.75, 1.0, 1.25])  # published widths: MobileNetV3 0.75, EfficientNet-B1
        stem = make_divisible(32 * mult, 8)
        c, hw = stem, (self.input_hw - 1) // 2 + 1
        blocks = []
        for s, (t, base, repeats, stride) in enumerate(_MBV3_STAGES):
            width = make_divisible(base * mult, 8)
            depth = draw.integer(f"s{s}_depth", 1, repeats) if repeats > 1 else 1
            kernel = draw.choice(f"s{s}_kernel", [3, 5])
            ratio = 1.0 if t == 1 else draw.choice(f"s{s}_ratio", [2.5, 3.0, 4.0, 6.0])
            se = draw.choice(f"s{s}_se", ["none", "hsigmoid", "sigmoid"])
            act = draw.choice(f"s{s}_act", ["relu", "hswish", "swish"])
            for j in range(depth):
                st = stride if j == 0 else 1
                blocks.append(Block("mbconvx", {"input_hw": hw, "cin": c, "mid": make_divisible(c * ratio, 8),
                                                "cout": width, "kernel": kernel, "stride": st, "act": act,
                                                "se": se}))
                c, hw = width, (hw - 1) // st + 1
        return Network(input_hw=self.input_hw, blocks=blocks, stem=Stem(cout=stem, kernel=3, stride=2),
                       head=Head(self.classes, conv=1280), space=self.name)


_RESNET_STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))  # basic width, ResNet-50 depth, stride


@dataclass(frozen=True)
class ResNetSpace(NetworkSpace):
    """ResNet's four stages of ``resv1`` blocks at 224 x 224 (see the module docstring)."""

    input_hw: int = 224
    classes: int = 1000

    @property
    def name(self) -> str:  # type: ignore[override]
        return "resnet"

    def define(self, draw: _Draw) -> Network:
        variant = draw.choice("variant", ["basic", "bottleneck"])
        mult = draw.choice("width", [0.5, 0.75, 1.0])
        stem = int(64 * mult)
        c, hw = stem, (self.input_hw - 1) // 4 + 1
        blocks = []
        for s, (width, repeats, stride) in enumerate(_RESNET_STAGES):
            cout = int(width * mult) * (4 if variant == "bottleneck" else 1)
            for j in range(draw.integer(f"s{s}_depth", 1, repeats)):
                st = stride if j == 0 else 1
                blocks.append(Block("resv1", {"input_hw": hw, "cin": c, "cout": cout, "kernel": 3, "stride": st,
                                              "variant": variant}))
                c, hw = cout, (hw - 1) // st + 1
        return Network(input_hw=self.input_hw, blocks=blocks, stem=Stem(cout=stem, kernel=7, stride=4),
                       head=Head(self.classes), space=self.name)


@dataclass(frozen=True)
class ResNeXtSpace(NetworkSpace):
    """ResNet-50's four stages of ``resv1x`` bottlenecks at 224 x 224 (see the module docstring)."""

    input_hw: int = 224
    classes: int = 1000

    @property
    def name(self) -> str:  # type: ignore[override]
        return "resnext"

    def define(self, draw: _Draw) -> Network:
        groups = draw.choice("groups", [1, 8, 32])
        wide = draw.choice("wide", [1, 2])  # the bottleneck width: cout / 4 times this
        mult = draw.choice("width", [0.5, 1.0])  # (0.75 would give widths that 32 groups do not divide)
        stem = int(64 * mult)
        c, hw = stem, (self.input_hw - 1) // 4 + 1
        blocks = []
        for s, (width, repeats, stride) in enumerate(_RESNET_STAGES):
            cout = int(width * mult) * 4
            for j in range(draw.integer(f"s{s}_depth", 1, repeats)):
                st = stride if j == 0 else 1
                blocks.append(Block("resv1x", {"input_hw": hw, "cin": c, "width": cout // 4 * wide, "cout": cout,
                                               "kernel": 3, "stride": st, "groups": groups}))
                c, hw = cout, (hw - 1) // st + 1
        return Network(input_hw=self.input_hw, blocks=blocks, stem=Stem(cout=stem, kernel=7, stride=4),
                       head=Head(self.classes), space=self.name)


def list_spaces() -> list[str]:
    """Built-in space names: ``stacked-<family>`` for every registered stackable family (its parameters other than
    ``input_hw``, ``cin``, ``cout``, ``stride`` all choices), ``mbv2``, ``mbv3``, ``resnet`` and ``resnext``."""
    from profiler.families import get_family, list_families

    out = []
    for f in list_families():
        names = get_family(f).space.names
        if all(p in names for p in _CONVENTIONAL):
            try:
                StackedSpace(f)._dims  # noqa: B018  (a width or ratio that is no choice: mbconvx, resv1x)
            except NetworkError:
                continue
            out.append(f"stacked-{f}")
    return [*out, "mbv2", "mbv3", "resnet", "resnext"]


def get_space(name: str) -> NetworkSpace:
    """A space by name (``stacked-<family>`` works for plug-in families too; the error lists the names)."""
    if isinstance(name, NetworkSpace):
        return name
    if name == "mbv2":
        return MobileNetV2Space()
    if name == "mbv3":
        return MobileNetV3Space()
    if name == "resnet":
        return ResNetSpace()
    if name == "resnext":
        return ResNeXtSpace()
    if isinstance(name, str) and name.startswith("stacked-"):
        from profiler.families import FamilyError, get_family

        try:
            get_family(name[len("stacked-"):])
        except FamilyError:
            pass
        else:
            space = StackedSpace(name[len("stacked-"):])
            space._dims  # noqa: B018 - checks the family can be stacked
            return space
    raise NetworkError(f"unknown network space {name!r}: known spaces are {', '.join(list_spaces())}")
