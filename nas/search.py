"""Hardware-aware search with Optuna: TPE on the balanced accuracy–latency score, or NSGA-II for the Pareto front.

The loop is Optuna's (study, sampler, storage); this module only defines the objective. A trial draws a network
from the space (define-by-run, :meth:`nas.spaces.NetworkSpace.suggest`), gets its accuracy from the evaluator
(cached by network) and its latency from the **latency source**:

- ``surrogate``: the :class:`~nas.latency.NetworkLatencyModel` of the exported bundles (no device);
- ``hil``: the network measured whole on the device (hardware in the loop; stored and charged like any block).

Objectives:

- ``bals`` (TPE, single objective, maximised): the paper's balanced accuracy–latency score (eq. 4),
  ``BALS = α/α_ref + log(τ_ref − τ)/log(τ_ref) − 1`` with τ in ms. The paper prints ``log(τ − τ_ref)``, which is
  undefined below τ_ref and would reward slower networks; we read τ_ref as the latency ceiling the score
  tends to −∞ at, which makes the score rise with accuracy and fall with latency as the paper intends.
  τ at or above τ_ref scores ``BALS_FLOOR``. ``tau_ref_ms`` defaults to 1.5x the 95th percentile of the
  surrogate's latency over 1,000 random networks of the space, so the latency term spans a useful range.
- ``pareto`` (NSGA-II): maximise accuracy, minimise latency.

``budget_ms`` adds a latency constraint (Optuna's ``trial.set_constraint``: feasible when ≤ 0): measured latency ≤
budget for HIL; for the surrogate the 90 % quantile of its predictive distribution ≤ budget, i.e.
P(latency ≤ budget) ≥ 0.9. The study lives in an SQLite storage, so a search resumes where it stopped (only the
missing trials run); each trial keeps its network (JSON), accuracy and latencies as user attributes.

Example:
    >>> bals(0.9, 10.0, tau_ref_ms=100.0) > bals(0.9, 50.0, tau_ref_ms=100.0)
    True
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nas.accuracy import AccuracyCache, DigitsEvaluator, Evaluator, cached
from nas.network import Network, NetworkError
from nas.spaces import NetworkSpace, get_space
from profiler.files import atomic_write

__all__ = ["BALS_FLOOR", "OBJECTIVES", "SOURCES", "SearchResult", "bals", "default_tau_ref", "pareto_mask",
           "plot_search", "run_search"]

log = logging.getLogger("latency_acquisition")

OBJECTIVES = ("bals", "pareto")
SOURCES = ("surrogate", "hil")
BALS_FLOOR = -10.0


def bals(accuracy: float, latency_ms: float, *, tau_ref_ms: float, alpha_ref: float = 1.0) -> float:
    """The balanced accuracy–latency score (module docstring; higher is better)."""
    if not tau_ref_ms > 1.0:
        raise NetworkError(f"tau_ref_ms={tau_ref_ms!r} is not allowed: expected a latency above 1 ms")
    if latency_ms >= tau_ref_ms:
        return BALS_FLOOR
    return max(BALS_FLOOR, accuracy / alpha_ref + math.log(tau_ref_ms - latency_ms) / math.log(tau_ref_ms) - 1.0)


def default_tau_ref(space: NetworkSpace, model: Any) -> float:
    """1.5x the 95th percentile of predicted latency over 1,000 random networks of ``space`` (ms; the same
    networks whatever the search's seed, so searches with different seeds score on one scale)."""
    nets = space.sample(1000, seed=10_000)
    return float(max(1.5 * np.percentile(model.predict(nets), 95), 1.5))


def pareto_mask(accuracy: Sequence[float], latency: Sequence[float]) -> np.ndarray:
    """Networks no other network beats on both accuracy (higher) and latency (lower)."""
    a, t = np.asarray(accuracy, dtype=float), np.asarray(latency, dtype=float)
    keep = np.ones(len(a), dtype=bool)
    for i in range(len(a)):
        dominated = (a >= a[i]) & (t <= t[i]) & ((a > a[i]) | (t < t[i]))
        keep[i] = not dominated.any()
    return keep


@dataclass
class SearchResult:
    """The completed trials of one search, in trial order."""

    space: str
    source: str
    objective: str
    study_name: str
    tau_ref_ms: float
    budget_ms: float | None
    networks: list[Network] = field(default_factory=list)
    accuracy: np.ndarray = field(default_factory=lambda: np.zeros(0))
    latency_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))  # what the search saw
    feasible: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    eval_s: float = 0.0
    latency_s: float = 0.0
    wall_s: float = 0.0

    @property
    def scores(self) -> np.ndarray:
        return np.asarray([bals(a, t, tau_ref_ms=self.tau_ref_ms) for a, t in zip(self.accuracy, self.latency_ms,
                                                                                   strict=True)])

    @property
    def pareto(self) -> np.ndarray:
        """Mask of the Pareto-optimal feasible trials (accuracy up, latency down)."""
        mask = np.zeros(len(self.accuracy), dtype=bool)
        idx = np.flatnonzero(self.feasible)
        if len(idx):
            mask[idx[pareto_mask(self.accuracy[idx], self.latency_ms[idx])]] = True
        return mask

    def best(self) -> int | None:
        """Index of the feasible trial with the highest BALS (None when no trial is feasible)."""
        if not self.feasible.any():
            return None
        s = np.where(self.feasible, self.scores, -np.inf)
        return int(np.argmax(s))

    def as_dict(self) -> dict[str, Any]:
        b = self.best()
        front = np.flatnonzero(self.pareto)
        return {"space": self.space, "latency_source": self.source, "objective": self.objective,
                "study": self.study_name, "trials": len(self.accuracy), "tau_ref_ms": self.tau_ref_ms,
                "budget_ms": self.budget_ms, "feasible": int(self.feasible.sum()),
                "evaluation_s": self.eval_s, "latency_s": self.latency_s, "wall_s": self.wall_s,
                "best": None if b is None else {"trial": b, "accuracy": float(self.accuracy[b]),
                                                "latency_ms": float(self.latency_ms[b]),
                                                "bals": float(self.scores[b]), "network": self.networks[b].to_dict()},
                "pareto": [{"trial": int(i), "accuracy": float(self.accuracy[i]),
                            "latency_ms": float(self.latency_ms[i])} for i in front]}


