"""The latency of a real model: its blocks predicted by bundles, its glue measured once per platform.

A model's :class:`~profiler.decompose.Decomposition` says which parts are blocks of registered families and which are
glue layers. :class:`RealLatencyModel` predicts

    latency = Σ block predictions (each bundle's log-normal; their sum by Fenton–Wilkinson) + Σ glue latencies,

with glue latencies read from the store (family ``glue``, measured on the bundles' platform and protocol:
:func:`measure_glue` measures the missing ones). ``coverage`` is the share of the predicted latency that block
bundles predict; the rest is glue. A block whose family has no bundle is an error naming the family and the
block, unless ``allow_glue`` or its family is measured without a bundle (``convbn``, stems and heads): it is
then measured and counted like glue. A calibration
(:class:`nas.latency.Calibration`) maps the total when given, and widens the 80 % interval by its ``std_scale``
(how far its own networks fell outside their intervals); calibrations by family (a mapping) map each model by
the family that holds most of its blocks' multiply-accumulates.

Decompositions are cached as JSON by model name (:func:`cached_decomposition`), so predicting many models does
not run them again.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import norm

from nas.network import NetworkError
from profiler.decompose import FORMAT, Decomposition, Part
from profiler.files import atomic_write

__all__ = [
    "RealLatency",
    "RealLatencyModel",
    "cached_decomposition",
    "evaluate_real",
    "glue_items",
    "measure_glue",
    "measure_models",
    "plot_real",
]

Z80 = float(norm.ppf(0.9))  # the 80 % interval: 10th to 90th percentile


@dataclass
class RealLatency:
    """One model's predicted latency: median, 80 % interval, coverage by block bundles, and what it is made of."""

    name: str
    pred_ms: float
    p10_ms: float
    p90_ms: float
    coverage: float
    block_ms: float
    glue_ms: float
    blocks: int
    glue_layers: int
    block_macs_share: float
    as_glue: list[str] = field(default_factory=list)  # blocks without a bundle, counted as glue
    log_std: float = 0.0  # of the uncalibrated total (the blocks' spread; glue is measured)

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.name, "pred_ms": self.pred_ms, "p10_ms": self.p10_ms, "p90_ms": self.p90_ms,
                "coverage": self.coverage, "block_ms": self.block_ms, "glue_ms": self.glue_ms, "blocks": self.blocks,
                "glue_layers": self.glue_layers, "block_macs_share": self.block_macs_share,
                "blocks_as_glue": list(self.as_glue)}


def glue_items(d: Decomposition, predicted: Sequence[str] = (), *, allow_glue: bool = False
               ) -> list[tuple[str, dict[str, Any]]]:
    """What must be measured for ``d`` on a platform: ``(family, config)`` of every glue layer, and of every block
    whose family is not in ``predicted`` when ``allow_glue`` or when its family is measured without a bundle
    (``convbn``: stems and heads), else a one-line error naming the first."""
    out = []
    for p in d.prefer(predicted).parts:
        if p.kind == "glue":
            out.append(("glue", p.op or {}))
        elif p.family not in predicted:
            if not allow_glue and not getattr(_family(p.family or ""), "measured_without_bundle", False):
                have = ", ".join(sorted(predicted)) or "none"
                raise NetworkError(f"{d.name}: block {p.path} is of family {p.family!r}, which has no bundle "
                                   f"(bundles for: {have}); give its bundle, or --allow-glue to measure it")
            out.append((p.family or "", p.config or {}))
    return out


def _family(name: str) -> Any:
    from profiler.families import get_family
    from profiler.glue import GLUE

    return GLUE if name == "glue" else get_family(name)


def measure_glue(store: Any, profiler: Any, items: Sequence[tuple[str, dict[str, Any]]], *,
                 progress: bool = True) -> int:
    """Measure (and store, and charge as ``network_profile``) the items not measured yet; returns how many were."""
    from acquisition.profiling import profile_configs

    by_family: dict[str, list[dict[str, Any]]] = {}
    for fam, cfg in items:
        by_family.setdefault(fam, []).append(cfg)
    n = 0
    for fam, cfgs in by_family.items():
        family = _family(fam)
        keys = {family.key(c): c for c in cfgs}
        stored = store.find(profiler.platform_id, family.name, profiler.protocol.id, list(keys))
        todo = [c for k, c in keys.items() if k not in stored]
        if todo:
            profile_configs(store, profiler, family, todo, activity="network_profile", progress=progress)
            n += len(todo)
    return n


