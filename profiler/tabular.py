"""Tabular families: a space inferred from (or declared for) a table of recorded configurations (docs/design.md §2).

A tabular family has a name and a :class:`~profiler.space.Space` but no ``build``: its configurations are rows
of a recorded table (e.g. ``../shared/data/tfnas_mbconv_latency.csv``), used with replay and by the surrogate
encoders like any other family. Parameter types are inferred from the column values and can be overridden:

- a column whose values all parse as numbers is numeric: an ordered :class:`~profiler.space.Choice` of the
  observed values when there are at most ``max_levels`` of them (a grid), else a :class:`~profiler.space.Real`;
- anything else, or a column named in ``categorical``, is a :class:`~profiler.space.Categorical`.

Example:
    >>> rows = [{"hw": "56", "act": "relu", "ms": "1.5"}, {"hw": "28", "act": "hswish", "ms": "0.7"}]
    >>> fam = TabularFamily.from_rows("demo", rows, params=["hw", "act"])
    >>> fam.space["hw"].values(), fam.space["act"].kind
    ((28, 56), 'categorical')
    >>> fam.validate({"hw": "56", "act": "relu"})
    {'hw': 56, 'act': 'relu'}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from profiler.space import Categorical, Choice, Config, Dimension, Real, Space, SpaceError, space_from_spec

__all__ = ["TabularFamily", "infer_dimension", "parse_number"]


def parse_number(value: Any) -> int | float | None:
    """``value`` as an int (when integral) or float, or ``None`` when it is not a finite number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        x = float(str(value).strip())
    except ValueError:
        return None
    if not math.isfinite(x):
        return None
    return int(x) if x.is_integer() and "." not in str(value) and "e" not in str(value).lower() else x


def infer_dimension(name: str, values: Iterable[Any], *, kind: str | None = None, max_levels: int = 256) -> Dimension:
    """Infer one dimension from a column's values; ``kind`` forces ``"numeric"`` or ``"categorical"``."""
    if kind not in (None, "numeric", "categorical"):
        raise SpaceError(f"kind={kind!r} for column {name!r} is not allowed: expected 'numeric' or 'categorical'")
    vals = list(values)
    if not vals:
        raise SpaceError(f"column {name!r} has no values")
    nums = [parse_number(v) for v in vals]
    numeric = all(n is not None for n in nums)
    if kind == "numeric" and not numeric:
        bad = next(v for v, n in zip(vals, nums, strict=True) if n is None)
        raise SpaceError(f"column {name!r} was declared numeric but holds {bad!r}")
    if kind == "categorical" or not numeric:
        levels = sorted({str(v).strip() for v in vals})
        return Categorical(name, tuple(levels))
    levels_num = sorted(set(nums))  # type: ignore[type-var]
    if len(levels_num) <= max_levels:
        return Choice(name, tuple(levels_num))
    low, high = float(levels_num[0]), float(levels_num[-1])
    return Real(name, low, high, log=low > 0 and high / low >= 8)


_MEMO_SIZE = 200_000  # remembered validations per tabular family (a few hundred bytes each)


class TabularFamily:
    """A family whose configurations come from a table; it cannot build modules (replay only).

    ``counts`` is absent: the surrogate encoders use the raw parameters only.
    """

    kind = "tabular"

    def __init__(self, name: str, space: Space) -> None:
        if not name or not isinstance(name, str):
            raise SpaceError(f"a tabular family needs a non-empty name, got {name!r}")
        self.name = name
        self.space = space
        self._memo: dict[tuple[Any, ...], tuple[Config, str]] = {}

    @classmethod
    def from_rows(cls, name: str, rows: Sequence[Mapping[str, Any]], params: Sequence[str], *,
                  categorical: Sequence[str] = (), numeric: Sequence[str] = (), max_levels: int = 256) -> TabularFamily:
        """Infer the space of ``params`` from ``rows`` (e.g. from :class:`csv.DictReader`)."""
        if not params:
            raise SpaceError("params must name at least one column")
        if not rows:
            raise SpaceError("the table has no rows")
        columns = set(rows[0])
        for p in (*params, *categorical, *numeric):
            if p not in columns:
                raise SpaceError(f"column {p!r} is not in the table: columns are {', '.join(sorted(columns))}")
        for p in (*categorical, *numeric):
            if p not in params:
                raise SpaceError(f"column {p!r} is typed but not one of params ({', '.join(params)})")
        both = set(categorical) & set(numeric)
        if both:
            raise SpaceError(f"column {sorted(both)[0]!r} is declared both numeric and categorical")
        dims = []
        for p in params:
            kind = "categorical" if p in categorical else "numeric" if p in numeric else None
            dims.append(infer_dimension(p, (r[p] for r in rows), kind=kind, max_levels=max_levels))
        return cls(name, Space(dims))

    @classmethod
    def from_spec(cls, name: str, spec: Mapping[str, Any]) -> TabularFamily:
        return cls(name, space_from_spec(spec))

    def coerce(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Text values (from CSV or JSON) converted to the dimension's type (see :meth:`Space.coerce`)."""
        out = self.space.coerce(config)
        for k, v in out.items():  # categorical levels are text: a number read from JSON matches its text
            if k in self.space.names and self.space[k].kind == "categorical" and not isinstance(v, str):
                out[k] = str(v)
        return out

    def _canonical(self, config: Mapping[str, Any]) -> tuple[Config, str]:
        """Validated config and key, remembered per distinct input (a replay validates the same table rows
        again and again: table build, pools, profiling, the oracle)."""
        try:
            memo_key = (tuple((k, type(v), v) for k, v in config.items())  # 1, 1.0 and True differ here
                        if isinstance(config, Mapping) else None)
            hit = self._memo.get(memo_key) if memo_key is not None else None
        except TypeError:  # an unhashable value: validate below names it
            memo_key, hit = None, None
        if hit is None:
            cfg = self.space.validate(self.coerce(config))
            hit = (cfg, self.space.key(cfg, family=self.name))
            if memo_key is not None and len(self._memo) < _MEMO_SIZE:
                self._memo[memo_key] = hit
        return hit

    def __getstate__(self) -> dict[str, Any]:
        # the memo is a cache: a copy sent to another process (a fleet's actors) starts without it
        return {**self.__dict__, "_memo": {}}

    def validate(self, config: Mapping[str, Any]) -> Config:
        return dict(self._canonical(config)[0])

    def key(self, config: Mapping[str, Any]) -> str:
        return self._canonical(config)[1]

    def __repr__(self) -> str:
        return f"<tabular family {self.name!r}: {self.space!r}>"