def _latency_fn(source: str, model: Any, store: Any, profiler: Any, budget_ms: float | None
                ) -> Callable[[Network], tuple[float, float]]:
    """``net -> (latency the search sees, constraint value: <= 0 feasible)``."""
    if source == "surrogate":
        if model is None:
            raise NetworkError("latency source 'surrogate' needs predictor bundles (a NetworkLatencyModel)")

        def surrogate(net: Network) -> tuple[float, float]:
            d = model.predict_dist([net])
            q90 = float(d.interval(0.8)[1][0])
            return float(d.median_ms[0]), (q90 - budget_ms if budget_ms else -1.0)

        return surrogate
    if source == "hil":
        if store is None or profiler is None:
            raise NetworkError("latency source 'hil' needs a device profiler and a database")
        from nas.measure import measure_networks

        def hil(net: Network) -> tuple[float, float]:
            t = float(measure_networks(store, profiler, [net], progress=False)[0])
            if not np.isfinite(t):
                return float("inf"), 1.0
            return t, (t - budget_ms if budget_ms else -1.0)

        return hil
    raise NetworkError(f"latency source {source!r} is unknown: expected one of {', '.join(SOURCES)}")


def _open_study(name: str, storage_path: str, objective: str, trials: int, seed: int, space: str, source: str,
                attrs: dict[str, Any]) -> Any:
    """The Optuna study ``name`` in the SQLite file ``storage_path`` (created, or loaded to resume it): TPE on
    BALS or NSGA-II on accuracy and latency. A stored study of another space, source or objective is an error."""
    import optuna

    if objective == "bals":
        with warnings.catch_warnings():  # group= is "experimental" in Optuna; it handles conditional spaces
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler: Any = optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)
        directions = ["maximize"]
    else:
        sampler = optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, min(20, trials // 3)))
        directions = ["maximize", "minimize"]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rdb = optuna.storages.RDBStorage(f"sqlite:///{os.path.abspath(storage_path)}")
    study = optuna.create_study(study_name=name, storage=rdb, sampler=sampler, directions=directions,
                                load_if_exists=True)
    stored = study.user_attrs
    if stored and (stored.get("space") != space or stored.get("source") != source
                   or stored.get("objective") != objective):
        raise NetworkError(f"study {name!r} in {storage_path} is another search ({stored.get('space')}, "
                           f"{stored.get('source')}, {stored.get('objective')}): choose another --study")
    if not stored:
        for k, v in {"space": space, "source": source, "objective": objective, **attrs}.items():
            study.set_user_attr(k, v)
    return study


def run_search(space: str | NetworkSpace, *, trials: int = 50, objective: str = "bals", source: str = "surrogate",
               model: Any = None, store: Any = None, profiler: Any = None, evaluator: Evaluator | None = None,
               storage: str | os.PathLike[str] = "nas.sqlite", study_name: str | None = None,
               tau_ref_ms: float | None = None, budget_ms: float | None = None, seed: int = 0,
               progress: bool = True) -> SearchResult:
    """Run (or resume) a search to ``trials`` completed trials; see the module docstring."""
    import optuna

    space = get_space(space)
    if objective not in OBJECTIVES:
        raise NetworkError(f"objective {objective!r} is unknown: expected one of {', '.join(OBJECTIVES)}")
    if int(trials) < 1:
        raise NetworkError(f"trials={trials!r} is not allowed: expected at least 1")
    if budget_ms is not None and not budget_ms > 0:
        raise NetworkError(f"budget_ms={budget_ms!r} is not allowed: expected a positive latency")
    latency = _latency_fn(source, model, store, profiler, budget_ms)
    if tau_ref_ms is None:
        if model is None:
            raise NetworkError("tau_ref_ms is needed when no predictor bundles are given")
        tau_ref_ms = default_tau_ref(space, model)
    evaluator = evaluator or DigitsEvaluator(seed=seed)
    storage_path = os.fspath(storage)
    cache = AccuracyCache(storage_path + ".accuracy")
    acc_of = cached(evaluator, cache)
    name = study_name or f"{space.name}-{source}-{objective}-s{seed}"

    study = _open_study(name, storage_path, objective, int(trials), seed, space.name, source,
                        {"tau_ref_ms": tau_ref_ms, "budget_ms": budget_ms,
                         "evaluator": str(getattr(evaluator, "id", "custom"))})
    tau_ref_ms = float(study.user_attrs.get("tau_ref_ms", tau_ref_ms))
    spent = {"eval": 0.0, "lat": 0.0}

    def objective_fn(trial: Any) -> Any:
        net = space.suggest(trial)
        acc, dt, _ = acc_of(net)
        spent["eval"] += dt
        t0 = time.perf_counter()
        lat, con = latency(net)
        spent["lat"] += time.perf_counter() - t0
        trial.set_user_attr("network", net.to_json())
        trial.set_user_attr("accuracy", acc)
        trial.set_user_attr("latency_ms", lat)
        trial.set_user_attr("constraint", con)
        if budget_ms:
            trial.set_constraint("latency_budget", con)  # Optuna's samplers prefer feasible trials
        if objective == "bals":
            return bals(acc, lat, tau_ref_ms=tau_ref_ms) if np.isfinite(lat) else BALS_FLOOR
        return acc, (lat if np.isfinite(lat) else 1e9)

    t_wall = time.perf_counter()
    done = sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    if done < trials:
        study.optimize(objective_fn, n_trials=int(trials) - done, show_progress_bar=progress,
                       catch=(RuntimeError,))
    cache.close()
    res = SearchResult(space.name, source, objective, name, tau_ref_ms, budget_ms, eval_s=spent["eval"],
                       latency_s=spent["lat"], wall_s=time.perf_counter() - t_wall)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE][: int(trials)]
    res.networks = [Network.from_json(t.user_attrs["network"]) for t in complete]
    res.accuracy = np.asarray([t.user_attrs["accuracy"] for t in complete], dtype=float)
    res.latency_ms = np.asarray([t.user_attrs["latency_ms"] for t in complete], dtype=float)
    res.feasible = np.asarray([t.user_attrs["constraint"] <= 0 for t in complete], dtype=bool)
    return res


