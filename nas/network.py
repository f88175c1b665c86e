"""Networks: a stem, an ordered list of blocks of registered families, and a classifier head.

A :class:`Network` is plain data (JSON in and out: :meth:`Network.to_json`, :meth:`Network.from_json`). It is
checked when made: every block is a valid configuration of its family (plug-in families included), and the
blocks chain: a block's ``cin`` and ``input_hw`` are the previous output's channels and side (the stem's for the
first block). :meth:`Network.build` makes the torch module: stem (``k x k`` convolution, batch norm, ReLU),
the blocks as their families build them, head (an optional ``1 x 1`` convolution + batch norm + ReLU, global
average pooling, a linear classifier).

:data:`NETWORK` is a family-like object that lets the profiler measure whole networks (hardware in the loop):
``profile_configs(store, profiler, NETWORK, [net.to_dict()])`` stores and charges them like any block, under
family ``network``, keyed by a hash of the canonical JSON.

Example:
    >>> net = Network(input_hw=32, stem=Stem(cout=16), blocks=[
    ...     Block("mbconv", {"input_hw": 32, "cin": 16, "cout": 24, "expansion": 4, "kernel": 3, "stride": 2,
    ...                      "se": False, "act": "relu"})])
    >>> net.output_shape()
    (24, 16)
    >>> Network.from_json(net.to_json()) == net
    True
    >>> tuple(net.build()(net.make_input()).shape)
    (1, 10)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["NETWORK", "Block", "Head", "Network", "NetworkError", "NetworkFamily", "Stem", "block_io"]


class NetworkError(ValueError):
    """A network spec that is malformed, names an unknown family, or whose blocks do not chain."""


def _int(where: str, value: Any, low: int, high: int = 1 << 20) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or float(value) != int(value):
        raise NetworkError(f"{where}={value!r} is not allowed: expected an integer in [{low}, {high}]")
    v = int(value)
    if not low <= v <= high:
        raise NetworkError(f"{where}={value!r} is out of range: expected an integer in [{low}, {high}]")
    return v


@dataclass(frozen=True)
class Stem:
    """``k x k`` convolution (stride, padding k // 2, no bias) + batch norm + ReLU."""

    cout: int = 16
    kernel: int = 3
    stride: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "cout", _int("stem.cout", self.cout, 1, 4096))
        object.__setattr__(self, "kernel", _int("stem.kernel", self.kernel, 1, 15))
        object.__setattr__(self, "stride", _int("stem.stride", self.stride, 1, 4))
        if self.kernel % 2 != 1:
            raise NetworkError(f"stem.kernel={self.kernel} is not allowed: expected an odd kernel")


@dataclass(frozen=True)
class Head:
    """Optional ``1 x 1`` convolution to ``conv`` channels (0: none), global average pool, linear to ``classes``."""

    classes: int = 10
    conv: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", _int("head.classes", self.classes, 1, 100_000))
        object.__setattr__(self, "conv", _int("head.conv", self.conv, 0, 16384))


@dataclass(frozen=True)
class Block:
    """One block: a registered family's name and a configuration of it."""

    family: str
    config: Mapping[str, Any]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Block) and self.family == other.family and dict(self.config) == dict(other.config)

    def __hash__(self) -> int:
        return hash((self.family, json.dumps(dict(self.config), sort_keys=True, default=str)))


