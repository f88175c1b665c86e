"""HNQ of the surrogate-guided search against hardware in the loop, over seeds, with its noise floor (issue 13).

For each seed s: `nas.compare.compare_searches` (TPE on BALS; HIL with seed s, the surrogate with seed s + 1:
independent searches). The noise floor:
two HIL searches with different seeds compared the same way (their own Pareto fronts, HA-scores at measured
latency) — what HNQ looks like when the latency source is perfect and only the search's randomness differs.

Usage: python benchmarks/nas_hnq.py [OUT] [TRIALS] [SEEDS]   (default benchmarks/out/nas 60 3)
Needs the bundles and calibration that benchmarks/nas_bench.sh wrote. Run it alone on the machine.
"""

import itertools
import json
import os
import sys

import numpy as np

from acquisition.store import Store
from nas.accuracy import DigitsEvaluator
from nas.compare import compare_searches, hnq, top_scores
from nas.latency import NetworkLatencyModel
from profiler.devices import parse_device
from profiler.protocol import AdaptiveProtocol
from profiler.worker import Profiler


def main(out: str, trials: int, seeds: int) -> None:
    model = NetworkLatencyModel.load([os.path.join(out, "mbconv.bundle")],
                                     calibration=os.path.join(out, "eval-stacked-mbconv", "calibration.json"))
    results = {}
    with Store(os.path.join(out, "nas.sqlite")) as store, Profiler(parse_device("cpu"), AdaptiveProtocol()) as prof:
        for seed in range(seeds):
            r = compare_searches("stacked-mbconv", model=model, store=store, profiler=prof, trials=trials,
                                 storage=os.path.join(out, f"hnq-{trials}.sqlite"), evaluator=DigitsEvaluator(seed=0),
                                 tau_ref_ms=None, seed=seed, progress=False)
            results[seed] = r
            d = r.as_dict()
            print(f"seed {seed}: W_overall {d['w_overall']:.4f}, W_optimal {d['w_optimal']:.4f}, HNQ {d['hnq']:.3f} "
                  f"(fronts: HIL {d['pareto_size']['hil']}, surrogate {d['pareto_size']['surrogate']}; best HA-score "
                  f"HIL {d['best']['hil']['ha_score']:.3f}, surrogate {d['best']['surrogate']['ha_score']:.3f}; "
                  f"surrogate ρ on its trials {d['surrogate_latency_on_its_trials']['spearman']:.3f})", flush=True)
    floor, floor_top = [], []
    for a, b in itertools.combinations(results, 2):
        ha, hb = results[a].hil, results[b].hil
        h = hnq(ha.scores, hb.scores, ha.scores[ha.pareto], hb.scores[hb.pareto])
        t = hnq(ha.scores, hb.scores, top_scores(ha.scores), top_scores(hb.scores))
        floor.append(h["hnq"])
        floor_top.append(t["hnq"])
        print(f"HIL seed {a} vs HIL seed {b}: W_overall {h['w_overall']:.4f}, W_optimal {h['w_optimal']:.4f}, "
              f"HNQ {h['hnq']:.3f}; best 10 %: HNQ {t['hnq']:.3f}")
    ds = [results[s].as_dict() for s in results]
    sm, sm_top = [d["hnq"] for d in ds], [d["top10"]["hnq"] for d in ds]
    for s, d in zip(results, ds, strict=True):
        print(f"seed {s}: best 10 % by HA-score: W_optimal {d['top10']['w_optimal']:.4f}, HNQ {d['top10']['hnq']:.3f}")
    summary = {"trials": trials, "seeds": seeds, "hnq_surrogate_vs_hil": sm, "median_hnq": float(np.median(sm)),
               "hnq_hil_vs_hil": floor, "median_hnq_hil_vs_hil": float(np.median(floor)) if floor else None,
               "top10_hnq_surrogate_vs_hil": sm_top, "median_top10_hnq": float(np.median(sm_top)),
               "top10_hnq_hil_vs_hil": floor_top,
               "median_top10_hnq_hil_vs_hil": float(np.median(floor_top)) if floor_top else None}
    print(json.dumps(summary))
    with open(os.path.join(out, f"hnq-{trials}.json"), "w") as fh:
        json.dump(summary, fh, indent=2)


if __name__ == "__main__":
    a = sys.argv[1:]
    main(a[0] if a else "benchmarks/out/nas", int(a[1]) if len(a) > 1 else 60, int(a[2]) if len(a) > 2 else 3)