def measure_models(store: Any, profiler: Any, names: Sequence[str], input_shape: Sequence[int] = (1, 3, 224, 224),
                   *, progress: bool = True, statistic: str = "min_ms") -> np.ndarray:
    """Each model measured whole on ``profiler`` (hardware in the loop: stored and charged as
    ``network_profile``, reused when stored); its latency in ms (the protocol's ``statistic``), NaN where it
    failed."""
    from acquisition.profiling import profile_configs
    from profiler.zoo import MODEL

    configs = [{"model": n, "input": [int(s) for s in input_shape]} for n in names]
    profile_configs(store, profiler, MODEL, configs, activity="network_profile", progress=progress)
    keys = [MODEL.key(c) for c in configs]
    rows = store.find(profiler.platform_id, MODEL.name, profiler.protocol.id, keys)
    return np.asarray([rows[k][statistic] if k in rows and rows[k]["status"] == "ok" else np.nan for k in keys],
                      dtype=float)


class RealLatencyModel:
    """Bundles (one per family, one platform) and the store's glue measurements (see the module docstring)."""

    def __init__(self, predictors: Mapping[str, Any], store: Any, protocol: str, calibration: Any = None) -> None:
        from nas.latency import NetworkLatencyModel

        self.blocks = NetworkLatencyModel(predictors)
        self.platform = self.blocks.platform
        self.store, self.protocol, self.calibration = store, protocol, calibration

    def _measured(self, items: Sequence[tuple[str, dict[str, Any]]], name: str) -> list[float]:
        out: list[float] = []
        missing = 0
        for fam, cfg in items:
            family = _family(fam)
            key = family.key(cfg)
            row = self.store.find(self.platform, family.name, self.protocol, [key]).get(key)
            if row is None or row["status"] != "ok":
                missing += 1
                continue
            out.append(float(row["min_ms"]))
        if missing:
            raise NetworkError(f"{name}: {missing} glue layer(s) are not measured on platform {self.platform} "
                               f"(protocol {self.protocol}): measure them with --measure-glue on that device")
        return out

    def predict(self, d: Decomposition, *, allow_glue: bool = False) -> RealLatency:
        """The predicted latency of one decomposed model."""
        fams = set(self.blocks.families)
        d = d.prefer(fams)
        items = glue_items(d, sorted(fams), allow_glue=allow_glue)
        glue_ms = float(sum(self._measured(items, d.name)))
        blocks = [p for p in d.blocks if p.family in fams]
        mu, sd = self._block_dists(blocks)
        median_sum = float(np.sum(np.exp(mu)))
        mean_sum = float(np.sum(np.exp(mu + sd**2 / 2)))
        var_sum = float(np.sum(np.expm1(sd**2) * np.exp(2 * mu + sd**2)))
        s = float(np.sqrt(np.log1p(var_sum / max(mean_sum, 1e-300) ** 2))) if blocks else 0.0
        lo, hi = median_sum * np.exp(-Z80 * s), median_sum * np.exp(Z80 * s)
        total, p10, p90 = median_sum + glue_ms, lo + glue_ms, hi + glue_ms
        log_std = s * median_sum / total if total > 0 else 0.0  # the glue is measured: it narrows the total
        cal = self._calibration_for(d)
        if cal is not None:  # the calibrated median, and the interval widened by the calibration's own misses
            total = float(cal.apply(np.asarray([total]))[0])
            width = Z80 * log_std * cal.std_scale
            p10, p90 = total * float(np.exp(-width)), total * float(np.exp(width))
        as_glue = [p.path for p in d.blocks if p.family not in fams]
        return RealLatency(d.name, total, p10, p90, median_sum / (median_sum + glue_ms) if median_sum + glue_ms
                           else 0.0, median_sum, glue_ms, len(blocks), len(d.glue), d.block_macs_share, as_glue,
                           log_std)

    def _calibration_for(self, d: Decomposition) -> Any:
        if not isinstance(self.calibration, Mapping):
            return self.calibration
        macs: dict[str, int] = {}
        for p in d.blocks:
            macs[p.family or ""] = macs.get(p.family or "", 0) + p.macs
        return self.calibration.get(max(macs, key=macs.__getitem__)) if macs else None

    def _block_dists(self, blocks: Sequence[Part]) -> tuple[np.ndarray, np.ndarray]:
        from nas.network import Block

        if not blocks:
            return np.zeros(0), np.zeros(0)
        _, mu, sd = self.blocks.block_dists([[Block(p.family or "", dict(p.config or {})) for p in blocks]])
        return mu, sd


