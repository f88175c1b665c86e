"""From a torch model to blocks: :func:`from_torch` maps each part of a model onto a registered block family
where it matches **exactly**, and calls the rest *glue*.

**How** (module hooks, not torch.fx): the model runs once on a zero input of ``input_shape`` with a pre- and a
post-forward hook on every module. The hooks record every call of a layer (convolution, batch norm, activation,
pooling, linear, ...) in the order it ran, with its input and output shapes, and, for every module, the run of
layer calls it made. Hooks see what actually ran: a ReLU module reused three times (torchvision's
``Bottleneck``) is three calls, in forward order, and control flow in ``forward`` (timm's blocks) needs no
tracing. torch.fx would give the same layers for the models here, but it fails on data-dependent Python in some
timm models and loses the module boundaries a block match starts from.

**Matching.** Walking the module tree from the top, each module called once is offered to every family with a
matcher (:func:`register_matcher`; ``mbconv``, ``mbconvx``, ``resv1`` and ``resv1x`` are built in). A matcher
reads the layer calls and proposes a configuration; the proposal is then **checked**: the family builds the
block, the block runs on the same input shape, and its layer calls (type, channels, kernel, stride, groups,
bias, activation kind, input shape) must be the module's, call for call, with the same output shape and
parameter count. Only then is the module a block (of the first family that matched; the others that matched
too are its ``alternatives``, see :meth:`Decomposition.prefer`); otherwise its children are walked, and a layer
no block took is glue. Layers that compute nothing (``Identity``, dropout, drop-path) and the functional
residual add and gating product are not compared (the family's own ``Add`` and ``Scale`` leaves are left out on
its side likewise), nor is a squeeze-excite's global pool (a module in torchvision, a functional mean in timm);
the residual's presence is checked where the module says (``use_res_connect``, ``apply_residual``,
``has_skip``, ``has_residual``).

**Glue** is every other layer call, each described by a spec that rebuilds it alone (:mod:`profiler.glue` measures
it once per platform). A :class:`Decomposition` reports the share of the model's multiply-accumulates that its
blocks hold; functional operations outside modules (a flatten, an add between blocks) are neither blocks nor
glue, and cost little.

Example:
    >>> import torch.nn as nn
    >>> from profiler.families import get_family
    >>> cfg = {"input_hw": 32, "cin": 16, "cout": 16, "expansion": 6, "kernel": 3, "stride": 1, "se": False,
    ...        "act": "relu6"}
    >>> model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), get_family("mbconv").build(cfg),
    ...                       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    >>> d = from_torch(model, (1, 3, 32, 32), name="toy")
    >>> [(p.kind, p.family or p.op["type"]) for p in d.parts]
    [('glue', 'Conv2d'), ('glue', 'ReLU'), ('block', 'mbconv'), ('glue', 'AdaptiveAvgPool2d'),
     ('glue', 'Flatten'), ('glue', 'Linear')]
    >>> d.params == sum(p.numel() for p in model.parameters()), round(d.block_macs_share, 3)
    (True, 0.901)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

__all__ = ["FORMAT", "Decomposition", "DecompositionError", "LayerCall", "ModuleCall", "Part", "from_torch", "matchers",
           "register_matcher"]

# layers that compute nothing at inference: never compared, never glue
FREE = ("Identity", "Dropout", "Dropout2d", "DropPath", "StochasticDepth", "Add", "Scale")
# activation classes (torch's and timm's) by what they compute
ACT_KIND = {"ReLU": "relu", "ReLU6": "relu6", "Hardswish": "hswish", "HardSwish": "hswish", "HardSwishMe": "hswish",
            "SiLU": "swish", "Swish": "swish", "SwishMe": "swish", "Sigmoid": "sigmoid", "Hardsigmoid": "hsigmoid",
            "HardSigmoid": "hsigmoid", "HardSigmoidMe": "hsigmoid", "GELU": "gelu", "Tanh": "tanh"}
# modules recorded as one layer even when they hold children (timm's BatchNormAct2d holds its activation)
PRIMITIVE = ("Conv2d", "BatchNorm2d", "BatchNormAct2d", "Linear", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
             "Flatten")
RESIDUAL_ATTRS = ("use_res_connect", "apply_residual", "has_skip", "has_residual")
#: The longest run of layer calls outside modules offered to the matchers as one block (:func:`_match_runs`).
MAX_RUN = 8
#: Written into every decomposition's JSON; a cache holding another format is decomposed again (none: the first;
#: 2: families matched as alternatives, ``mbconvx``/``resv1x``, squeeze-excite pools not compared; 3: ``convbn``
#: and runs of layers outside modules).
FORMAT = 3


class DecompositionError(ValueError):
    """A decomposition that cannot be read."""


@dataclass
class LayerCall:
    """One call of a layer: its module path, the module, and the shapes it read and wrote."""

    path: str
    module: Any
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...] = ()

    @property
    def type(self) -> str:
        return type(self.module).__name__

    def signature(self) -> tuple[Any, ...]:
        """What the layer computes: its kind, its sizes and the shape it reads (not its name or weights)."""
        m, t = self.module, self.type
        if t == "Conv2d" or (hasattr(m, "weight") and getattr(m, "weight", None) is not None
                             and hasattr(m, "groups") and hasattr(m, "kernel_size")):
            return ("conv", m.in_channels, m.out_channels, tuple(m.kernel_size), tuple(m.stride),
                    tuple(m.padding) if not isinstance(m.padding, str) else m.padding, m.groups, m.bias is not None,
                    tuple(m.dilation), self.in_shape)
        if "BatchNorm" in t:
            return ("bn", m.num_features, self.in_shape)
        if t in ACT_KIND:
            return ("act", ACT_KIND[t], self.in_shape)
        if t == "Linear":
            return ("linear", m.in_features, m.out_features, m.bias is not None)
        return (t, self.in_shape, self.out_shape)


@dataclass
class ModuleCall:
    """One call of a module: its path, the module, the shapes, and the layer calls it made (``layers[start:end]``
    of the trace)."""

    path: str
    module: Any
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    start: int
    end: int
    layers: list[LayerCall] = field(default_factory=list)

    def compared(self) -> list[LayerCall]:
        """The layers a match compares (those that compute something)."""
        return [c for c in self.layers if c.type not in FREE]

    def checked(self) -> list[LayerCall]:
        """:meth:`compared` less global average pools (a squeeze-excite's squeeze, which timm computes as a
        functional mean and torchvision as a module)."""
        return [c for c in self.compared() if not (c.type == "AdaptiveAvgPool2d" and c.out_shape[2:] == (1, 1))]


@dataclass(frozen=True)
class Part:
    """A block (``family`` and ``config``) or a glue layer (``op``: what :mod:`profiler.glue` rebuilds), with the
    module path it came from, its multiply-accumulates and parameters. ``alternatives``: the ``(family,
    config)`` of every other family whose block matched the same module exactly (an ``mbconv`` is also an
    ``mbconvx``)."""

    kind: str
    path: str
    macs: int
    params: int
    family: str | None = None
    config: dict[str, Any] | None = None
    op: dict[str, Any] | None = None
    alternatives: tuple[tuple[str, dict[str, Any]], ...] = ()

    def as_family(self, families: Collection[str]) -> Part:
        """This block as the first of its matching families that is in ``families`` (itself when none is)."""
        if self.kind != "block" or self.family in families:
            return self
        for fam, cfg in self.alternatives:
            if fam in families:
                rest = tuple(a for a in self.alternatives if a[0] != fam)
                return replace(self, family=fam, config=cfg, alternatives=((self.family or "", self.config or {}),
                                                                           *rest))
        return self


@dataclass
class Decomposition:
    """A model as blocks and glue, in the order they run (see the module docstring)."""

    name: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    params: int  # the whole model's parameters
    parts: list[Part]
    format: int = FORMAT  # of the JSON it was read from (0: written before formats were)

    @property
    def blocks(self) -> list[Part]:
        return [p for p in self.parts if p.kind == "block"]

    @property
    def glue(self) -> list[Part]:
        return [p for p in self.parts if p.kind == "glue"]

    @property
    def macs(self) -> int:
        return sum(p.macs for p in self.parts)

    @property
    def block_macs_share(self) -> float:
        """The share of the model's multiply-accumulates held by its blocks."""
        total = self.macs
        return sum(p.macs for p in self.blocks) / total if total else 0.0

    def families(self) -> list[str]:
        return sorted({p.family for p in self.blocks if p.family})

    def prefer(self, families: Collection[str]) -> Decomposition:
        """The same decomposition with its blocks in as few of ``families`` as they match: a block whose family
        is not in ``families`` becomes a matching one that is (a MobileNetV2 block predicted by an ``mbconvx``
        bundle when no ``mbconv`` one is given), and a family whose every block another family in use also
        matches gives them up to it (MobileNetV3's blocks all ``mbconvx``, not split with ``mbconv``), so one
        model is predicted, and calibrated, by one family where it can be."""
        parts = [p.as_family(families) for p in self.parts]
        while True:
            macs: dict[str, int] = {}
            for p in parts:
                if p.kind == "block" and p.family in families:
                    macs[p.family] = macs.get(p.family, 0) + p.macs
            move = next(((f, g) for f in sorted(macs, key=macs.__getitem__) for g in sorted(macs, key=macs.__getitem__,
                                                                                           reverse=True)
                         if g != f and all(any(a == g for a, _ in p.alternatives) for p in parts
                                           if p.kind == "block" and p.family == f)), None)
            if move is None:
                return replace(self, parts=parts)
            parts = [p.as_family((move[1],)) if p.kind == "block" and p.family == move[0] else p for p in parts]

    def to_dict(self) -> dict[str, Any]:
        def part(p: Part) -> dict[str, Any]:
            d = {k: v for k, v in asdict(p).items() if v is not None and k != "alternatives"}
            if p.alternatives:
                d["alternatives"] = [{"family": f, "config": c} for f, c in p.alternatives]
            return d

        return {"format": self.format, "name": self.name, "input_shape": list(self.input_shape),
                "output_shape": list(self.output_shape), "params": self.params, "parts": [part(p) for p in self.parts]}

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Decomposition:
        try:
            parts = [Part(p["kind"], p["path"], int(p["macs"]), int(p["params"]), p.get("family"),
                          p.get("config"), p.get("op"),
                          tuple((str(a["family"]), dict(a["config"])) for a in p.get("alternatives", ())))
                     for p in d["parts"]]
            return cls(str(d["name"]), tuple(d["input_shape"]), tuple(d["output_shape"]), int(d["params"]), parts,
                       int(d.get("format", 0)))
        except (KeyError, TypeError, ValueError) as e:
            raise DecompositionError(f"not a decomposition ({type(e).__name__}: {e})") from None

    @classmethod
    def from_json(cls, text: str) -> Decomposition:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as e:
            raise DecompositionError(f"not a decomposition (invalid JSON: {e})") from None

    def describe(self) -> str:
        fams = ", ".join(f"{f} x{sum(p.family == f for p in self.blocks)}" for f in self.families()) or "no block"
        return (f"{self.name}: {len(self.blocks)} blocks ({fams}), {len(self.glue)} glue layers; blocks hold "
                f"{100 * self.block_macs_share:.1f} % of {self.macs / 1e6:.0f} M MACs")


