"""Surrogate- against hardware-in-the-loop-guided search (the paper's §4.3, Table 5).

:func:`compare_searches` runs the same search (space, objective, trials, seed, evaluator, τ_ref) twice: guided
by measured latency (``hil``) and by the bundles (``surrogate``). Then every network the surrogate search tried
is measured too (stored, so networks both searches tried are measured once), and each trial gets its HA-score,
the balanced accuracy–latency score (:func:`nas.search.bals`) **at its measured latency**: the surrogate search is
judged on what its networks really cost, not on what it believed. With those scores:

- ``W_overall``: Wasserstein distance between the HA-scores of all trials of the two searches;
- ``W_optimal``: between the HA-scores of each search's Pareto-optimal networks (each search's own front, as
  that search saw it: what it would hand its user);
- ``HNQ = W_optimal / W_overall`` (paper eq. 5): below 1 the surrogate is *feasible* for the search; the lower,
  the closer the surrogate's optimal networks are to those found on hardware.

The two searches are independent (the surrogate's seed is the HIL seed + 1 by default). With one seed they share
TPE's 10 random start-up trials and, with a good surrogate, replay each other nearly trial by trial: W_overall
then falls to 0.003-0.017 on this CPU and HNQ becomes a ratio of two near-zero distances (0.5-5.6 over 3 seeds).
``benchmarks/nas_hnq.py`` also gives the noise floor: two HIL searches of different seeds compared the same way.

The same three figures are also given with the surrogate search's HA-scores at its *predicted* latency (what the
paper's plot shows), and with each search's best 10 % of trials by HA-score as its optimal set (``top10``): a
Pareto front of a short search holds 1-7 networks, so W_optimal between two fronts moves with one network more or
less, while the best tenth of the trials is what a scalarised (BALS) search optimises and is stable.
:func:`nas.search.plot_search` draws both searches at measured latency.

Example:
    >>> import numpy as np
    >>> round(hnq(np.array([0.1, 0.2, 0.3]), np.array([0.1, 0.25, 0.35]), np.array([0.3]), np.array([0.35]))["hnq"], 2)
    1.5
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nas.search import SearchResult, bals, run_search

__all__ = ["TOP_SHARE", "CompareResult", "compare_searches", "hnq", "top_scores"]


def hnq(all_a: np.ndarray, all_b: np.ndarray, opt_a: np.ndarray, opt_b: np.ndarray) -> dict[str, float]:
    """W_overall, W_optimal and their ratio HNQ from two searches' HA-scores."""
    from scipy.stats import wasserstein_distance

    w_all = float(wasserstein_distance(all_a, all_b))
    w_opt = float(wasserstein_distance(opt_a, opt_b))
    return {"w_overall": w_all, "w_optimal": w_opt, "hnq": w_opt / w_all if w_all > 0 else float("inf")}


TOP_SHARE = 0.1  # the "optimal" set of the stable variant: the best 10 % of a search's trials by HA-score


def top_scores(scores: np.ndarray, share: float = TOP_SHARE) -> np.ndarray:
    """The best ``share`` of ``scores`` (at least 3): a search's optimal networks under the scalarised score."""
    k = max(3, round(share * len(scores)))
    return np.sort(np.asarray(scores, dtype=float))[::-1][:k]


class CompareResult:
    def __init__(self, hil: SearchResult, surrogate: SearchResult, surrogate_measured_ms: np.ndarray) -> None:
        self.hil, self.surrogate, self.surrogate_measured_ms = hil, surrogate, surrogate_measured_ms
        tau = hil.tau_ref_ms
        self.ha_hil = hil.scores
        self.ha_sm_measured = np.asarray([bals(a, t, tau_ref_ms=tau) for a, t in
                                          zip(surrogate.accuracy, surrogate_measured_ms, strict=True)])
        self.ha_sm_predicted = surrogate.scores
        hf, sf = hil.pareto, surrogate.pareto
        self.measured = hnq(self.ha_hil, self.ha_sm_measured, self.ha_hil[hf], self.ha_sm_measured[sf])
        self.predicted = hnq(self.ha_hil, self.ha_sm_predicted, self.ha_hil[hf], self.ha_sm_predicted[sf])
        self.top = hnq(self.ha_hil, self.ha_sm_measured, top_scores(self.ha_hil), top_scores(self.ha_sm_measured))

    def as_dict(self) -> dict[str, Any]:
        from surrogates.metrics import accuracy_within, spearman

        y, p = self.surrogate_measured_ms, self.surrogate.latency_ms
        ok = np.isfinite(y)
        hb, sb = self.hil.best(), self.surrogate.best()
        if hb is None or sb is None:  # no feasible trial under the budget: the best of all trials
            hb = int(np.argmax(self.ha_hil)) if hb is None else hb
            sb = int(np.argmax(self.ha_sm_measured)) if sb is None else sb
        return {
            "space": self.hil.space, "trials": len(self.hil.accuracy), "tau_ref_ms": self.hil.tau_ref_ms,
            **self.measured,
            "at_predicted_latency": self.predicted,
            f"top{int(100 * TOP_SHARE)}": self.top,
            "surrogate_latency_on_its_trials": {"spearman": spearman(y[ok], p[ok]),
                                                "acc10": accuracy_within(y[ok], p[ok], 0.10)},
            "best": {"hil": {"accuracy": float(self.hil.accuracy[hb]), "latency_ms": float(self.hil.latency_ms[hb]),
                             "ha_score": float(self.ha_hil[hb])},
                     "surrogate": {"accuracy": float(self.surrogate.accuracy[sb]),
                                   "measured_latency_ms": float(self.surrogate_measured_ms[sb]),
                                   "predicted_latency_ms": float(self.surrogate.latency_ms[sb]),
                                   "ha_score": float(self.ha_sm_measured[sb])}},
            "pareto_size": {"hil": int(self.hil.pareto.sum()), "surrogate": int(self.surrogate.pareto.sum())},
            "hil": self.hil.as_dict(), "surrogate": self.surrogate.as_dict(),
        }


def compare_searches(space: str, *, model: Any, store: Any, profiler: Any, trials: int = 50,
                     objective: str = "bals", storage: str = "nas.sqlite", evaluator: Any = None,
                     tau_ref_ms: float | None = None, budget_ms: float | None = None, seed: int = 0,
                     surrogate_seed: int | None = None, progress: bool = True) -> CompareResult:
    """Both searches, the surrogate's networks measured, and the distances (module docstring). The surrogate
    search runs with ``surrogate_seed`` (default ``seed + 1``): an independent search, as the HIL search would
    be if run again."""
    from nas.measure import measure_networks
    from nas.search import default_tau_ref
    from nas.spaces import get_space

    sp = get_space(space)
    if tau_ref_ms is None:
        tau_ref_ms = default_tau_ref(sp, model)
    common = {"trials": trials, "objective": objective, "storage": storage, "evaluator": evaluator,
              "tau_ref_ms": tau_ref_ms, "budget_ms": budget_ms, "progress": progress}
    hil = run_search(sp, source="hil", store=store, profiler=profiler, model=model, seed=seed, **common)
    sm = run_search(sp, source="surrogate", model=model, seed=seed + 1 if surrogate_seed is None else surrogate_seed,
                    **common)
    measured = measure_networks(store, profiler, sm.networks, progress=progress)
    return CompareResult(hil, sm, measured)