_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def cached_decomposition(name: str, cache_dir: str | None, input_shape: Sequence[int] = (1, 3, 224, 224)
                         ) -> Decomposition:
    """The decomposition of model ``name`` (:func:`profiler.zoo.load_model`), read from ``cache_dir`` when it is
    there, else made (and written there)."""
    from profiler.decompose import from_torch
    from profiler.zoo import load_model

    shape = "x".join(str(int(s)) for s in input_shape)
    path = os.path.join(cache_dir, f"{_SAFE.sub('_', name)}@{shape}.json") if cache_dir else None
    if path and os.path.isfile(path):
        with open(path, encoding="utf-8") as fh:
            d = Decomposition.from_json(fh.read())
        if d.name == name and d.format == FORMAT:  # an older format is decomposed again
            return d
    d = from_torch(load_model(name), input_shape, name=name)
    if path:
        os.makedirs(cache_dir, exist_ok=True)  # type: ignore[arg-type]
        with atomic_write(path) as fh:
            fh.write(d.to_json())
    return d


def evaluate_real(predicted: Sequence[RealLatency], measured_ms: Sequence[float]) -> dict[str, Any]:
    """Predicted against measured whole-model latency: ρ (with its interval), MAPE, ±10 %, 80 % interval
    coverage over the models measured, and one row per model."""
    from nas.evaluate import _metrics

    y = np.asarray(measured_ms, dtype=float)
    if len(y) != len(predicted):
        raise NetworkError(f"{len(predicted)} predictions but {len(y)} measured latencies")
    ok = np.isfinite(y) & (y > 0)
    rows = []
    for r, m in zip(predicted, y, strict=True):
        row = {**r.as_dict(), "measured_ms": float(m) if np.isfinite(m) else None}
        row["error_pct"] = 100 * (r.pred_ms / m - 1) if np.isfinite(m) and m > 0 else None
        row["in_interval"] = bool(r.p10_ms <= m <= r.p90_ms) if np.isfinite(m) else None
        rows.append(row)
    out: dict[str, Any] = {"n": int(ok.sum()), "failed": int((~ok).sum()), "models": rows}
    if ok.sum() >= 3:
        pred = np.asarray([r.pred_ms for r in predicted])[ok]
        out["metrics"] = _metrics(y[ok], pred)
        out["metrics"]["coverage80"] = float(np.mean([rows[i]["in_interval"] for i in np.flatnonzero(ok)]))
        out["metrics"]["min_block_coverage"] = float(min(r.coverage for r in predicted))
    return out


def plot_real(result: dict[str, Any], path: str | os.PathLike[str]) -> str:
    """Predicted against measured latency of each real model, with its 80 % interval and ±10 % lines (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result["models"] if r["measured_ms"]]
    fig, ax = plt.subplots(figsize=(6.4, 6))
    y = np.asarray([r["measured_ms"] for r in rows])
    p = np.asarray([r["pred_ms"] for r in rows])
    err = np.abs(np.stack([p - [r["p10_ms"] for r in rows], np.asarray([r["p90_ms"] for r in rows]) - p]))
    ax.errorbar(y, p, yerr=err, fmt="o", ms=4, capsize=2, alpha=0.8)
    lim = [0.9 * min(y.min(), p.min()), 1.1 * max(y.max(), p.max())]
    ax.plot(lim, lim, "k-", lw=0.8)
    for f in (0.9, 1.1):
        ax.plot(lim, [f * v for v in lim], "k:", lw=0.6)
    for r in rows:
        ax.annotate(r["model"].split(":")[-1], (r["measured_ms"], r["pred_ms"]), fontsize=6, alpha=0.7)
    ax.set(xscale="log", yscale="log", xlabel="measured (ms)", ylabel="predicted (ms)",
           title="Real models: blocks predicted + glue measured")
    fig.tight_layout()
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=130)
    plt.close(fig)
    return os.fspath(path)