# -- tracing --------------------------------------------------------------------------------------------------
def _shape(x: Any) -> tuple[int, ...]:
    if isinstance(x, tuple | list):
        x = x[0] if x else None
    return tuple(int(s) for s in x.shape) if hasattr(x, "shape") else ()


def _is_layer(module: Any) -> bool:
    name = type(module).__name__
    return name in PRIMITIVE or name in ACT_KIND or name in FREE or not any(True for _ in module.children())


def trace(model: Any, input_shape: Sequence[int]) -> tuple[list[LayerCall], dict[str, list[ModuleCall]], Any]:
    """Run ``model`` once on zeros of ``input_shape``: every layer call in order, every module's calls by path,
    and the output."""
    import torch

    layers: list[LayerCall] = []
    calls: dict[str, list[ModuleCall]] = {}
    stack: list[tuple[int, tuple[int, ...]]] = []
    handles = []

    def pre(path: str, module: Any) -> Callable[..., None]:
        def hook(_m: Any, args: tuple[Any, ...]) -> None:
            shape = _shape(args)
            if _is_layer(module):  # recorded when it starts: a layer's own children (an activation) come after it
                layers.append(LayerCall(path, module, shape))
                stack.append((len(layers) - 1, shape))
            else:
                stack.append((len(layers), shape))
        return hook

    def post(path: str, module: Any) -> Callable[..., None]:
        def hook(_m: Any, _args: tuple[Any, ...], out: Any) -> None:
            start, shape = stack.pop()
            if _is_layer(module):
                layers[start].out_shape = _shape(out)
            calls.setdefault(path, []).append(ModuleCall(path, module, shape, _shape(out), start, len(layers)))
        return hook

    for path, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(pre(path, module)))
        handles.append(module.register_forward_hook(post(path, module)))
    try:
        with torch.no_grad():
            out = model(torch.zeros(*input_shape))
    finally:
        for h in handles:
            h.remove()
    for cs in calls.values():
        for c in cs:
            c.layers = layers[c.start:c.end]
    return layers, calls, out