def plot_search(results: Sequence[SearchResult], path: str | os.PathLike[str], *,
                measured: Sequence[np.ndarray | None] | None = None, title: str = "") -> str:
    """Accuracy against latency of each search's trials, its Pareto front drawn as a step line (PNG).
    ``measured`` (one array or None per result) plots measured latency instead of what the search saw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    for i, r in enumerate(results):
        lat = measured[i] if measured is not None and measured[i] is not None else r.latency_ms
        c = colors[i % len(colors)]
        ax.scatter(lat, r.accuracy, s=14, alpha=0.5, color=c, label=f"{r.source} ({r.objective}) trials")
        front = r.pareto
        order = np.argsort(lat[front])
        ax.step(lat[front][order], r.accuracy[front][order], where="post", color=c, lw=1.5,
                label=f"{r.source} Pareto front ({int(front.sum())})")
        ax.scatter(lat[front], r.accuracy[front], s=70, facecolors="none", edgecolors=c, linewidths=1.5)
    if results and results[0].budget_ms:
        ax.axvline(results[0].budget_ms, color="k", ls=":", lw=1, label="latency budget")
    ax.set_xlabel("latency (ms)" + (", measured" if measured is not None else ""))
    ax.set_ylabel("accuracy (digits evaluator)" if results else "accuracy")
    ax.set_title(title or (results[0].space if results else ""))
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = os.fspath(path)
    with atomic_write(out, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110)
    plt.close(fig)
    return out
