"""The block-family contract, analytic counts and the family registry.

A block family is a name, a :class:`~profiler.space.Space`, ``build(config) -> torch.nn.Module``, the input
shape for a config and analytic counts (:class:`Counts`). The config <-> block mapping is one-to-one (paper,
Definitions 1-2). Families are looked up by name through the registry; users register their own with
:func:`register_family` without touching the package.

Example:
    >>> from profiler.families import get_family
    >>> fam = get_family("mbconv")
    >>> cfg = fam.space.sample(1, seed=0)[0]
    >>> fam.counts(cfg).params == sum(p.numel() for p in fam.build(cfg).parameters())
    True
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from profiler.space import Config, Space

__all__ = [
    "BlockFamily",
    "Counts",
    "FamilyError",
    "get_family",
    "list_families",
    "meta_counts",
    "module_counts",
    "register_family",
    "trace_seconds",
]

BYTES_PER_ELEMENT = {"float32": 4, "float16": 2, "bfloat16": 2}
#: Traced counts kept per family instance (least recently used dropped first): a few 4,000-candidate pools and
#: every training row, about 2 KB each.
COUNTS_CACHE_SIZE = 16_384

log = logging.getLogger("latency_acquisition.families")


class FamilyError(ValueError):
    """Unknown family name, or a family definition that breaks the contract."""


@dataclass(frozen=True)
class Counts:
    """Analytic cost counts of one block instance at batch size 1.

    ``macs``: multiply-accumulates of convolutions and linear layers (torch's FLOP counter reports 2 x macs);
    ``params``: learnable parameters (exactly ``sum(p.numel())`` of the built module);
    ``bytes_moved``: bytes read and written by each layer (input + output activations + weights), summed;
    ``layers``: number of convolution and linear layers (the kernels that dominate time);
    ``work``: per leaf module in forward order, ``(kind, macs, bytes)`` with kind ``conv`` (dense convolution or
    linear), ``depthwise`` (grouped convolution) or ``elementwise`` (everything else); the surrogate encoders
    derive roofline-style features from it. It is not part of equality (two counts are equal when the totals are).
    ``shapes``: per convolution (dense or grouped) in forward order, ``(kind, cin, cout, kernel, stride, hw_in,
    hw_out, groups)``, for features of how the work vectorises (channel and spatial alignment); empty for a
    family counted by tracing. Not part of equality either.
    """

    macs: int
    params: int
    bytes_moved: int
    layers: int
    work: tuple[tuple[str, int, int], ...] = field(default=(), compare=False)
    shapes: tuple[tuple[str, int, int, int, int, int, int, int], ...] = field(default=(), compare=False)

    def as_dict(self) -> dict[str, int]:
        d = asdict(self)
        d.pop("work")
        d.pop("shapes")
        return d


class BlockFamily:
    """Base class for block families. Subclasses set ``name`` and ``space`` and implement ``build`` and
    ``input_shape``; ``counts`` defaults to :func:`meta_counts` (the module built and run on torch's meta
    device: shapes only, nothing allocated or computed; cached by configuration key), built-in families
    override it with closed-form counts that the tests check against the module.
    """

    name: ClassVar[str] = ""
    space: ClassVar[Space]
    dtype: str = "float32"

    def build(self, config: Mapping[str, Any]):  # -> torch.nn.Module
        raise NotImplementedError

    def input_shape(self, config: Mapping[str, Any], batch_size: int = 1) -> tuple[int, ...]:
        raise NotImplementedError

    def counts(self, config: Mapping[str, Any]) -> Counts:
        """Counts of one configuration at batch size 1 (the default traces the module: :func:`meta_counts`)."""
        return _cached_counts(self, self.validate(config))

    def counts_of_valid(self, config: Mapping[str, Any]) -> Counts:
        """:meth:`counts` of a configuration already validated by this family; families with closed-form counts
        override it to skip the second validation."""
        if type(self).counts is BlockFamily.counts:  # the traced default: no second validation either
            return _cached_counts(self, config)
        return self.counts(config)

    # -- helpers shared by every family -------------------------------------------------------------------
    def validate(self, config: Mapping[str, Any]) -> Config:
        return self.space.validate(config)

    def key(self, config: Mapping[str, Any]) -> str:
        return self.space.key(config, family=self.name)

    def make_input(self, config: Mapping[str, Any], batch_size: int = 1, device: str = "cpu", seed: int = 0):
        import torch

        gen = torch.Generator(device="cpu").manual_seed(seed)
        x = torch.randn(self.input_shape(config, batch_size), generator=gen)
        return x.to(device)

    def __repr__(self) -> str:
        return f"<block family {self.name!r}: {self.space!r}>"


_CACHES: weakref.WeakKeyDictionary[BlockFamily, OrderedDict[tuple[str, str], Counts]] = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()
# per family: configurations traced in this process and the seconds they took (trace_seconds)
_TRACED: weakref.WeakKeyDictionary[BlockFamily, list[float]] = weakref.WeakKeyDictionary()


def trace_seconds(family: Any) -> float | None:
    """Seconds one configuration of ``family`` takes to count, where its counts are traced (a family that does
    not override :meth:`BlockFamily.counts`): the mean over what this process traced so far, ``nan`` before the
    first. ``None`` for a family with closed-form counts (or none): counting it is as good as free.

    The engine sizes the fresh part of a traced family's candidate pool by it (:mod:`acquisition.loop.query`).

        >>> from profiler.families import get_family
        >>> trace_seconds(get_family("mbconv")) is None   # closed-form counts
        True
    """
    if not isinstance(family, BlockFamily) or type(family).counts is not BlockFamily.counts:
        return None
    with _CACHE_LOCK:
        try:
            n, seconds = _TRACED.get(family, (0, 0.0))
        except TypeError:  # a family that cannot be weakly referenced: never cached, never tallied
            return float("nan")
    return seconds / n if n else float("nan")


def _cached_counts(family: BlockFamily, cfg: Config) -> Counts:
    """:func:`meta_counts` of a validated configuration, from the family's bounded cache when counted before.

    The cache lives beside the family (not on it: a family is pickled into the worker with every job)."""
    key = (family.key(cfg), family.dtype)
    with _CACHE_LOCK:
        try:
            cache = _CACHES.get(family)
            if cache is None:
                cache = _CACHES[family] = OrderedDict()
        except TypeError:  # a family that cannot be weakly referenced or hashed: counted every time
            return meta_counts(family, cfg)
        hit = cache.get(key)
        if hit is not None:
            cache.move_to_end(key)
            return hit
    t0 = time.perf_counter()
    counts = meta_counts(family, cfg)
    spent = time.perf_counter() - t0
    with _CACHE_LOCK:
        tally = _TRACED.setdefault(family, [0, 0.0])
        tally[0], tally[1] = tally[0] + 1, tally[1] + spent
        cache[key] = counts
        while len(cache) > COUNTS_CACHE_SIZE:
            cache.popitem(last=False)
    return counts


def meta_counts(family: BlockFamily, config: Mapping[str, Any]) -> Counts:
    """Counts of ``family.build(config)`` traced on torch's ``meta`` device: the module is built there and run
    on a meta tensor, so only shapes are propagated: no weights are allocated or initialised and no arithmetic
    is done, whatever the block's size. The numbers are those of :func:`module_counts` on the real module.

    A block that cannot run on meta tensors (data-dependent control flow, tensors created on an explicit
    device) is counted on the real module instead, as before.

    Cost: no memory whatever the block's size, but not free in CPU: torch (2.13) runs meta kernels through its
    Python reference implementations, about 10 ms for an ``mbconv``-sized block against 13 ms for the real
    module, 2.5 ms against 6.4 ms for the README's ``sepconv`` (``benchmarks/plugin_counts_bench.py``).
    :meth:`BlockFamily.counts` caches the result by key, so a configuration is traced once per process.

    Example:
        >>> from profiler.families import get_family
        >>> fam = get_family("resv1")
        >>> cfg = {"input_hw": 56, "cin": 64, "cout": 256, "kernel": 3, "stride": 1, "variant": "bottleneck"}
        >>> meta_counts(fam, cfg) == fam.counts(cfg)   # traced == closed form
        True
    """
    import torch

    cfg = dict(config)
    bpe = BYTES_PER_ELEMENT.get(family.dtype, 4)
    shape = tuple(family.input_shape(cfg))
    try:
        with torch.device("meta"):
            module = family.build(cfg)
        try:  # the forward outside the device context (no Python hook on every torch call)
            return module_counts(module, shape, bpe, device="meta")
        except Exception:  # a forward that makes tensors of its own (on the default device)
            with torch.device("meta"):
                return module_counts(module, shape, bpe)
    except Exception as exc:  # any failure on meta: count the real module (whose errors do propagate)
        log.debug("family %s: counting on the meta device failed (%s); counting the real module", family.name, exc)
    return module_counts(family.build(cfg), shape, bpe)


def module_counts(module, input_shape: tuple[int, ...], bytes_per_element: int = 4, device: str | None = None
                  ) -> Counts:
    """Counts of a built module, measured by running it once on zeros of ``device`` (default: the default
    device; a module built under ``torch.device("meta")`` runs on a meta tensor: how :func:`meta_counts` traces
    without allocating).

    MACs come from :class:`torch.utils.flop_counter.FlopCounterMode` (flops / 2); bytes moved are the input,
    output and parameter bytes of every leaf module; layers are the convolution and linear modules.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    moved = 0
    hooks = []
    work: list[tuple[str, int, int]] = []

    def hook(mod, inputs, output):
        nonlocal moved
        n = sum(t.numel() for t in inputs if isinstance(t, torch.Tensor))
        n += output.numel() if isinstance(output, torch.Tensor) else 0
        n += sum(p.numel() for p in mod.parameters(recurse=False))
        moved += n * bytes_per_element
        macs = 0
        if isinstance(mod, torch.nn.Conv2d) and isinstance(output, torch.Tensor):
            k = mod.kernel_size[0] * mod.kernel_size[1]
            macs = output.numel() * (mod.in_channels // mod.groups) * k
        elif isinstance(mod, torch.nn.Linear) and isinstance(output, torch.Tensor):
            macs = output.numel() * mod.in_features
        kind = ("depthwise" if isinstance(mod, torch.nn.Conv2d) and mod.groups > 1 else
                "conv" if isinstance(mod, torch.nn.Conv2d | torch.nn.Linear) else "elementwise")
        work.append((kind, int(macs), n * bytes_per_element))

    layers = 0
    for m in module.modules():
        if isinstance(m, torch.nn.Conv2d | torch.nn.Linear):
            layers += 1
        if not list(m.children()):
            hooks.append(m.register_forward_hook(hook))
    try:
        module.eval()
        counter = FlopCounterMode(display=False)
        x = torch.zeros(input_shape, device=device)
        with torch.inference_mode(), counter:
            module(x)
    finally:
        for h in hooks:
            h.remove()
    params = sum(p.numel() for p in module.parameters())
    return Counts(macs=counter.get_total_flops() // 2, params=params, bytes_moved=moved, layers=layers,
                  work=tuple(work))


_REGISTRY: dict[str, BlockFamily] = {}


def register_family(family: BlockFamily, *, replace: bool = False) -> BlockFamily:
    """Make ``family`` available by name (CLI ``--family``, :func:`get_family`). Returns it."""
    if not isinstance(family, BlockFamily):
        raise FamilyError(f"register_family needs a BlockFamily instance, got {type(family).__name__}")
    if not family.name or not family.name.replace("-", "_").isidentifier():
        raise FamilyError(f"family name {family.name!r} must be a non-empty identifier (letters, digits, -, _)")
    if not isinstance(getattr(family, "space", None), Space):
        raise FamilyError(f"family {family.name!r} has no space (a profiler.space.Space)")
    if family.name in _REGISTRY and not replace and _REGISTRY[family.name] is not family:
        raise FamilyError(f"a family named {family.name!r} is already registered (pass replace=True)")
    _REGISTRY[family.name] = family
    return family


def get_family(name: str) -> BlockFamily:
    """The registered family called ``name``; the error lists the known names."""
    _load_plugins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise FamilyError(f"unknown family {name!r}: known families are {', '.join(list_families())}") from None


def list_families() -> list[str]:
    _load_plugins()
    return sorted(_REGISTRY)


def _load_plugins() -> None:
    """Register the installed plug-in families (entry point group ``latency_acquisition.families``), once per
    process. The built-ins are registered by the package's ``__init__``, which Python runs before this module."""
    from profiler.plugins import GROUPS, load_entry_points

    load_entry_points(GROUPS["families"], _register_entry_point)


def _register_entry_point(name: str, obj: object) -> None:
    """An entry point's object: a :class:`BlockFamily` instance, or a subclass (instantiated without arguments)."""
    family = obj() if isinstance(obj, type) and issubclass(obj, BlockFamily) else obj
    if not isinstance(family, BlockFamily):
        raise FamilyError(f"expected a BlockFamily subclass or instance, got {type(obj).__name__}")
    if _REGISTRY.get(family.name) is not None and type(_REGISTRY[family.name]) is type(family):
        return  # its module registered it when imported
    register_family(family)