# -- matchers --------------------------------------------------------------------------------------------------
_MATCHERS: dict[str, Callable[[ModuleCall], dict[str, Any] | None]] = {}


def register_matcher(family: str, matcher: Callable[[ModuleCall], dict[str, Any] | None]) -> None:
    """Offer every module call to ``matcher``, which proposes a configuration of ``family`` (or None); a proposal
    counts only when the family's block reproduces the module's layer calls (see the module docstring)."""
    _MATCHERS[family] = matcher


def matchers() -> dict[str, Callable[[ModuleCall], dict[str, Any] | None]]:
    return dict(_MATCHERS)


def _square(shape: tuple[int, ...]) -> int | None:
    return shape[2] if len(shape) == 4 and shape[2] == shape[3] else None


def _convs(call: ModuleCall) -> list[Any]:
    return [c.module for c in call.compared() if c.signature()[0] == "conv"]


def match_mbconv(call: ModuleCall) -> dict[str, Any] | None:
    """An inverted residual: one depthwise convolution, 1x1 convolutions around it, optional squeeze-excite."""
    hw, convs = _square(call.in_shape), _convs(call)
    dws = [m for m in convs if m.groups > 1 and m.groups == m.in_channels == m.out_channels]
    acts = [c for c in call.compared() if c.type in ACT_KIND]
    if hw is None or len(dws) != 1 or not acts:
        return None
    dw, cin = dws[0], call.in_shape[1]
    if dw.in_channels % cin:
        return None
    return {"input_hw": hw, "cin": cin, "cout": call.out_shape[1], "expansion": dw.in_channels // cin,
            "kernel": dw.kernel_size[0], "stride": dw.stride[0], "se": len(convs) > 3 - (dw.in_channels == cin),
            "act": ACT_KIND[acts[0].type]}


