"""Same results for a given seed: dump everything three campaign set-ups decide, to compare two versions of the code.

Usage (from the repository root), before and after a refactor of the engine:

    python benchmarks/loop_equivalence.py dump before.json
    python benchmarks/loop_equivalence.py dump after.json
    python benchmarks/loop_equivalence.py compare before.json after.json   # IDENTICAL, or the set-ups that differ

The set-ups: a synthetic device with two fidelities under the default campaign (auto model, cv, representative,
auto fidelity, 120 samples); the shared TF-NAS table replayed on Titan RTX, arms ``default`` and ``random`` with and
without Xeon as a transfer source (100 samples); an ask/tell campaign driven to its end by a synthetic phone
(``Campaign``, 80 samples, then a CSV round); and a Ray fleet (a private local instance) running two platforms'
campaigns at once, one actor each (no transfer: what one platform reads of the other depends on arrival
order). Compared: every iteration row but its timings, every member (key, role, how drawn, protocol, latency)
and every study record. About a minute on 2 cores.
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
        out.update(_ask_tell(d, its, members))
        out.update(_fleet(d, its, members))
    finally:
        shutil.rmtree(d)
    with open(path, "w") as fh:
        json.dump(out, fh, indent=1, sort_keys=True, default=str)
    print({k: len(v) if isinstance(v, list) else len(v.get("its", [])) for k, v in out.items()})


def _ask_tell(d, its, members):
    from acquisition import Campaign, Platform
    from acquisition.ask_tell import write_asks_csv
    from acquisition.store import Store
    from profiler.families import get_family

    fam = get_family("mbconv")

    def phone_ms(config):
        c = fam.counts(config)
        return 1e3 * max(c.macs / 20e9, c.bytes_moved / 8e9) + 0.015 * c.layers

    db = os.path.join(d, "phone.sqlite")
    phone = Platform("pixel-8", device="Pixel 8", threads=4)
    kw = dict(family="mbconv", platform=phone, cost_s=2.0, budget_samples=80, model="gbt", pool_size=400, seed=3)
    with Campaign(db, "p", **kw) as c:
        for a in c.ask():
            c.tell(a.key, phone_ms(a.config))
    with Campaign(db, "p") as c:  # resumed: the rest by ask/tell, one batch by CSV
        rounds = 0
        while not c.done:
            asked = c.ask()
            if rounds == 1:
                path = os.path.join(d, "asks.csv")
                write_asks_csv(asked, fam, path)
                import csv
                with open(path) as fh:
                    rows = list(csv.DictReader(fh))
                for r, a in zip(rows, asked, strict=True):
                    r["latency_ms"] = repr(phone_ms(a.config))
                with open(path, "w", newline="") as fh:
                    w = csv.DictWriter(fh, fieldnames=list(rows[0]))
                    w.writeheader()
                    w.writerows(rows)
                c.tell_csv(path)
            else:
                for a in asked:
                    c.tell(a.key, phone_ms(a.config))
            rounds += 1
        status = c.status()
    with Store(db, readonly=True) as store:
        return {"asktell": {"its": its(store, "p"), "members": members(store, "p"), "state": status.state,
                            "samples": status.samples}}


def _fleet(d, its, members):
    import itertools

    from acquisition.campaign import CampaignSpec
    from acquisition.fleet_run import run_fleet
    from acquisition.store import Store
    from profiler.fleet import ActorSpec, Fleet, connect, disconnect
    from studies.replay import ReplayOracle, ReplayTable

    def table(scale, family=None):
        rows = [{"a": a, "b": b, "c": c, "ms": scale * 0.05 * a ** 1.5 * b * {"x": 1.0, "y": 1.7, "z": 2.5}[c]
                 + 0.01 * a, "cost": 0.01}
                for a, b, c in itertools.product(range(1, 10), range(1, 10), ("x", "y", "z"))]
        return ReplayTable.from_rows("eqsyn", rows, params=["a", "b", "c"], latency_col="ms", cost_col="cost",
                                     family=family)

    t1 = table(1.0)
    t2 = table(1.8, family=t1.family)
    connect("local", num_cpus=2)
    try:
        specs = [ActorSpec(ReplayOracle(t), num_cpus=0, realtime=False) for t in (t1, t2)]
        spec = CampaignSpec(name="fl", family=t1.family.name, device="fleet", target_spearman=0.9999,
                            budget_samples=60, batch_size=10, initial_size=10, validation_size=10, seed=0,
                            model="gbt", transfer="none")  # transfer between live platforms depends on arrivals
        with Store(os.path.join(d, "fleet.sqlite")) as store, Fleet(specs) as fleet:
            res = run_fleet(store, spec, fleet, t1.family, progress=False)
            out = {}
            for plat, r in sorted(res.items()):
                out[f"fleet-{plat}"] = {"its": its(store, r.name), "members": sorted(members(store, r.name)),
                                        "state": r.state}
            return out
    finally:
        disconnect()


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
