"""Tables of the model-choice study (``benchmarks/model_choice.sh``): per table and arm, the samples at which the
never-seen ρ first met the target on ``confirm`` consecutive iterations (the oracle: what the model learned), the
samples of a verified stop (what the campaign claimed; false stops and no stop censored), false stops, the
never-seen ρ at given sample counts (median, and the lowest seed's), the seeds whose never-seen ρ fell by more
than 0.005 below its running maximum, the median fit seconds per iteration, and which models ``auto`` kept.
Any study database will do (e.g. the transfer replays of ``docs/design-notes.md``)::

    python benchmarks/model_choice_table.py benchmarks/out/model/cat-xeon.sqlite benchmarks/out/model/tfnas-xeon.sqlite
    python benchmarks/model_choice_table.py --at 20,40,60,100,200,300 benchmarks/out/verify/s16-t-titan.sqlite
"""

from __future__ import annotations

import argparse
import glob
import math
import os
import sqlite3
import sys
from collections import Counter

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from studies import load_study
from studies._stats import median_ci
from studies.study import campaign_stem
from studies.transfer_study import fell

AT = (40, 80, 120, 200, 300)


def _n(v: float) -> str:
    return "–" if math.isinf(v) else f"{v:.0f}"


def fmt(med: float, lo: float, hi: float) -> str:
    return f"{_n(med)} [{_n(lo)}, {_n(hi)}]"


def picks(db: str, arm: str) -> Counter:
    """How many iterations of ``arm``'s campaigns kept each model."""
    out: Counter = Counter()
    for path in glob.glob(db + ".campaigns/seed-*.sqlite"):
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        out.update(m for (m,) in con.execute("select model from iterations where campaign like ?",
                                             [campaign_stem(arm) + "-s%"]))
        con.close()
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("::")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("dbs", nargs="+", metavar="STUDY_DB")
    ap.add_argument("--at", default=",".join(map(str, AT)), help="sample counts of the ρ columns")
    args = ap.parse_args(argv)
    try:
        at = [int(v) for v in args.at.split(",")]
    except ValueError:
        ap.error(f"--at {args.at!r} is not allowed: expected comma-separated sample counts, e.g. 20,40,100")
    for db in args.dbs:
        res = load_study(db)
        target = res.settings["target_spearman"]
        print(f"\n{res.name} (ρ {target}, {len(res.runs) // len(res.arms)} seeds)\n")
        print("| arm | oracle samples | claimed samples | false stops | " + " | ".join(f"ρ at {n}" for n in at)
              + " | falls | fit s / iteration | models kept (iterations) |")
        print("|---" * (7 + len(at)) + "|")
        for arm in res.arms:
            st = res.stops(arm)
            oracle = [v["oracle_n"] if v["oracle_n"] is not None else math.inf for v in st.values()]
            claimed = [v[0] for v in res.to_target(arm).values()]
            false = sum(v["n"] is not None and not v["verified"] for v in st.values())
            rho = [list(res.at_samples(arm, n, "test_spearman").values()) for n in at]
            curves = res.curves(arm).values()
            falls = sum(fell([r["test_spearman"] for r in c if r["test_spearman"] is not None]) for c in curves)
            fit = np.median([r["fit_s"] for r in res.records if r["arm"] == arm and r["fit_s"] is not None])
            kept = ", ".join(f"{m} {c}" for m, c in picks(db, arm).most_common())
            print(f"| {arm} | {fmt(*median_ci(oracle))} | {fmt(*median_ci(claimed))} | {false}/{len(st)} | "
                  + " | ".join(f"{np.nanmedian(v):.3f} ({np.nanmin(v):.3f})" for v in rho)
                  + f" | {falls}/{len(curves)} | {fit:.2f} | {kept} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
