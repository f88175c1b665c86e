"""Acquiring where networks live: candidate pools weighted toward the blocks of the networks a campaign serves.

A campaign told the networks it serves (``--around torchvision:resnet50,torchvision:mobilenet_v2``, or files)
decomposes them (:func:`profiler.decompose.from_torch`) and keeps the blocks of its own family: the *targets*.
Every draw of candidates (the initial design, the validation set, each query's pool) then takes ``around_share``
of its configurations near the targets and the rest from the whole space as before:

- first the targets themselves, in a seeded order (each measured once: a measured key is excluded);
- then neighbours: a target with each ordered dimension moved by a normal step of ``RADIUS`` of its axis (on the
  axis it is sampled on: log for log-scaled sizes) and each unordered one changed with probability
  ``FLIP``, kept when the family's space accepts it.

Contract: :func:`around_sampler` takes and returns a draw function ``draw(n, method, seed, exclude)``; the same
arguments give the same configurations, none of them in ``exclude`` and none twice. Where a campaign serves no
network (no ``around``), the draw is unchanged.

Example:
    >>> from profiler.families import get_family
    >>> fam = get_family("mbconv")
    >>> t = {"input_hw": 56, "cin": 24, "cout": 24, "expansion": 6, "kernel": 3, "stride": 1, "se": False,
    ...      "act": "relu6"}
    >>> draw = around_sampler(lambda n, m, s, ex: fam.space.sample(n, method=m, seed=s, family="mbconv",
    ...                                                           exclude=ex), fam, [t], 0.5)
    >>> got = draw(10, "random", 0, set())
    >>> len(got), got[0] == fam.validate(t), sum(c["input_hw"] in range(40, 80) for c in got) >= 5
    (10, True, True)
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from acquisition.campaign import CampaignError

__all__ = ["FLIP", "RADIUS", "around_sampler", "around_targets", "parse_around"]

RADIUS = 0.06  # a neighbour's step, as a share of each ordered dimension's axis (one standard deviation)
FLIP = 0.2  # the chance an unordered dimension (activation, squeeze-excite) takes another value

Draw = Callable[[int, str, int, set[str]], list[dict[str, Any]]]


def parse_around(text: str) -> list[str]:
    """The entries of ``around`` (checked by :meth:`acquisition.campaign.CampaignSpec.validate`)."""
    return [t.strip() for t in str(text).split(",") if t.strip()]


def _file_blocks(path: str) -> list[tuple[str, dict[str, Any]]]:
    """Blocks of a file: a network spec or a decomposition (JSON with ``blocks`` or ``parts``), or a list of
    model names (one per line)."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    try:
        d = json.loads(text)
    except json.JSONDecodeError:
        return [b for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
                for b in _model_blocks(line.strip())]
    if isinstance(d, dict) and isinstance(d.get("parts"), list):
        return [(p["family"], p["config"]) for p in d["parts"] if p.get("kind") == "block"]
    if isinstance(d, dict) and isinstance(d.get("blocks"), list):
        return [(b["family"], b["config"]) for b in d["blocks"]]
    raise CampaignError(f"around file {path!r} is neither a network spec nor a decomposition (no 'blocks' or "
                        "'parts')")


def _model_blocks(name: str) -> list[tuple[str, dict[str, Any]]]:
    from profiler.decompose import from_torch
    from profiler.zoo import ModelNameError, load_model

    try:
        d = from_torch(load_model(name), name=name)
    except ModelNameError as e:
        raise CampaignError(str(e)) from None
    return [(p.family or "", p.config or {}) for p in d.blocks]


def around_targets(items: Sequence[str], family: Any) -> list[dict[str, Any]]:
    """The distinct blocks of ``family`` in the networks ``items`` (model names or files), validated; a one-line
    error when none of them holds a block of that family."""
    out: dict[str, dict[str, Any]] = {}
    for t in items:
        blocks = _file_blocks(t) if os.path.isfile(t) else _model_blocks(t)
        for fam, cfg in blocks:
            if fam == family.name:
                v = family.validate(cfg)
                out.setdefault(family.key(v), v)
    if not out:
        raise CampaignError(f"around: none of {', '.join(items)} holds a block of family {family.name!r}")
    return list(out.values())


def _axis(dim: Any) -> tuple[tuple[Any, ...], np.ndarray] | None:
    vals = dim.values()
    if not vals or len(vals) < 2:
        return None
    pos = np.asarray(dim._positions(), dtype=float)
    return tuple(vals), (pos - pos[0]) / (pos[-1] - pos[0])


def _neighbour(space: Any, base: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    out = dict(base)
    for dim in space.dimensions:
        axis = _axis(dim)
        if axis is None:
            continue
        vals, unit = axis
        i = vals.index(base[dim.name])
        if getattr(dim, "ordered", True):
            x = unit[i] + rng.normal(0.0, RADIUS)
            out[dim.name] = vals[int(np.argmin(np.abs(unit - x)))]
        elif rng.random() < FLIP:
            out[dim.name] = vals[int(rng.integers(len(vals)))]
    return out


def around_sampler(draw: Draw, family: Any, targets: Sequence[dict[str, Any]], share: float) -> Draw:
    """``draw`` with ``share`` of every draw taken near ``targets`` (see the module docstring)."""
    space = family.space

    def near(n: int, seed: int, exclude: set[str]) -> list[dict[str, Any]]:
        rng = np.random.default_rng(seed)
        seen, out = set(exclude), []
        for i in rng.permutation(len(targets)):
            if len(out) >= n:
                return out
            k = family.key(targets[i])
            if k not in seen:
                seen.add(k)
                out.append(dict(targets[i]))
        tries = 0
        while len(out) < n and tries < 50 * n:
            tries += 1
            cfg = _neighbour(space, targets[int(rng.integers(len(targets)))], rng)
            if not space.is_valid(cfg):
                continue
            cfg = family.validate(cfg)
            k = family.key(cfg)
            if k not in seen:
                seen.add(k)
                out.append(cfg)
        return out

    def draw_around(n: int, method: str, seed: int, exclude: set[str]) -> list[dict[str, Any]]:
        near_n = round(share * n)
        picked = near(near_n, seed, exclude)
        keys = {family.key(c) for c in picked}
        rest = draw(n - len(picked), method, seed, set(exclude) | keys)
        return picked + rest

    return draw_around
