"""Typed parameter spaces: dimensions, constraints, validation, canonical keys and sampling.

A :class:`Space` is an ordered set of typed dimensions plus constraints. It validates configurations
(errors name the field and the allowed values), gives each configuration a canonical key that is stable
across processes, platforms and dict order, and samples configurations uniformly at random, by scrambled
Sobol sequences (:mod:`scipy.stats.qmc`) or by full enumeration where the space is finite.

Example:
    >>> from profiler.space import Space, Integer, Choice, Categorical, Boolean
    >>> space = Space([Integer("hw", 7, 224, log=True), Choice("kernel", (3, 5, 7)),
    ...                Categorical("act", ("relu", "hswish")), Boolean("se")])
    >>> cfg = space.validate({"hw": 32, "kernel": 3, "act": "relu", "se": False})
    >>> space.key(cfg, family="demo") == space.key(dict(reversed(cfg.items())), family="demo")
    True
    >>> len(space.sample(5, method="sobol", seed=0))
    5
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import numbers
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Config = dict[str, Any]

__all__ = [
    "Boolean",
    "Categorical",
    "Choice",
    "Config",
    "Constraint",
    "Dimension",
    "Integer",
    "Real",
    "Space",
    "SpaceError",
    "space_from_spec",
]


class SpaceError(ValueError):
    """A configuration or a space definition is invalid; the message names the field."""


def _is_integral(value: Any) -> bool:
    if isinstance(value, bool | np.bool_):
        return False
    if isinstance(value, numbers.Integral):
        return True
    return isinstance(value, numbers.Real) and math.isfinite(float(value)) and float(value).is_integer()


def _plain(value: Any) -> Any:
    """numpy scalars -> the equivalent Python scalar (JSON-serialisable, stable keys)."""
    return value.item() if isinstance(value, np.generic) else value


class Dimension:
    """One typed dimension of a space.

    Subclasses implement :meth:`validate` (coerce and check one value), :meth:`values` (the finite grid, or
    ``None`` when continuous) and :meth:`_positions` (where each grid value lies on the sampling axis, so that
    the unit interval maps onto the grid uniformly or log-uniformly).
    """

    name: str
    kind: str = "dimension"

    def validate(self, value: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def values(self) -> tuple[Any, ...] | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def spec(self) -> dict[str, Any]:  # pragma: no cover - abstract
        """A JSON-serialisable description (used for the space hash)."""
        raise NotImplementedError

    @property
    def size(self) -> float:
        vals = self.values()
        return math.inf if vals is None else len(vals)

    def _positions(self) -> np.ndarray:
        """Positions of the grid values on the sampling axis (equal spacing = uniform sampling)."""
        return np.arange(len(self.values() or ()), dtype=float)

    def from_unit(self, u: np.ndarray) -> list[Any]:
        """Map points of [0, 1) to values; each grid value gets the share of the axis around its position."""
        vals = self.values()
        assert vals is not None
        pos = self._positions()
        if len(vals) == 1:
            return [vals[0]] * len(u)
        mids = (pos[1:] + pos[:-1]) / 2
        lo = pos[0] - (pos[1] - pos[0]) / 2
        hi = pos[-1] + (pos[-1] - pos[-2]) / 2
        x = lo + np.asarray(u, dtype=float) * (hi - lo)
        idx = np.searchsorted(mids, x, side="right")
        return [vals[i] for i in idx]

    def _error(self, value: Any) -> SpaceError:
        return SpaceError(f"{self.name}={value!r} is not allowed: expected {self.describe()}")


@dataclass(frozen=True)
class Integer(Dimension):
    """Integers ``low..high`` (inclusive) on a grid of ``step`` from ``low``; ``log`` samples log-uniformly."""

    name: str
    low: int
    high: int
    step: int = 1
    log: bool = False
    kind = "integer"

    def __post_init__(self) -> None:
        if not (_is_integral(self.low) and _is_integral(self.high) and _is_integral(self.step)):
            raise SpaceError(f"dimension {self.name!r}: low, high and step must be integers")
        for attr in ("low", "high", "step"):  # numpy or integral-float bounds become plain ints
            object.__setattr__(self, attr, int(getattr(self, attr)))
        if self.step < 1:
            raise SpaceError(f"dimension {self.name!r}: step={self.step} must be >= 1")
        if self.high < self.low:
            raise SpaceError(f"dimension {self.name!r}: high={self.high} is below low={self.low}")
        if self.log and self.low < 1:
            raise SpaceError(f"dimension {self.name!r}: a log-scaled dimension needs low >= 1 (got {self.low})")

    def values(self) -> tuple[int, ...]:
        return tuple(range(int(self.low), int(self.high) + 1, int(self.step)))

    def _positions(self) -> np.ndarray:
        vals = np.asarray(self.values(), dtype=float)
        return np.log(vals) if self.log else vals

    def validate(self, value: Any) -> int:
        if not _is_integral(value):
            raise self._error(value)
        v = int(value)
        if v < self.low or v > self.high or (v - self.low) % self.step:
            raise self._error(value)
        return v

    def describe(self) -> str:
        grid = f" in steps of {self.step}" if self.step != 1 else ""
        return f"an integer in {self.low}..{self.high}{grid}"

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "low": self.low, "high": self.high,
                "step": self.step, "log": self.log}


@dataclass(frozen=True)
class Real(Dimension):
    """Floats in ``[low, high]``; ``log`` samples log-uniformly. Continuous: no enumeration."""

    name: str
    low: float
    high: float
    log: bool = False
    kind = "real"

    def __post_init__(self) -> None:
        object.__setattr__(self, "low", float(self.low))
        object.__setattr__(self, "high", float(self.high))
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.high < self.low:
            raise SpaceError(f"dimension {self.name!r}: needs finite low <= high (got {self.low}, {self.high})")
        if self.log and self.low <= 0:
            raise SpaceError(f"dimension {self.name!r}: a log-scaled dimension needs low > 0 (got {self.low})")

    def values(self) -> None:
        return None

    def from_unit(self, u: np.ndarray) -> list[Any]:
        u = np.asarray(u, dtype=float)
        if self.log:
            x = np.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            x = self.low + u * (self.high - self.low)
        return [float(min(max(v, self.low), self.high)) for v in x]

    def validate(self, value: Any) -> float:
        if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
            raise self._error(value)
        v = float(value)
        if not math.isfinite(v) or v < self.low or v > self.high:
            raise self._error(value)
        return v + 0.0  # -0.0 -> 0.0: equal values get equal keys

    def describe(self) -> str:
        return f"a number in [{self.low}, {self.high}]"

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class Choice(Dimension):
    """An ordered choice among a few values (numbers or strings), e.g. kernel size 3/5/7."""

    name: str
    choices: tuple[Any, ...]
    kind = "choice"
    ordered = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "choices", tuple(_plain(c) for c in self.choices))
        if not self.choices:
            raise SpaceError(f"dimension {self.name!r}: needs at least one choice")
        for c in self.choices:
            if not isinstance(c, str | numbers.Real) or (isinstance(c, float) and not math.isfinite(c)):
                raise SpaceError(f"dimension {self.name!r}: choice {c!r} must be a string, a bool or a finite number")
        identity = [(type(c) is bool, c if isinstance(c, str | bool) else float(c)) for c in self.choices]
        if len(set(identity)) != len(identity):
            raise SpaceError(f"dimension {self.name!r}: choices {self.choices!r} repeat a value")
        object.__setattr__(self, "_exact", {(type(c), c): c for c in self.choices})  # fast path of validate

    def values(self) -> tuple[Any, ...]:
        return self.choices

    def validate(self, value: Any) -> Any:
        try:
            return self._exact[(type(value), value)]  # a choice itself (same type and value): the common case
        except (KeyError, TypeError):
            pass
        for c in self.choices:
            if isinstance(c, bool) != isinstance(value, bool | np.bool_):
                continue
            if isinstance(c, str) or isinstance(value, str):
                if value == c:
                    return c
            elif isinstance(c, numbers.Real) and isinstance(value, numbers.Real) and float(value) == float(c):
                return c
        raise self._error(value)

    def describe(self) -> str:
        return "one of " + ", ".join(map(repr, self.choices))

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "choices": list(self.choices)}


@dataclass(frozen=True)
class Categorical(Choice):
    """An unordered choice (one-hot encoded by the surrogates), e.g. the activation function."""

    kind = "categorical"
    ordered = False


@dataclass(frozen=True)
class Boolean(Choice):
    """A yes/no dimension."""

    choices: tuple[Any, ...] = (False, True)
    kind = "boolean"

    def validate(self, value: Any) -> bool:
        if isinstance(value, bool | np.bool_):
            return bool(value)
        raise self._error(value)


@dataclass(frozen=True)
class Constraint:
    """A named predicate every valid configuration satisfies; ``description`` is shown in errors."""

    name: str
    check: Callable[[Mapping[str, Any]], bool]
    description: str = ""

    def __call__(self, config: Mapping[str, Any]) -> bool:
        return bool(self.check(config))


class Space:
    """An ordered set of typed dimensions plus constraints (see the module docstring for an example)."""

    def __init__(self, dimensions: Sequence[Dimension], constraints: Sequence[Constraint] = ()) -> None:
        names = [d.name for d in dimensions]
        if not names:
            raise SpaceError("a space needs at least one dimension")
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise SpaceError(f"dimension names repeat: {', '.join(dup)}")
        self.dimensions: tuple[Dimension, ...] = tuple(dimensions)
        self.constraints: tuple[Constraint, ...] = tuple(constraints)
        self._by_name = {d.name: d for d in self.dimensions}

    # -- introspection -------------------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dimensions)

    def __getitem__(self, name: str) -> Dimension:
        return self._by_name[name]

    def __len__(self) -> int:
        return len(self.dimensions)

    def __repr__(self) -> str:
        return f"Space({', '.join(f'{d.name}: {d.describe()}' for d in self.dimensions)})"

    @property
    def cardinality(self) -> float:
        """Number of grid points before constraints (``inf`` if any dimension is continuous)."""
        return math.prod(d.size for d in self.dimensions)

    def spec(self) -> dict[str, Any]:
        return {"dimensions": [d.spec() for d in self.dimensions],
                "constraints": [[c.name, c.description] for c in self.constraints]}

    def hash(self) -> str:
        """A stable hash of the space definition (dimensions and constraint names)."""
        blob = json.dumps(self.spec(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    # -- validation and keys ---------------------------------------------------------------------------------
    def validate(self, config: Mapping[str, Any]) -> Config:
        """Return the canonical (typed, dimension-ordered) config or raise :class:`SpaceError`."""
        if not isinstance(config, Mapping):
            raise SpaceError(f"a configuration must be a mapping of field to value, got {type(config).__name__}")
        unknown = [k for k in config if k not in self._by_name]
        if unknown:
            raise SpaceError(f"unknown field {unknown[0]!r}: allowed fields are {', '.join(self.names)}")
        missing = [n for n in self.names if n not in config]
        if missing:
            raise SpaceError(f"missing field {missing[0]!r} ({self._by_name[missing[0]].describe()})")
        out = {d.name: d.validate(config[d.name]) for d in self.dimensions}
        for c in self.constraints:
            if not c(out):
                detail = f": {c.description}" if c.description else ""
                raise SpaceError(f"configuration violates constraint {c.name!r}{detail}")
        return out

    def coerce(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Convert text values (CSV cells, command-line JSON) to each dimension's type; validate afterwards.

        Numbers in text become ints or floats, ``true``/``false``/``1``/``0`` become booleans for boolean
        dimensions; values that do not convert are left as they are, so that :meth:`validate` names them.
        """
        out: dict[str, Any] = {}
        for k, v in config.items():
            dim = self._by_name.get(k)
            if dim is None or not isinstance(v, str):
                out[k] = v
                continue
            text = v.strip()
            if dim.kind == "boolean":
                out[k] = {"true": True, "1": True, "false": False, "0": False}.get(text.lower(), v)
            elif dim.kind in ("integer", "real") or (
                    dim.kind in ("choice", "categorical") and not any(isinstance(c, str) for c in dim.values() or ())):
                try:
                    num = float(text)
                    out[k] = int(num) if num.is_integer() and dim.kind != "real" else num
                except ValueError:
                    out[k] = v
            else:
                out[k] = text
        return out

    def is_valid(self, config: Mapping[str, Any]) -> bool:
        try:
            self.validate(config)
        except SpaceError:
            return False
        return True

    def key(self, config: Mapping[str, Any], family: str) -> str:
        """Canonical key: sha256 of the family name and the sorted, typed values (validated first)."""
        cfg = self.validate(config)
        blob = json.dumps({"family": family, "config": cfg}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    # -- sampling ------------------------------------------------------------------------------------------
    def _from_unit_rows(self, u: np.ndarray) -> list[Config]:
        cols = [d.from_unit(u[:, j]) for j, d in enumerate(self.dimensions)]
        return [dict(zip(self.names, row, strict=True)) for row in zip(*cols, strict=True)]

    def _accept(self, cfg: Config) -> bool:
        return all(c(cfg) for c in self.constraints)

    def sample(self, n: int, method: str = "random", seed: int | None = 0, *, unique: bool = True,
               exclude: set[str] | None = None, family: str = "") -> list[Config]:
        """Draw ``n`` valid configurations.

        ``method`` is ``"random"`` (uniform or log-uniform per dimension) or ``"sobol"`` (scrambled Sobol
        points mapped through the same per-dimension transform). Points that violate a constraint are
        rejected. With ``unique`` no configuration repeats; ``exclude`` holds keys (for ``family``) to skip.
        The same ``seed`` gives the same configurations in any process, and a larger ``n`` extends a smaller
        one (the first ``n`` configurations do not depend on how many are asked for).
        """
        if not _is_integral(n) or n < 0:
            raise SpaceError(f"n={n!r} must be a non-negative integer")
        if seed is not None and (not _is_integral(seed) or seed < 0):
            raise SpaceError(f"seed={seed!r} must be a non-negative integer (or None)")
        if method not in ("random", "sobol"):
            raise SpaceError(f"method={method!r} is not allowed: expected 'random' or 'sobol'")
        n = int(n)
        out: list[Config] = []
        seen: set[str] = set(exclude or ())
        d = len(self.dimensions)
        if method == "sobol":
            from scipy.stats import qmc  # heavy import: only when Sobol points are asked for

            engine = qmc.Sobol(d, scramble=True, seed=seed)
        else:
            rng = np.random.default_rng(seed)
        drawn, max_draws = 0, max(10_000, 200 * n)
        while len(out) < n:
            if drawn >= max_draws:
                raise SpaceError(
                    f"could only find {len(out)} of n={n} distinct valid configurations after {drawn} draws: "
                    "the space (after its constraints) is too small or too constrained")
            # a fixed batch size keeps prefixes stable: sample(200) starts with the configs of sample(100)
            batch = 256
            if method == "sobol":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    u = engine.random(batch)
            else:
                u = rng.random((batch, d))
            drawn += batch
            for cfg in self._from_unit_rows(u):
                if not self._accept(cfg):
                    continue
                if unique or exclude:
                    k = self.key(cfg, family)
                    if k in seen:
                        continue
                    if unique:
                        seen.add(k)
                out.append(cfg)
                if len(out) == n:
                    break
        return out

    def enumerate(self, limit: int = 10_000_000) -> Iterator[Config]:
        """Every valid configuration, in dimension order (finite spaces only, at most ``limit`` grid points)."""
        if self.cardinality > limit:
            raise SpaceError(f"the space has {self.cardinality:g} grid points, more than limit={limit} "
                             "(or a continuous dimension): it cannot be enumerated")
        grids = [d.values() for d in self.dimensions]
        for combo in itertools.product(*grids):  # type: ignore[arg-type]
            cfg = dict(zip(self.names, combo, strict=True))
            if self._accept(cfg):
                yield cfg


_DIMENSION_KINDS: dict[str, type[Dimension]] = {
    "integer": Integer, "real": Real, "choice": Choice, "categorical": Categorical, "boolean": Boolean,
}


def space_from_spec(spec: Mapping[str, Any]) -> Space:
    """Rebuild a space from :meth:`Space.spec` (dimensions only: constraints are code and are not restored).

    Used for tabular families, whose spaces have no constraints, e.g. when a predictor bundle is loaded.

    Example:
        >>> s = Space([Integer("c", 8, 64, step=8), Categorical("act", ("relu", "hswish"))])
        >>> space_from_spec(s.spec()).hash() == s.hash()
        True
    """
    if not isinstance(spec, Mapping) or not isinstance(spec.get("dimensions"), list):
        raise SpaceError("a space spec must be a mapping with a 'dimensions' list")
    if spec.get("constraints"):
        names = ", ".join(str(c[0]) for c in spec["constraints"])
        raise SpaceError(f"the space has constraints ({names}) that a spec cannot restore; use the registered family")
    dims: list[Dimension] = []
    for d in spec["dimensions"]:
        kind = d.get("kind") if isinstance(d, Mapping) else None
        if kind not in _DIMENSION_KINDS:
            raise SpaceError(f"dimension kind {kind!r} is unknown: expected one of {', '.join(_DIMENSION_KINDS)}")
        args = {k: v for k, v in d.items() if k != "kind"}
        if "choices" in args:
            args["choices"] = tuple(args["choices"])
        dims.append(_DIMENSION_KINDS[kind](**args))
    return Space(dims)