def match_mbconvx(call: ModuleCall) -> dict[str, Any] | None:
    """The general inverted residual: its width, squeeze-excite form and activation read from the layers."""
    hw, convs = _square(call.in_shape), _convs(call)
    dws = [m for m in convs if m.groups > 1 and m.groups == m.in_channels == m.out_channels]
    if hw is None or len(dws) != 1:
        return None
    calls = call.compared()
    acts = [c for c in calls if c.type in ACT_KIND and c.in_shape[2:] != (1, 1)]
    gates = [ACT_KIND[c.type] for c in calls if c.type in ACT_KIND and c.in_shape[2:] == (1, 1)]
    if not acts:
        return None
    se = gates[-1] if gates and gates[-1] in ("hsigmoid", "sigmoid") else "none"
    dw = dws[0]
    return {"input_hw": hw, "cin": call.in_shape[1], "mid": dw.in_channels, "cout": call.out_shape[1],
            "kernel": dw.kernel_size[0], "stride": dw.stride[0], "act": ACT_KIND[acts[0].type], "se": se}


def match_resv1(call: ModuleCall) -> dict[str, Any] | None:
    """A ResNet v1 basic or bottleneck block (the stride on its k x k convolution)."""
    hw, convs = _square(call.in_shape), _convs(call)
    big = [m for m in convs if m.kernel_size[0] > 1]
    if hw is None or not big or any(m.groups != 1 for m in convs):
        return None
    out_hw = _square(call.out_shape)
    if not out_hw:
        return None
    return {"input_hw": hw, "cin": call.in_shape[1], "cout": call.out_shape[1], "kernel": big[0].kernel_size[0],
            "stride": hw // out_hw, "variant": "basic" if len(big) == 2 else "bottleneck"}


def match_resv1x(call: ModuleCall) -> dict[str, Any] | None:
    """A ResNet v1 bottleneck of any width and grouping (ResNeXt, Wide ResNet)."""
    hw, convs = _square(call.in_shape), _convs(call)
    big = [m for m in convs if m.kernel_size[0] > 1]
    out_hw = _square(call.out_shape)
    if hw is None or not out_hw or len(big) != 1:
        return None
    b = big[0]
    return {"input_hw": hw, "cin": call.in_shape[1], "width": b.in_channels, "cout": call.out_shape[1],
            "kernel": b.kernel_size[0], "stride": hw // out_hw, "groups": b.groups}


def match_convbn(call: ModuleCall) -> dict[str, Any] | None:
    """One convolution + batch norm (+ activation) (+ 3 x 3 max pooling): a stem or a head's convolution."""
    hw, calls = _square(call.in_shape), call.compared()
    if hw is None or len(calls) < 2 or calls[0].signature()[0] != "conv" or "BatchNorm" not in calls[1].type:
        return None
    conv, rest = calls[0].module, calls[2:]
    act = "none"
    if rest and rest[0].type in ACT_KIND:
        act, rest = ACT_KIND[rest[0].type], rest[1:]
    pool = bool(rest) and rest[0].type == "MaxPool2d"
    if rest[pool:] or conv.groups != 1:
        return None
    return {"input_hw": hw, "cin": conv.in_channels, "cout": conv.out_channels, "kernel": conv.kernel_size[0],
            "stride": conv.stride[0], "act": act, "pool": pool}


register_matcher("mbconv", match_mbconv)
register_matcher("mbconvx", match_mbconvx)
register_matcher("resv1", match_resv1)
register_matcher("resv1x", match_resv1x)
register_matcher("convbn", match_convbn)


def _check(call: ModuleCall, family: Any, config: dict[str, Any]) -> bool:
    """Whether ``family``'s block of ``config`` computes what ``call`` computed (see the module docstring)."""
    try:
        cfg = family.validate(config)
    except ValueError:
        return False
    block = family.build(cfg).eval()
    _, bcalls, out = trace(block, call.in_shape)
    root = bcalls[""][0]
    if tuple(out.shape) != call.out_shape:
        return False
    if [c.signature() for c in root.checked()] != [c.signature() for c in call.checked()]:
        return False
    if sum(p.numel() for p in block.parameters()) != sum(p.numel() for p in call.module.parameters()):
        return False
    residual = cfg.get("stride") == 1 and cfg.get("cin") == cfg.get("cout")
    for attr in RESIDUAL_ATTRS:
        v = getattr(call.module, attr, None)
        if isinstance(v, bool) and v != residual and family.name in ("mbconv", "mbconvx"):
            return False
    return True


# -- the walk ------------------------------------------------------------------------------------------------
def _layer_macs(c: LayerCall) -> int:
    m, t = c.module, c.type
    if c.signature()[0] == "conv" and len(c.out_shape) == 4:
        k = m.kernel_size[0] * m.kernel_size[1]
        return int(c.out_shape[1] * c.out_shape[2] * c.out_shape[3] * (m.in_channels // m.groups) * k)
    if t == "Linear":
        return int(m.in_features * m.out_features)
    return 0


def _op_spec(c: LayerCall) -> dict[str, Any]:
    from profiler.glue import op_spec

    return op_spec(c.module, c.in_shape)


def _match(call: ModuleCall, use: Mapping[str, Callable[[ModuleCall], dict[str, Any] | None]],
           fams: Mapping[str, Any], path: str) -> Part | None:
    """The block ``call`` is, of the first family whose matcher's proposal checks (the others that check too as
    its alternatives), or None."""
    found = []
    for fname, matcher in use.items():
        cfg = matcher(call)
        if cfg is not None and _check(call, fams[fname], cfg):
            found.append((fname, fams[fname].validate(cfg)))
    if not found:
        return None
    (fname, cfg), rest = found[0], tuple(found[1:])
    c = fams[fname].counts(cfg)
    return Part("block", path, int(c.macs), int(c.params), fname, cfg, alternatives=rest)


def _match_runs(layers: list[LayerCall], claimed: list[bool], use: Mapping[str, Any], fams: Mapping[str, Any]
                ) -> list[tuple[int, int, Part]]:
    """Blocks among layers no module-level block took, made of consecutive layer calls that chain (each reads
    the shape the one before wrote): ResNet's stem is ``conv1``, ``bn1``, ``relu`` and ``maxpool``, children of
    the model itself, and MNASNet's first separable convolution is a run of a flat ``Sequential``. Left to
    right, the longest run (at most :data:`MAX_RUN` layers) that checks as a block is taken; its path joins the
    layers' paths with ``+``."""
    import torch.nn as nn

    idx = [i for i, c in enumerate(layers) if not claimed[i] and c.type not in FREE]
    taken: list[tuple[int, int, Part]] = []
    k = 0
    while k < len(idx):
        part = None
        for n in range(min(MAX_RUN, len(idx) - k), 1, -1):
            run = [layers[i] for i in idx[k:k + n]]
            if any(run[j + 1].in_shape != run[j].out_shape for j in range(n - 1)):
                continue
            if any(claimed[i] for i in range(idx[k], idx[k + n - 1] + 1)):
                continue  # a block's layers in between: not one run (layers that compute nothing may be)
            mods = nn.ModuleList(dict.fromkeys(c.module for c in run))
            call = ModuleCall("+".join(c.path for c in run), mods, run[0].in_shape, run[-1].out_shape, idx[k],
                              idx[k + n - 1] + 1, run)
            part = _match(call, use, fams, call.path)
            if part is not None:
                taken.append((idx[k], idx[k + n - 1] + 1, part))
                k += n
                break
        if part is None:
            k += 1
    return taken


def from_torch(model: Any, input_shape: Sequence[int] = (1, 3, 224, 224), *, name: str | None = None,
               families: Sequence[str] | None = None) -> Decomposition:
    """Decompose ``model`` (a ``torch.nn.Module``) run on ``input_shape`` into blocks and glue (module docstring).
    ``families``: only match these families (default: every family with a matcher)."""
    from profiler.families import get_family

    model = model.eval()
    shape = tuple(int(s) for s in input_shape)
    layers, calls, out = trace(model, shape)
    use = {f: m for f, m in _MATCHERS.items() if families is None or f in families}
    fams = {f: get_family(f) for f in use}
    taken: list[tuple[int, int, Part]] = []

    def walk(path: str, module: Any) -> None:
        cs = calls.get(path, [])
        if len(cs) == 1 and path and cs[0].end > cs[0].start and not _is_layer(module):
            part = _match(cs[0], use, fams, path)
            if part is not None:
                taken.append((cs[0].start, cs[0].end, part))
                return
        for child_name, child in module.named_children():
            walk(f"{path}.{child_name}" if path else child_name, child)

    walk("", model)
    claimed = [False] * len(layers)
    for start, end, _ in taken:
        for i in range(start, end):
            claimed[i] = True
    for start, end, part in _match_runs(layers, claimed, use, fams):
        taken.append((start, end, part))
        for i in range(start, end):
            claimed[i] = True
    parts = [(start, p) for start, _, p in taken]
    for i, c in enumerate(layers):
        if not claimed[i] and c.type not in FREE:
            params = sum(p.numel() for p in c.module.parameters(recurse=False))
            parts.append((i, Part("glue", c.path, _layer_macs(c), int(params), op=_op_spec(c))))
    parts.sort(key=lambda t: t[0])
    # parameters of layers reused by several calls count once
    seen: set[str] = set()
    ordered = []
    for _, p in parts:
        if p.kind == "glue" and p.path in seen:
            p = Part("glue", p.path, p.macs, 0, op=p.op)
        seen.add(p.path)
        ordered.append(p)
    return Decomposition(name or type(model).__name__, shape, tuple(out.shape),
                         int(sum(p.numel() for p in model.parameters())), ordered)
