"""Same results for a given seed: dump everything three campaign set-ups decide, to compare two versions of the code.

Usage (from the repository root), before and after a refactor of the engine:

    python benchmarks/loop_equivalence.py dump before.json
    python benchmarks/loop_equivalence.py dump after.json
    python benchmarks/loop_equivalence.py compare before.json after.json   # IDENTICAL, or the set-ups that differ

The set-ups: a synthetic device with two fidelities under the default campaign (auto model, cv, representative,
auto fidelity, 120 samples); the shared TF-NAS table replayed on Titan RTX, arms ``default`` and ``random`` with and
without Xeon as a transfer source (100 samples). Compared: every iteration row but its timings, every member
(key, role, how drawn, protocol, latency) and every study record. About a minute on 2 cores.
"""
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.getcwd())

TIMINGS = ("fit_s", "query_s", "wall_s", "engine_s")


def dump(path: str) -> None:
    import numpy as np  # noqa: F401

    from acquisition.campaign import CampaignSpec
    from acquisition.engine import run_campaign
    from acquisition.store import Store
    from profiler.families import get_family
    from studies import ReplaySource, Study
    from tests.acquisition.test_fidelity import TwoFidelityProfiler

    out = {}
    skip = {"fit_s", "query_s", "created_at", "id", "profiling_s"}

    def its(store, name):
        return [{k: (round(v, 9) if isinstance(v, float) else v) for k, v in it.items() if k not in skip}
                for it in store.iterations(name)]

    def members(store, name):
        return [(m["key"], m["role"], m["drawn"], m["protocol"], round(m["min_ms"], 9)) for m in store.members(name)]

    d = tempfile.mkdtemp()
    try:
        fam = get_family("mbconv")
        with Store(os.path.join(d, "a.sqlite")) as store:
            spec = CampaignSpec(name="f1", family="mbconv", target_spearman=0.97, budget_samples=120, batch_size=20,
                                initial_size=20, pool_size=500, folds=3, stop_on_target=False)
            res = run_campaign(store, spec, TwoFidelityProfiler(), fam, bundle_path=os.path.join(d, "f1.bundle"))
            out["fidelity"] = {"its": its(store, "f1"), "members": members(store, "f1"), "state": res.state}
        src = ReplaySource(csv="../shared/data/tfnas_mbconv_latency.csv", latency_col="latency_ms",
                           params=["input_hw", "cin", "mid_channels", "se_channels", "cout", "kernel", "stride", "act"],
                           where=["device=titan_rtx_bs32_pytorch1.1"])
        study = Study("eq", src, arms=["default", "random"], seeds=[0], target_spearman=0.98, budget_samples=100,
                      batch_size=20, initial_size=20, validation_size=60, db=os.path.join(d, "s.sqlite"),
                      transfer_where=["device=xeon_gold6130_bs1_1thread_pytorch1.1"])
        result = study.run(n_jobs=1, progress=False)
        out["study"] = [{k: (round(v, 9) if isinstance(v, float) else v) for k, v in r.items()} for r in result.records]
        with Store(os.path.join(d, "s.sqlite.campaigns", "seed-0.sqlite"), readonly=True) as store:
            for c in store.campaigns():
                out[c["name"]] = {"its": its(store, c["name"]), "members": members(store, c["name"])}
    finally:
        shutil.rmtree(d)
    with open(path, "w") as fh:
        json.dump(out, fh, indent=1, sort_keys=True, default=str)
    print({k: len(v) if isinstance(v, list) else len(v.get("its", [])) for k, v in out.items()})


def _strip(x):
    if isinstance(x, dict):
        return {k: _strip(v) for k, v in x.items() if k not in TIMINGS}
    if isinstance(x, list):
        return [_strip(v) for v in x]
    return x


def _load(path: str):
    with open(path) as fh:
        return _strip(json.load(fh))


def compare(a_path: str, b_path: str) -> int:
    a, b = _load(a_path), _load(b_path)
    if a == b:
        print("IDENTICAL")
        return 0
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            print("differs:", k)
    return 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "dump":
        dump(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    else:
        print("usage: loop_equivalence.py dump OUT.json | compare A.json B.json", file=sys.stderr)
        sys.exit(2)
