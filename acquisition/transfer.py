"""Transfer: what other platforms already measured, used to learn a new platform from few samples.

A **source** is the latency of the campaign's block family on another platform, as rows (configuration,
latency): the same family's ok measurements on another platform of the store (:func:`store_sources`), other rows
of a replay table (``studies compare --transfer-where``), or an exported bundle, turned into rows by predicting
a fixed space-filling sample of the family (:func:`bundle_source`). Every source is fitted once, with the
campaign's own feature encoder (:meth:`TransferSource.fit`): its model predicts the source platform's
log-latency of any configuration, which is what the campaign's model reads (a source measured on the very
configuration is not looked up: the same model answers at training and at prediction time, and the exported
bundle carries it).

The **probe set** (:func:`probe_configs`) is a small space-filling design drawn with a fixed seed, the same for
every platform and campaign of a family (HELP's reference architectures): a campaign with sources measures it
first, as its initial design (training data, charged like any other), and judges each source on it at once —
its Spearman agreement with what the probes measured (:func:`judge_sources`). Sources that agree less than
``min_agreement`` are ignored; the best ``max_sources`` of the rest are used. The engine judges them again at
every iteration on every row measured so far, so a source that agreed with 20 probes by chance is dropped
as soon as more rows show it. How the used sources enter the
model, and why a bad one cannot hurt, is :class:`surrogates.models.transfer.TransferRegressor`'s and the
engine's business (:mod:`acquisition.engine`).

Example:
    >>> import numpy as np
    >>> from profiler.families import get_family
    >>> from surrogates import FeatureEncoder
    >>> fam = get_family("mbconv"); cfgs = fam.space.sample(60, seed=3)
    >>> macs = np.array([fam.counts(c).macs for c in cfgs], dtype=float)
    >>> src = TransferSource("demo", "table", cfgs, 1e-6 * macs + 0.05)
    >>> model = src.fit(FeatureEncoder(fam), seed=0)
    >>> probes = cfgs[:20]; measured = 2e-6 * macs[:20] + 0.1
    >>> [(j.name, round(j.agreement, 2), j.used) for j in judge_sources([src], [model], FeatureEncoder(fam),
    ...                                                                   probes, measured)]
    [('demo', 1.0, True)]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["MAX_SOURCES", "MIN_AGREEMENT", "PROBE_SEED", "SourceJudgement", "TransferError", "TransferSource",
           "bundle_source", "judge_sources", "probe_configs", "store_sources"]

PROBE_SEED = 0x50524F42  # "PROB": the probe set is the same for every platform and campaign of a family
MIN_AGREEMENT = 0.5  # a source whose Spearman agreement on the probe set is lower is ignored
MAX_SOURCES = 3  # at most this many sources are used (the best by agreement)
MIN_SOURCE_ROWS = 30  # a platform with fewer ok measurements of the family is not a source
BUNDLE_ROWS = 2000  # configurations a bundle source is sampled at


class TransferError(ValueError):
    """A source that cannot be used: unknown platform, too few rows, a bundle of another family."""


@dataclass
class TransferSource:
    """One source: latencies of ``configs`` on another platform (``kind``: store, table or bundle)."""

    name: str
    kind: str
    configs: list[dict[str, Any]]
    latency_ms: np.ndarray
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.latency_ms = np.asarray(self.latency_ms, dtype=float)
        if len(self.configs) != len(self.latency_ms):
            raise TransferError(f"source {self.name!r}: {len(self.configs)} configurations but "
                                f"{len(self.latency_ms)} latencies")
        if len(self.configs) < MIN_SOURCE_ROWS:
            raise TransferError(f"source {self.name!r} has {len(self.configs)} rows: at least {MIN_SOURCE_ROWS} "
                                "are needed to learn from it")
        if not np.all(np.isfinite(self.latency_ms) & (self.latency_ms > 0)):
            raise TransferError(f"source {self.name!r} holds a latency that is not a positive number")

    def fit(self, encoder: Any, seed: int = 0) -> Any:
        """The source platform's latency model on ``encoder``'s features (``gbt`` on log-latency)."""
        from surrogates import get_model

        family = encoder.family
        X = encoder.transform([family.validate(c) for c in self.configs], validated=True)
        return get_model("gbt", random_state=seed).fit(X, self.latency_ms)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "rows": len(self.configs), **self.detail}


@dataclass
class SourceJudgement:
    """How one source did on the rows measured so far (at first the probe set): its Spearman agreement, and
    whether it is used."""

    name: str
    kind: str
    rows: int
    agreement: float
    used: bool
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "rows": self.rows, "agreement": self.agreement,
                "used": self.used, "reason": self.reason}


def probe_configs(draw: Any, n: int, exclude: set[str] | None = None) -> list[dict[str, Any]]:
    """The family's probe set: ``n`` space-filling configurations from ``draw(n, "sobol", seed, exclude)``
    (the engine's sampler) with the fixed :data:`PROBE_SEED`."""
    return draw(n, "sobol", PROBE_SEED, exclude or set())


def judge_sources(sources: Sequence[TransferSource], models: Sequence[Any], encoder: Any,
                  configs: Sequence[dict[str, Any]], measured_ms: np.ndarray, *,
                  min_agreement: float = MIN_AGREEMENT, max_sources: int = MAX_SOURCES,
                  X: np.ndarray | None = None) -> list[SourceJudgement]:
    """Rank ``sources`` (with their fitted ``models``) by Spearman agreement with ``measured_ms`` on ``configs``
    (the configurations measured: the probe set, later every row; ``X``: their features, if already encoded);
    mark the best ``max_sources`` whose agreement is at least ``min_agreement`` as used."""
    from surrogates.metrics import spearman

    measured_ms = np.asarray(measured_ms, dtype=float)
    if X is None:
        X = encoder.transform(list(configs), validated=True) if len(configs) else None
    out = []
    for src, model in zip(sources, models, strict=True):
        few = X is None or len(measured_ms) < 3
        rho = float("nan") if few else float(spearman(measured_ms, model.predict(X)))
        out.append(SourceJudgement(src.name, src.kind, len(src.configs), rho, False))
    ranked = sorted((j for j in out if np.isfinite(j.agreement)), key=lambda j: -j.agreement)
    n_used = 0
    for j in ranked:
        if j.agreement < min_agreement:
            j.reason = f"agreement {j.agreement:.2f} < {min_agreement}"
        elif n_used >= max_sources:
            j.reason = f"{max_sources} better sources"
        else:
            j.used, n_used = True, n_used + 1
    for j in out:
        if not np.isfinite(j.agreement):
            j.reason = "too few rows measured"
    return out


def store_sources(store: Any, family: Any, target_platform: str, which: str | Sequence[str] = "auto", *,
                  min_rows: int = MIN_SOURCE_ROWS) -> list[TransferSource]:
    """Sources from the store: the ok measurements of ``family`` on other platforms than ``target_platform``.

    ``which`` is ``"auto"`` (every other platform with at least ``min_rows`` of them), ``"none"`` (no source) or
    platform ids (each must have them). Per platform, the protocol with the most ok measurements is used (one
    protocol per source: a quick and a full timing of one block are not two observations of one latency).
    """
    if which == "none" or (not isinstance(which, str) and not which):
        return []
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in store.measurements(family=family.name, status="ok"):
        if r["platform"] != target_platform and r["min_ms"] and r["min_ms"] > 0:
            by.setdefault((r["platform"], r["protocol"]), []).append(r)
    best: dict[str, tuple[str, list[dict[str, Any]]]] = {}
    for (plat, prot), rows in sorted(by.items()):
        if plat not in best or len(rows) > len(best[plat][1]):
            best[plat] = (prot, rows)
    if isinstance(which, str) and which != "auto":
        which = [which]
    if not isinstance(which, str):
        wanted = list(dict.fromkeys(which))
        for plat in wanted:
            if plat == target_platform:
                raise TransferError(f"transfer source {plat} is the campaign's own platform")
            known = sorted(best)
            if plat not in best:
                raise TransferError(f"transfer source {plat!r} has no ok {family.name!r} measurement in the store"
                                    + (f" (platforms with some: {', '.join(known)})" if known else ""))
            if len(best[plat][1]) < min_rows:
                raise TransferError(f"transfer source {plat} has {len(best[plat][1])} ok {family.name!r} "
                                    f"measurements: at least {min_rows} are needed")
        plats = wanted
    else:
        plats = [p for p, (_, rows) in best.items() if len(rows) >= min_rows]
    out = []
    for plat in plats:
        prot, rows = best[plat]
        out.append(TransferSource(f"store:{plat}", "store", [r["config"] for r in rows],
                                  np.asarray([r["min_ms"] for r in rows], dtype=float),
                                  {"platform": plat, "protocol": prot}))
    return out


def bundle_source(path: str | os.PathLike[str], family: Any, *, n: int = BUNDLE_ROWS, seed: int = 0
                  ) -> TransferSource:
    """A source from an exported bundle of ``family``: its predictions on ``n`` space-filling configurations."""
    from surrogates import BundleError, load_bundle

    path = os.fspath(path)
    try:
        pred = load_bundle(path, family=family)
    except BundleError as e:
        raise TransferError(f"prior bundle {path!r} cannot be used: {e}") from None
    configs = family.space.sample(n, method="sobol", seed=seed, family=family.name)
    if len(configs) < MIN_SOURCE_ROWS:
        raise TransferError(f"prior bundle {path!r}: the family's space holds only {len(configs)} configurations")
    plat = (pred.manifest.get("platform") or {}).get("id", "?")
    return TransferSource(f"bundle:{os.path.basename(path)}", "bundle", configs, pred.predict(configs),
                          {"path": os.path.abspath(path), "platform": plat})
