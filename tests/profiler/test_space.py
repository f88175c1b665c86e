"""Property and example tests for :mod:`profiler.space` (typed parameter spaces).

Random spaces come from the :func:`space_cases` hypothesis strategy: 1-6 uniquely named dimensions mixing
``Integer`` (with/without ``log`` and ``step``), ``Real`` (with/without ``log``), ``Choice`` of ints,
``Categorical`` of strings and ``Boolean``, optionally with up to two "lower half" constraints whose number of
admitted configurations is known in closed form. The tests at the end of the file pin defects they found
in ``profiler/space.py`` (fixed).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import string
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import qmc

from profiler.space import (
    Boolean,
    Categorical,
    Choice,
    Config,
    Constraint,
    Dimension,
    Integer,
    Real,
    Space,
    SpaceError,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

PROPS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Dimension names use lower-case letters and "_" only, so "Unknown9" can never collide with one.
NAMES = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=8)
WORDS = st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=6)
METHODS = st.sampled_from(["random", "sobol"])
SEEDS = st.integers(0, 2**32 - 1)
UNITS = st.floats(0.0, 1.0, exclude_max=True, allow_nan=False)
KINDS_FINITE = ("integer", "choice", "categorical", "boolean")
KINDS_ALL = (*KINDS_FINITE, "real")


# -- strategies ----------------------------------------------------------------------------------------------
@st.composite
def dimensions(draw: st.DrawFn, name: str, kinds: tuple[str, ...] = KINDS_ALL, small: bool = False) -> Dimension:
    """One random dimension called ``name``; ``small`` keeps finite grids to at most 9 values."""
    kind = draw(st.sampled_from(kinds))
    if kind == "integer":
        log = draw(st.booleans())
        low = draw(st.integers(1, 40)) if log else draw(st.integers(-40, 40))
        step = draw(st.sampled_from((1, 1, 2, 3, 8)))
        high = low + draw(st.integers(0, 8 if small else 1100))
        return Integer(name, low, high, step=step, log=log)
    if kind == "real":
        log = draw(st.booleans())
        low = draw(st.floats(1e-3, 100.0)) if log else draw(st.floats(-100.0, 100.0))
        return Real(name, low, low + draw(st.floats(1e-2, 1000.0)), log=log)
    if kind == "choice":
        return Choice(name, tuple(draw(st.lists(st.integers(-64, 256), min_size=1, max_size=6, unique=True))))
    if kind == "categorical":
        return Categorical(name, tuple(draw(st.lists(WORDS, min_size=1, max_size=5, unique=True))))
    return Boolean(name)


def lower_half(dim: Dimension) -> tuple[Constraint, float]:
    """A constraint keeping the lower half of ``dim`` (>= ~half the sampling mass) and how many values it keeps."""
    vals = dim.values()
    if vals is None:
        assert isinstance(dim, Real)
        mid = (dim.low + dim.high) / 2
        return Constraint(f"{dim.name}_low", lambda c, n=dim.name, m=mid: c[n] <= m, f"{dim.name} <= {mid}"), math.inf
    keep = vals[: (len(vals) + 1) // 2]
    allowed = frozenset(keep)
    return Constraint(f"{dim.name}_low", lambda c, n=dim.name, a=allowed: c[n] in a, f"{dim.name} in {keep}"), len(keep)


@dataclass(frozen=True)
class SpaceCase:
    """A random space plus the number of configurations its constraints admit (``inf`` if continuous)."""

    space: Space
    admitted: float


@st.composite
def space_cases(draw: st.DrawFn, *, finite: bool = False, small: bool = False, constrained: bool = True,
                max_dims: int = 6) -> SpaceCase:
    names = draw(st.lists(NAMES, min_size=1, max_size=max_dims, unique=True))
    kinds = KINDS_FINITE if finite else KINDS_ALL
    dims = [draw(dimensions(n, kinds, small)) for n in names]
    counts = {d.name: d.size for d in dims}
    constraints: list[Constraint] = []
    if constrained:
        for i in draw(st.lists(st.integers(0, len(dims) - 1), max_size=2, unique=True)):
            con, kept = lower_half(dims[i])
            constraints.append(con)
            counts[dims[i].name] = kept
    return SpaceCase(Space(dims, constraints), math.prod(counts.values()))


@st.composite
def space_with_config(draw: st.DrawFn, constrained: bool = True) -> tuple[Space, Config]:
    case = draw(space_cases(constrained=constrained))
    cfg = case.space.sample(1, method="random", seed=draw(SEEDS))[0]
    return case.space, cfg


def equivalent_spellings(space: Space, cfg: Config) -> list[dict[str, Any]]:
    """Other spellings of ``cfg`` that must validate to it: numpy scalars, integral floats, numpy str/bool."""
    a: dict[str, Any] = {}
    b: dict[str, Any] = {}
    for d in space.dimensions:
        v = cfg[d.name]
        if isinstance(d, Boolean):
            a[d.name], b[d.name] = np.bool_(v), v
        elif isinstance(d, Categorical):
            a[d.name], b[d.name] = np.str_(v), v
        elif isinstance(d, Integer | Choice):
            a[d.name], b[d.name] = np.int64(v), float(v)
        else:
            a[d.name], b[d.name] = np.float64(v), v
    return [a, b]


def same_typed(x: Config, y: Config) -> bool:
    return list(x) == list(y) and all(type(x[k]) is type(y[k]) and x[k] == y[k] for k in x)


# -- sampling ------------------------------------------------------------------------------------------------
@PROPS
@given(case=space_cases(), method=METHODS, seed=SEEDS, data=st.data())
def test_sample_unique_valid_constrained_deterministic_and_prefix_stable(
        case: SpaceCase, method: str, seed: int, data: st.DataObject) -> None:
    space = case.space
    n = data.draw(st.integers(1, int(min(12, max(1, case.admitted // 4)))), label="n")
    k = data.draw(st.integers(0, n - 1), label="k")
    configs = space.sample(n, method=method, seed=seed)
    assert len(configs) == n
    for c in configs:
        assert list(c) == list(space.names)
        assert same_typed(space.validate(c), c)
        assert all(con(c) for con in space.constraints)
    assert len({space.key(c, "fam") for c in configs}) == n
    assert space.sample(n, method=method, seed=seed) == configs
    assert space.sample(k, method=method, seed=seed) == configs[:k]


@FEW
@given(case=space_cases(), method=METHODS, seed=SEEDS, n=st.integers(1, 40), k=st.integers(0, 40))
def test_sample_with_repeats_valid_deterministic_and_prefix_stable(
        case: SpaceCase, method: str, seed: int, n: int, k: int) -> None:
    space = case.space
    k = min(k, n)
    configs = space.sample(n, method=method, seed=seed, unique=False)
    assert len(configs) == n
    for c in configs:
        assert same_typed(space.validate(c), c)
    assert space.sample(n, method=method, seed=seed, unique=False) == configs
    assert space.sample(k, method=method, seed=seed, unique=False) == configs[:k]


@pytest.mark.parametrize("method", ["random", "sobol"])
def test_sample_edge_cases_and_errors(method: str) -> None:
    space = Space([Integer("a", 0, 9)], [Constraint("lt3", lambda c: c["a"] < 3, "a < 3")])
    assert space.sample(0, method=method) == []
    assert sorted(c["a"] for c in space.sample(3, method=method, seed=1)) == [0, 1, 2]
    with pytest.raises(SpaceError, match=r"only find 3 of n=10"):
        space.sample(10, method=method, seed=1)
    for bad_n in (-1, 1.5, True, "3"):
        with pytest.raises(SpaceError, match="n="):
            space.sample(bad_n, method=method)  # type: ignore[arg-type]


def test_sample_unknown_method_and_exclude() -> None:
    space = Space([Integer("a", 0, 9), Boolean("b")])
    with pytest.raises(SpaceError, match="grid"):
        space.sample(2, method="grid")
    first = space.sample(3, seed=5, family="f")
    excluded = {space.key(c, "f") for c in first}
    rest = space.sample(17, seed=5, family="f", exclude=excluded)
    assert not excluded & {space.key(c, "f") for c in rest}
    assert len(first) + len(rest) == space.cardinality == 20


def test_sobol_covers_unit_square_more_evenly_than_random() -> None:
    space = Space([Real("x", 0.0, 1.0), Real("y", 0.0, 1.0)])

    def points(method: str, seed: int) -> np.ndarray:
        return np.array([[c["x"], c["y"]] for c in space.sample(64, method=method, seed=seed)])

    def empty_cells(p: np.ndarray) -> int:
        return 64 - len({(int(x * 8), int(y * 8)) for x, y in p})

    seeds = range(5)
    sobol = [points("sobol", s) for s in seeds]
    rand = [points("random", s) for s in seeds]
    # 64 scrambled Sobol points form a (0, 6, 2)-net: one point per 1/8 x 1/8 cell; random leaves ~23 empty.
    assert np.mean([empty_cells(p) for p in sobol]) < np.mean([empty_cells(p) for p in rand])
    assert max(empty_cells(p) for p in sobol) <= 2
    assert np.mean([qmc.discrepancy(p) for p in sobol]) < np.mean([qmc.discrepancy(p) for p in rand])


def test_log_integer_samples_are_roughly_log_uniform() -> None:
    log_space = Space([Integer("c", 1, 1024, log=True)])
    lin_space = Space([Integer("c", 1, 1024)])
    log_vals = np.array([c["c"] for c in log_space.sample(4000, seed=0, unique=False)])
    lin_vals = np.array([c["c"] for c in lin_space.sample(4000, seed=0, unique=False)])
    assert 0.45 < np.mean(log_vals <= 32) < 0.60  # exact share of the log axis: ~0.527
    assert np.mean(lin_vals <= 32) < 0.06


# -- validation ----------------------------------------------------------------------------------------------
@PROPS
@given(sc=space_with_config())
def test_validate_is_idempotent_and_coerces_equivalent_spellings(sc: tuple[Space, Config]) -> None:
    space, cfg = sc
    once = space.validate(cfg)
    assert same_typed(space.validate(once), once)
    for variant in equivalent_spellings(space, cfg):
        got = space.validate(variant)
        assert same_typed(got, once)
        assert same_typed(space.validate(got), got)
        assert space.key(variant, "fam") == space.key(cfg, "fam")


def test_validate_coerces_integer_spellings_to_int() -> None:
    space = Space([Integer("hw", 8, 64, step=8)])
    for value in (32, 32.0, np.int64(32), np.int32(32), np.float64(32.0), np.uint8(32)):
        out = space.validate({"hw": value})["hw"]
        assert out == 32 and type(out) is int


def bad_values(dim: Dimension) -> list[tuple[Any, str]]:
    """Values ``dim`` must reject, each with a fragment the error message must contain (besides the name)."""
    if isinstance(dim, Integer):
        rng = f"{dim.low}..{dim.high}"
        vals = dim.values()
        out: list[tuple[Any, str]] = [
            (True, rng), (np.bool_(False), rng), (dim.low + 0.5, rng), (float("nan"), rng), ("3", rng),
            (None, rng), (dim.low - dim.step, rng), (vals[-1] + dim.step, rng), (dim.high + 1, rng)]
        if dim.step > 1 and dim.low + 1 <= dim.high:
            out.append((dim.low + 1, f"steps of {dim.step}"))
        return out
    if isinstance(dim, Real):
        rng = f"[{dim.low}, {dim.high}]"
        return [(float("nan"), rng), (float("inf"), rng), (float("-inf"), rng), (dim.low - 1.0, rng),
                (dim.high + 1.0, rng), (True, rng), ("0.5", rng), (None, rng)]
    if isinstance(dim, Boolean):
        return [(0, "False, True"), (1, "False, True"), ("True", "False, True"), (None, "False, True")]
    allowed = ", ".join(map(repr, dim.values() or ()))
    if isinstance(dim, Categorical):
        return [("zzzzzzz", allowed), (1, allowed), (True, allowed), (None, allowed)]
    assert isinstance(dim, Choice)
    return [(max(dim.choices) + 1, allowed), (min(dim.choices) - 0.5, allowed), (True, allowed),
            (str(dim.choices[0]), allowed), (None, allowed)]


@PROPS
@given(sc=space_with_config())
def test_validate_rejects_bad_values_naming_the_field_and_allowed_values(sc: tuple[Space, Config]) -> None:
    space, cfg = sc
    for dim in space.dimensions:
        for value, fragment in bad_values(dim):
            with pytest.raises(SpaceError) as err:
                space.validate({**cfg, dim.name: value})
            msg = str(err.value)
            assert msg.startswith(f"{dim.name}="), msg
            assert fragment in msg, msg
            assert not space.is_valid({**cfg, dim.name: value})


@PROPS
@given(sc=space_with_config(), data=st.data())
def test_validate_rejects_unknown_and_missing_fields(sc: tuple[Space, Config], data: st.DataObject) -> None:
    space, cfg = sc
    with pytest.raises(SpaceError, match="'Unknown9'"):
        space.validate({**cfg, "Unknown9": 1})
    name = data.draw(st.sampled_from(space.names))
    with pytest.raises(SpaceError) as err:
        space.validate({k: v for k, v in cfg.items() if k != name})
    assert f"missing field {name!r}" in str(err.value)
    with pytest.raises(SpaceError):
        space.validate(list(cfg.values()))  # type: ignore[arg-type]


def test_validate_reports_violated_constraint() -> None:
    space = Space([Integer("cin", 1, 64), Integer("cout", 1, 64)],
                  [Constraint("grow", lambda c: c["cout"] >= c["cin"], "cout >= cin")])
    assert space.validate({"cin": 8, "cout": 16}) == {"cin": 8, "cout": 16}
    with pytest.raises(SpaceError, match=r"'grow'.*cout >= cin"):
        space.validate({"cin": 16, "cout": 8})


# -- keys ----------------------------------------------------------------------------------------------------
@PROPS
@given(sc=space_with_config(), data=st.data())
def test_key_ignores_dict_order_and_spelling(sc: tuple[Space, Config], data: st.DataObject) -> None:
    space, cfg = sc
    order = data.draw(st.permutations(space.names), label="order")
    permuted = {n: cfg[n] for n in order}
    assert space.key(permuted, "fam") == space.key(cfg, "fam")
    assert list(space.validate(permuted)) == list(space.names)
    key = space.key(cfg, "fam")
    assert len(key) == 20 and all(ch in "0123456789abcdef" for ch in key)
    assert space.key(cfg, "fam2") != key
    assert space.key(cfg, "") != key


@PROPS
@given(sc=space_with_config(constrained=False), data=st.data())
def test_key_differs_for_different_configs(sc: tuple[Space, Config], data: st.DataObject) -> None:
    space, cfg = sc
    changeable = [d for d in space.dimensions if d.size > 1]
    if not changeable:
        return
    dim = data.draw(st.sampled_from(changeable), label="dim")
    if isinstance(dim, Real):
        new = dim.high if cfg[dim.name] != dim.high else dim.low
    else:
        new = data.draw(st.sampled_from([v for v in dim.values() or () if v != cfg[dim.name]]), label="new")
    other = {**cfg, dim.name: new}
    assert space.key(other, "fam") != space.key(cfg, "fam")


_FIXED_SRC = '''
import numpy as np
from profiler.space import Boolean, Categorical, Choice, Integer, Real, Space
space = Space([Integer("hw", 7, 224, log=True), Integer("cin", 8, 256, step=8), Choice("kernel", (3, 5, 7)),
               Categorical("act", ("relu", "hswish", "swish")), Boolean("se"), Real("ratio", 0.0, 1.0)])
configs = [
    {"hw": 32, "cin": 64, "kernel": 3, "act": "relu", "se": False, "ratio": 0.25},
    {"se": True, "ratio": 1.0, "act": "swish", "kernel": 7, "cin": 256, "hw": 224},
    {"hw": np.int64(7), "cin": 8.0, "kernel": np.int64(5), "act": np.str_("hswish"), "se": np.bool_(True),
     "ratio": np.float64(0.1)},
]
result = {
    "keys": [space.key(c, family="mbconv") for c in configs],
    "hash": space.hash(),
    "sobol": [space.key(c, family="mbconv") for c in space.sample(6, method="sobol", seed=3)],
    "random": [space.key(c, family="mbconv") for c in space.sample(6, method="random", seed=3)],
}
'''

# Pinned: sha256 of the canonical JSON of family + config, first 20 hex digits. Changing the key format
# orphans every stored measurement, so it must be a deliberate change of this literal.
PINNED_KEY = "fa5abbf44e7a1fa95b99"


def _fixed_result() -> dict[str, Any]:
    ns: dict[str, Any] = {}
    exec(_FIXED_SRC, ns)
    return ns["result"]


def test_key_pinned_literal_value() -> None:
    assert _fixed_result()["keys"][0] == PINNED_KEY


@pytest.mark.slow
def test_keys_hash_and_samples_are_stable_across_processes() -> None:
    here = _fixed_result()
    script = _FIXED_SRC + "\nimport json\nprint(json.dumps(result))\n"
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    procs = {seed: subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True,
                                    env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": path})
             for seed in ("0", "987654")}
    for seed, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert json.loads(out) == here, seed


# -- from_unit -----------------------------------------------------------------------------------------------
@PROPS
@given(dim=dimensions("d"), us=st.lists(UNITS, min_size=1, max_size=50))
def test_from_unit_maps_unit_interval_to_allowed_values_monotonically(dim: Dimension, us: list[float]) -> None:
    u = np.sort(np.asarray(us))
    out = dim.from_unit(u)
    assert len(out) == len(u)
    vals = dim.values()
    if vals is None:
        assert isinstance(dim, Real)
        assert all(type(v) is float and dim.low <= v <= dim.high for v in out)
        assert all(a <= b for a, b in itertools.pairwise(out))
        return
    for v in out:
        got = dim.validate(v)
        assert got == v and type(got) is type(v)
    idx = [vals.index(v) for v in out]
    assert idx == sorted(idx)  # ordered dimensions: larger u never gives an earlier grid value


@PROPS
@given(dim=dimensions("d"))
def test_from_unit_reaches_both_endpoints(dim: Dimension) -> None:
    ends = np.array([0.0, np.nextafter(1.0, 0.0)])
    lo, hi = dim.from_unit(ends)
    vals = dim.values()
    if vals is None:
        assert isinstance(dim, Real)
        assert lo == pytest.approx(dim.low) and hi == pytest.approx(dim.high)
    else:
        assert (lo, hi) == (vals[0], vals[-1])


@pytest.mark.parametrize(
    ("dim", "threshold", "expected"),
    [
        (Integer("c", 1, 1024, log=True), 32, 0.527),  # half the log axis (plus the rounding cell of 32)
        (Integer("c", 0, 1000), 500, 0.5),
        (Integer("c", 0, 1000, step=10), 500, 0.5),
        (Integer("c", 1, 1024), 32, 32 / 1024),
        (Real("x", 1.0, 1024.0, log=True), 32, 0.5),
        (Real("x", 0.0, 10.0), 5, 0.5),
    ],
)
def test_from_unit_distribution(dim: Dimension, threshold: float, expected: float) -> None:
    u = np.random.default_rng(123).random(20_000)
    share = np.mean(np.asarray(dim.from_unit(u)) <= threshold)
    assert share == pytest.approx(expected, abs=0.03)


def test_from_unit_single_value_dimension() -> None:
    assert Integer("c", 5, 5).from_unit(np.array([0.0, 0.5, 0.99])) == [5, 5, 5]
    assert Integer("c", 5, 9, step=10).values() == (5,)
    assert Boolean("b").from_unit(np.array([0.1, 0.9])) == [False, True]


# -- enumerate -----------------------------------------------------------------------------------------------
@PROPS
@given(case=space_cases(finite=True, small=True, constrained=False, max_dims=4))
def test_enumerate_unconstrained_is_full_product(case: SpaceCase) -> None:
    space = case.space
    configs = list(space.enumerate())
    assert len(configs) == math.prod(len(d.values() or ()) for d in space.dimensions) == space.cardinality
    for c in configs:
        assert same_typed(space.validate(c), c)
    assert len({space.key(c, "fam") for c in configs}) == len(configs)


@PROPS
@given(case=space_cases(finite=True, small=True, constrained=True, max_dims=4))
def test_enumerate_with_constraints_counts_admitted_points(case: SpaceCase) -> None:
    space = case.space
    configs = list(space.enumerate())
    grids = [d.values() or () for d in space.dimensions]
    brute = sum(all(con(dict(zip(space.names, p, strict=True))) for con in space.constraints)
                for p in itertools.product(*grids))
    assert len(configs) == brute == case.admitted
    for c in configs:
        assert space.is_valid(c) and all(con(c) for con in space.constraints)


def test_enumerate_refuses_continuous_or_too_large_spaces() -> None:
    with pytest.raises(SpaceError, match="enumerated"):
        list(Space([Integer("a", 0, 3), Real("x", 0.0, 1.0)]).enumerate())
    space = Space([Integer("a", 0, 4), Boolean("b")])
    with pytest.raises(SpaceError, match="limit=9"):
        list(space.enumerate(limit=9))
    assert len(list(space.enumerate(limit=10))) == 10


# -- construction and hash -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: Space([Integer("width", 0, 1), Real("width", 0.0, 1.0)]), "width"),
        (lambda: Space([]), "at least one dimension"),
        (lambda: Integer("hw", 10, 5), "hw"),
        (lambda: Integer("hw", 1, 5, step=0), "hw"),
        (lambda: Integer("hw", 1, 5, step=-2), "hw"),
        (lambda: Integer("hw", 0, 5, log=True), "hw"),
        (lambda: Integer("hw", 1.5, 5), "hw"),
        (lambda: Real("lr", 1.0, 0.0), "lr"),
        (lambda: Real("lr", 0.0, 1.0, log=True), "lr"),
        (lambda: Real("lr", 0.0, math.inf), "lr"),
        (lambda: Choice("kernel", ()), "kernel"),
        (lambda: Choice("kernel", (3, 5, 3)), "kernel"),
        (lambda: Categorical("act", ("relu", "relu")), "act"),
    ],
)
def test_construction_errors_name_the_dimension(build: Callable[[], Any], fragment: str) -> None:
    with pytest.raises(SpaceError, match=fragment):
        build()


def mutations(dim: Dimension) -> list[Dimension]:
    """Definitions differing from ``dim`` in one respect (each must change the space hash)."""
    out: list[Dimension] = [replace(dim, name=dim.name + "_x")]  # type: ignore[type-var]
    if isinstance(dim, Integer):
        out += [Integer(dim.name, dim.low, dim.high + 1, dim.step, dim.log),
                Integer(dim.name, dim.low, dim.high, dim.step + 1, dim.log),
                Integer(dim.name, dim.low + 1, dim.high + 1, dim.step, dim.log)]
        if dim.low >= 1:
            out.append(Integer(dim.name, dim.low, dim.high, dim.step, not dim.log))
    elif isinstance(dim, Real):
        out += [Real(dim.name, dim.low, dim.high + 1.0, dim.log),
                Real(dim.name, dim.low / 2 if dim.log else dim.low - 0.5, dim.high, dim.log)]
        if dim.low > 0:
            out.append(Real(dim.name, dim.low, dim.high, not dim.log))
    elif isinstance(dim, Boolean):
        out += [Categorical(dim.name, (False, True)), Choice(dim.name, (False, True))]
    elif isinstance(dim, Categorical):
        out += [Choice(dim.name, dim.choices), Categorical(dim.name, (*dim.choices, "zzzzzzz"))]
    else:
        assert isinstance(dim, Choice)
        out += [Categorical(dim.name, dim.choices), Choice(dim.name, (*dim.choices, max(dim.choices) + 1))]
    return out


@PROPS
@given(case=space_cases(), data=st.data())
def test_space_hash_is_stable_and_changes_with_any_dimension(case: SpaceCase, data: st.DataObject) -> None:
    space = case.space
    h = space.hash()
    assert len(h) == 16 and h == space.hash()
    assert Space(space.dimensions, space.constraints).hash() == h
    i = data.draw(st.integers(0, len(space) - 1), label="i")
    for new in mutations(space.dimensions[i]):
        if new.name != space.dimensions[i].name and new.name in space.names:
            continue
        dims = list(space.dimensions)
        dims[i] = new
        assert Space(dims, space.constraints).hash() != h, new
    assert Space(space.dimensions, (*space.constraints, Constraint("extra", lambda c: True))).hash() != h
    if len(space) > 1:
        assert Space(space.dimensions[::-1], space.constraints).hash() != h


# -- defects these tests found in space.py, now fixed --------------------------------------------------------
def test_choice_rejects_choices_equal_by_value() -> None:
    with pytest.raises(SpaceError, match="kernel"):
        Space([Choice("kernel", (3, 3.0))])


def test_key_with_numpy_typed_choices() -> None:
    np_space = Space([Choice("kernel", tuple(np.array([3, 5, 7])))])
    py_space = Space([Choice("kernel", (3, 5, 7))])
    assert np_space.key({"kernel": 3}, "f") == py_space.key({"kernel": 3}, "f")
    assert np_space.hash() == py_space.hash()


@pytest.mark.parametrize("bounds", [(np.int64(7), np.int64(224)), (7.0, 224.0)])
def test_integer_bounds_are_canonicalised(bounds: tuple[Any, Any]) -> None:
    assert Space([Integer("hw", *bounds)]).hash() == Space([Integer("hw", 7, 224)]).hash()
    assert "7..224" in Integer("hw", *bounds).describe()


def test_key_equal_for_signed_zero() -> None:
    space = Space([Real("x", -1.0, 1.0)])
    assert space.key({"x": -0.0}, "f") == space.key({"x": 0.0}, "f")


@pytest.mark.parametrize("seed", [-1, 1.5, "0"])
def test_bad_seed_is_a_space_error(seed: Any) -> None:
    space = Space([Integer("hw", 7, 224)])
    for method in ("random", "sobol"):
        with pytest.raises(SpaceError, match="seed"):
            space.sample(2, method=method, seed=seed)