def block_io(family: Any, cfg: Mapping[str, Any]) -> tuple[tuple[int, int], tuple[int, int]]:
    """``((cin, input_hw), (cout, output_hw))`` of a validated block configuration.

    Families with the conventional parameters (``input_hw``, ``cin``, ``cout``, ``stride``, odd ``kernel``) are
    read directly; a family may define ``output_shape(config) -> (cout, output_hw)`` itself; otherwise the block
    is run once on torch's ``meta`` device (no memory, no compute).
    """
    own = getattr(family, "output_shape", None)
    if callable(own):
        shape_in = family.input_shape(cfg)
        cout, hw = own(cfg)
        return (int(shape_in[1]), int(shape_in[2])), (int(cout), int(hw))
    if all(k in cfg for k in ("input_hw", "cin", "cout", "stride")):
        hw = int(cfg["input_hw"])
        return (int(cfg["cin"]), hw), (int(cfg["cout"]), (hw - 1) // int(cfg["stride"]) + 1)
    import torch

    shape_in = family.input_shape(cfg)
    with torch.device("meta"):
        out = family.build(cfg)(torch.empty(shape_in))
    return (int(shape_in[1]), int(shape_in[2])), (int(out.shape[1]), int(out.shape[2]))


@dataclass(frozen=True, eq=False)
class Network:
    """Stem + ordered blocks + head at input ``input_hw`` x ``input_hw`` x ``in_channels`` (module docstring)."""

    input_hw: int
    blocks: Sequence[Block]
    stem: Stem = field(default_factory=Stem)
    head: Head = field(default_factory=Head)
    in_channels: int = 3
    space: str | None = None  # the space that sampled it (provenance only; not part of the identity)

    def __post_init__(self) -> None:
        from profiler.families import FamilyError, get_family

        object.__setattr__(self, "input_hw", _int("input_hw", self.input_hw, 1, 8192))
        object.__setattr__(self, "in_channels", _int("in_channels", self.in_channels, 1, 64))
        if not isinstance(self.stem, Stem) or not isinstance(self.head, Head):
            raise NetworkError("stem and head must be nas.Stem and nas.Head")
        blocks = []
        for i, b in enumerate(self.blocks):
            if isinstance(b, Mapping):
                b = Block(b.get("family"), b.get("config"))  # type: ignore[arg-type]
            if not isinstance(b, Block) or not isinstance(b.family, str) or not isinstance(b.config, Mapping):
                raise NetworkError(f"block {i} must have a family name and a config object, got {b!r}")
            try:
                fam = get_family(b.family)
            except FamilyError as e:
                raise NetworkError(f"block {i}: {e}") from None
            try:
                cfg = fam.validate(b.config)
            except ValueError as e:
                raise NetworkError(f"block {i} ({b.family}): {e}") from None
            blocks.append(Block(b.family, cfg))
        if not blocks:
            raise NetworkError("a network needs at least one block")
        object.__setattr__(self, "blocks", tuple(blocks))
        c, hw = self.stem.cout, (self.input_hw - 1) // self.stem.stride + 1
        for i, b in enumerate(blocks):
            (cin, hw_in), (cout, hw_out) = block_io(get_family(b.family), b.config)
            if (cin, hw_in) != (c, hw):
                raise NetworkError(f"block {i} ({b.family}) takes {cin} channels at {hw_in}x{hw_in} but the "
                                   f"{'stem' if i == 0 else f'block {i - 1}'} gives {c} channels at {hw}x{hw}")
            c, hw = cout, hw_out

    # -- identity ------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON-able form (``space`` only when set)."""
        d: dict[str, Any] = {"input_hw": self.input_hw, "in_channels": self.in_channels,
                             "stem": {"cout": self.stem.cout, "kernel": self.stem.kernel, "stride": self.stem.stride},
                             "blocks": [{"family": b.family, "config": dict(b.config)} for b in self.blocks],
                             "head": {"classes": self.head.classes, "conv": self.head.conv}}
        if self.space:
            d["space"] = self.space
        return d

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Network:
        if not isinstance(d, Mapping):
            raise NetworkError(f"a network spec must be a JSON object, got {type(d).__name__}")
        unknown = set(d) - {"input_hw", "in_channels", "stem", "blocks", "head", "space"}
        if unknown:
            raise NetworkError(f"unknown network field(s): {', '.join(sorted(unknown))}")
        if "input_hw" not in d or "blocks" not in d:
            raise NetworkError("a network spec needs 'input_hw' and 'blocks'")
        if not isinstance(d["blocks"], list):
            raise NetworkError(f"'blocks' must be a list, got {type(d['blocks']).__name__}")
        try:
            stem = Stem(**d.get("stem", {}))
            head = Head(**d.get("head", {}))
        except TypeError as e:
            raise NetworkError(f"bad stem or head: {e}") from None
        return cls(input_hw=d["input_hw"], blocks=d["blocks"], stem=stem, head=head,
                   in_channels=d.get("in_channels", 3), space=d.get("space"))

    @classmethod
    def from_json(cls, text: str) -> Network:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise NetworkError(f"a network spec is not valid JSON: {e}") from None
        return cls.from_dict(d)

    def identity(self) -> dict[str, Any]:
        d = self.to_dict()
        d.pop("space", None)
        return d

    @property
    def key(self) -> str:
        """A hash of the canonical spec (without ``space``): equal networks have equal keys."""
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:20]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Network) and self.identity() == other.identity()

    def __hash__(self) -> int:
        return hash(self.key)

    # -- shape and module ------------------------------------------------------------------------------------
    def output_shape(self) -> tuple[int, int]:
        """Channels and side of the last block's output."""
        from profiler.families import get_family

        last = self.blocks[-1]
        return block_io(get_family(last.family), last.config)[1]

    def families(self) -> list[str]:
        return sorted({b.family for b in self.blocks})

    def build(self):  # -> torch.nn.Module
        """The torch module (eval mode)."""
        from torch import nn

        from profiler.families import get_family

        s = self.stem
        layers: list[nn.Module] = [nn.Conv2d(self.in_channels, s.cout, s.kernel, stride=s.stride,
                                             padding=s.kernel // 2, bias=False), nn.BatchNorm2d(s.cout), nn.ReLU()]
        layers += [get_family(b.family).build(b.config) for b in self.blocks]
        c = self.output_shape()[0]
        if self.head.conv:
            layers += [nn.Conv2d(c, self.head.conv, 1, bias=False), nn.BatchNorm2d(self.head.conv), nn.ReLU()]
            c = self.head.conv
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, self.head.classes)]
        return nn.Sequential(*layers).eval()

    def input_shape(self, batch_size: int = 1) -> tuple[int, int, int, int]:
        return (batch_size, self.in_channels, self.input_hw, self.input_hw)

    def make_input(self, batch_size: int = 1, device: str = "cpu", seed: int = 0):
        import torch

        gen = torch.Generator(device="cpu").manual_seed(seed)
        return torch.randn(self.input_shape(batch_size), generator=gen).to(device)

    def __repr__(self) -> str:
        fams = "+".join(self.families())
        return f"<Network {self.key[:8]} {fams} x{len(self.blocks)} at {self.input_hw}px>"


class NetworkFamily:
    """The profiler's view of whole networks: a config is a network's JSON dict (see :data:`NETWORK`)."""

    name = "network"
    dtype = "float32"

    def validate(self, config: Mapping[str, Any] | Network) -> dict[str, Any]:
        net = config if isinstance(config, Network) else Network.from_dict(config)
        return net.identity()

    def key(self, config: Mapping[str, Any] | Network) -> str:
        net = config if isinstance(config, Network) else Network.from_dict(config)
        return net.key

    def build(self, config: Mapping[str, Any]):
        return Network.from_dict(config).build()

    def input_shape(self, config: Mapping[str, Any], batch_size: int = 1) -> tuple[int, ...]:
        return Network.from_dict(config).input_shape(batch_size)

    def make_input(self, config: Mapping[str, Any], batch_size: int = 1, device: str = "cpu", seed: int = 0):
        return Network.from_dict(config).make_input(batch_size, device, seed)

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return _network_family, ()

    def __repr__(self) -> str:
        return "<network family: whole networks (nas.Network specs)>"


def _network_family() -> NetworkFamily:
    return NETWORK


NETWORK = NetworkFamily()
