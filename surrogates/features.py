"""Feature encoders: configurations of a family -> a numeric feature matrix (docs/design.md §4).

An encoder has two parts:

- **raw parameters**, one or more columns per dimension of the family's space: numbers as they are, or their
  logarithm when the dimension is scale-like (log-scaled, or positive with max/min >= 8, e.g. channels, input
  size); ordered string choices as their rank; booleans as 0/1; categorical dimensions one-hot;
- **analytic features** of block families (those with ``counts``): log MACs, log parameters, log bytes moved,
  log arithmetic intensity (MACs per byte moved), the layer count, and from the per-layer work: log MACs of
  dense and of depthwise convolutions, log bytes of element-wise layers, and roofline sums
  ``log(1 + sum over layers of max(macs, r * bytes))`` for a few machine balances ``r`` (MACs per byte), which
  let a model tell compute-bound from memory-bound blocks layer by layer;
- **shape features** (encoder version 2) from the convolutions' shapes (:attr:`profiler.families.Counts.shapes`):
  for dense and for depthwise convolutions, MAC-weighted means of how their input channels, output channels and
  output side are aligned (the power of two dividing them, up to 64) and of their logarithms. Vector units and
  blocked kernels work in 8 or 16 channels and spatial tiles, and a misaligned size costs a remainder loop:
  these features took the ±10 % accuracy of ``linear-gbt`` on this CPU's ``mbconv`` blocks from 82.2 % to
  90.0 % (2,000 training rows; 74.5 % to 80.5 % with 500) and of ``gbt`` from 82.0 % to 85.8 %
  (``benchmarks/accuracy_bench.py``).

Tabular families (:class:`profiler.tabular.TabularFamily`, any table of configurations) get the raw
parameters only. The encoder is described by a JSON-serialisable :meth:`FeatureEncoder.spec` that carries
:data:`ENCODER_VERSION`; predictor bundles store it and refuse a version this code does not write.

Example:
    >>> from profiler.families import get_family
    >>> enc = FeatureEncoder(get_family("mbconv"))
    >>> X = enc.transform(get_family("mbconv").space.sample(3, seed=0))
    >>> X.shape == (3, len(enc.feature_names))
    True
    >>> "log_macs" in enc.feature_names
    True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from profiler.space import Dimension
from surrogates._errors import EncoderError

__all__ = ["ANALYTIC_FEATURES", "ENCODER_VERSION", "EncoderError", "FeatureEncoder"]

ENCODER_VERSION = 2  # 1: raw parameters and analytic features; 2: + shape features
READABLE_VERSIONS = (1, 2)
ROOFLINE_INTENSITIES = (0.25, 1.0, 4.0, 16.0)  # MACs per byte at which a layer turns compute-bound
ANALYTIC_FEATURES = ("log_macs", "log_params", "log_bytes_moved", "log_intensity", "layers", "log_conv_macs",
                     "log_depthwise_macs", "log_elementwise_bytes",
                     *(f"log_roofline_{r:g}" for r in ROOFLINE_INTENSITIES))
SHAPE_FEATURES = tuple(f"{kind}_{what}" for kind in ("conv", "dw")
                       for what in ("align_cin", "align_cout", "align_hw", "log_cin", "log_cout", "log_hw"))
MAX_ALIGN = 6  # alignment is counted up to 2**6 = 64
SCALE_RATIO = 8.0  # a positive numeric dimension spanning at least this ratio is encoded as its log



def _column_plan(dim: Dimension) -> dict[str, Any]:
    """How one dimension becomes columns: {"name", "kind": num|log|rank|onehot|bool, ["levels"]}."""
    kind = dim.kind
    if kind == "boolean":
        return {"name": dim.name, "kind": "bool"}
    if kind == "categorical":
        return {"name": dim.name, "kind": "onehot", "levels": list(dim.values() or ())}
    if kind == "choice":
        vals = dim.values() or ()
        if any(isinstance(v, str) for v in vals):
            return {"name": dim.name, "kind": "rank", "levels": list(vals)}
        lo, hi = float(min(vals)), float(max(vals))
    else:  # integer, real
        lo, hi = float(dim.low), float(dim.high)  # type: ignore[attr-defined]
        if getattr(dim, "log", False):
            return {"name": dim.name, "kind": "log"}
    return {"name": dim.name, "kind": "log" if lo > 0 and hi / lo >= SCALE_RATIO else "num"}


class FeatureEncoder:
    """Encode configurations of ``family`` (a block family or a tabular family) as a float64 matrix.

    ``analytic``: ``"auto"`` uses the family's analytic counts when it has them (block families), ``True``
    requires them, ``False`` skips them. Configurations are validated (and, for tabular families, coerced
    from text) before encoding; a bad one raises :class:`profiler.space.SpaceError` naming the field.
    """

    def __init__(self, family: Any, analytic: bool | str = "auto", version: int = ENCODER_VERSION) -> None:
        if analytic not in ("auto", True, False):
            raise EncoderError(f"analytic={analytic!r} is not allowed: expected 'auto', True or False")
        if version not in READABLE_VERSIONS:
            raise EncoderError(f"feature-encoder version {version!r} is not supported: this version reads versions "
                               f"{', '.join(map(str, READABLE_VERSIONS))}")
        has_counts = callable(getattr(family, "counts", None))
        if analytic is True and not has_counts:
            raise EncoderError(f"family {family.name!r} has no analytic counts (analytic=True)")
        self.family = family
        self.analytic = bool(has_counts) if analytic == "auto" else bool(analytic)
        self.version = int(version)
        self.columns = [_column_plan(d) for d in family.space.dimensions]

    # -- description ---------------------------------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        names: list[str] = []
        for c in self.columns:
            if c["kind"] == "onehot":
                names += [f"{c['name']}={lvl}" for lvl in c["levels"]]
            elif c["kind"] == "log":
                names.append(f"log_{c['name']}")
            else:
                names.append(c["name"])
        if not self.analytic:
            return names
        return names + list(ANALYTIC_FEATURES) + (list(SHAPE_FEATURES) if self.version >= 2 else [])

    def spec(self) -> dict[str, Any]:
        """JSON-serialisable description, stored in predictor bundles."""
        return {"version": self.version, "family": self.family.name, "space_hash": self.family.space.hash(),
                "analytic": self.analytic, "columns": self.columns, "features": self.feature_names}

    @classmethod
    def from_spec(cls, family: Any, spec: Mapping[str, Any]) -> FeatureEncoder:
        """Rebuild an encoder for ``family`` and check that it encodes exactly as ``spec`` says."""
        version = spec.get("version")
        if version not in READABLE_VERSIONS:
            raise EncoderError(f"feature-encoder version {version!r} is not supported: this version reads versions "
                               f"{', '.join(map(str, READABLE_VERSIONS))}")
        enc = cls(family, analytic=bool(spec.get("analytic")), version=int(version))
        if enc.spec() != dict(spec):
            raise EncoderError(f"the feature encoder of family {family.name!r} differs from the one in the spec "
                               "(the family's space changed)")
        return enc

    # -- encoding ------------------------------------------------------------------------------------------
    def _validate(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return self.family.validate(config)

    def transform(self, configs: Sequence[Mapping[str, Any]], *, validated: bool = False) -> np.ndarray:
        """The feature matrix of ``configs`` (n x len(feature_names)). ``validated`` skips validation."""
        cfgs = list(configs) if validated else [self._validate(c) for c in configs]
        n = len(cfgs)
        blocks: list[np.ndarray] = []
        for c in self.columns:
            name, kind = c["name"], c["kind"]
            raw = [cfg[name] for cfg in cfgs]
            if kind == "onehot":
                index = {lvl: i for i, lvl in enumerate(c["levels"])}
                m = np.zeros((n, len(index)))
                m[np.arange(n), [index[v] for v in raw]] = 1.0
                blocks.append(m)
            elif kind == "rank":
                index = {lvl: i for i, lvl in enumerate(c["levels"])}
                blocks.append(np.asarray([index[v] for v in raw], dtype=float)[:, None])
            else:
                col = np.asarray(raw, dtype=float)
                blocks.append((np.log(col) if kind == "log" else col)[:, None])
        if self.analytic:
            blocks.append(self._analytic(cfgs))
        return np.hstack(blocks) if blocks else np.zeros((n, 0))

    def _analytic(self, cfgs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        n = len(cfgs)
        shapes = self.version >= 2
        out = np.empty((n, len(ANALYTIC_FEATURES) + (len(SHAPE_FEATURES) if shapes else 0)))
        convs: list[list] = []
        # configurations are validated by now (transform); a plug-in family may only have counts()
        counts = getattr(self.family, "counts_of_valid", None) or self.family.counts
        owner: list[int] = []
        kinds: list[str] = []
        macs_l: list[int] = []
        bytes_l: list[int] = []
        for i, cfg in enumerate(cfgs):
            c = counts(cfg)
            out[i, :5] = (math.log1p(float(c.macs)), math.log1p(float(c.params)), math.log1p(float(c.bytes_moved)),
                          math.log1p(float(c.macs)) - math.log1p(float(c.bytes_moved)), float(c.layers))
            if shapes:
                convs.append(getattr(c, "shapes", ()))
            work = getattr(c, "work", ()) or (("conv", c.macs, c.bytes_moved),)
            for k, m, b in work:
                owner.append(i)
                kinds.append(k)
                macs_l.append(m)
                bytes_l.append(b)
        # per-leaf sums, vectorised over every leaf of every configuration
        idx = np.asarray(owner, dtype=np.intp)
        m = np.asarray(macs_l, dtype=float)
        b = np.asarray(bytes_l, dtype=float)
        kind = np.asarray(kinds)
        out[:, 5] = np.log1p(np.bincount(idx, weights=np.where(kind == "conv", m, 0.0), minlength=n))
        out[:, 6] = np.log1p(np.bincount(idx, weights=np.where(kind == "depthwise", m, 0.0), minlength=n))
        out[:, 7] = np.log1p(np.bincount(idx, weights=np.where(kind == "elementwise", b, 0.0), minlength=n))
        for j, r in enumerate(ROOFLINE_INTENSITIES):
            out[:, 8 + j] = np.log1p(np.bincount(idx, weights=np.maximum(m, r * b), minlength=n))
        if shapes:
            out[:, len(ANALYTIC_FEATURES):] = _shape_features(convs)
        return out

    def __repr__(self) -> str:
        return f"FeatureEncoder({self.family.name!r}, {len(self.feature_names)} features)"


def _alignment(v: np.ndarray) -> np.ndarray:
    """The exponent of the largest power of two (up to 2**MAX_ALIGN) dividing each positive integer."""
    v = v.astype(np.int64)
    return np.minimum(np.log2(v & -v), MAX_ALIGN)


def _shape_features(convs: Sequence[Sequence[tuple]]) -> np.ndarray:
    """:data:`SHAPE_FEATURES` of each configuration's convolution shapes (zeros where it has none of a kind)."""
    n = len(convs)
    out = np.zeros((n, len(SHAPE_FEATURES)))
    rows = [(i, *s) for i, shapes in enumerate(convs) for s in shapes]
    if not rows:
        return out
    a = np.asarray([r[2:] for r in rows], dtype=np.int64)  # cin, cout, kernel, stride, hw_in, hw_out, groups
    owner = np.asarray([r[0] for r in rows], dtype=np.intp)
    kind = np.asarray([r[1] for r in rows])
    cin, cout, k, hw_out, groups = a[:, 0], a[:, 1], a[:, 2], a[:, 5], a[:, 6]
    macs = (hw_out.astype(float) ** 2) * cout * (cin // groups) * k * k
    per = np.column_stack([_alignment(cin), _alignment(cout), _alignment(hw_out), np.log(cin), np.log(cout),
                           np.log(hw_out)])
    for j, name in enumerate(("conv", "depthwise")):
        w = np.where(kind == name, macs, 0.0)
        total = np.bincount(owner, weights=w, minlength=n)
        safe = np.where(total > 0, total, 1.0)
        for f in range(per.shape[1]):
            out[:, 6 * j + f] = np.bincount(owner, weights=w * per[:, f], minlength=n) / safe
    return out
