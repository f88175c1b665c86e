"""The default ``run`` on this CPU, pipelined against sequential (issue 30): how long the device waits for the engine.

For each seed, ``python -m acquisition run`` (the README's command: mbconv on the CPU, every default) runs twice
in fresh directories, once with ``--pipeline off`` and once with ``--pipeline on`` (the order alternates by seed,
so a drift of the machine touches both alike), each alone on the machine. From each run's database it reads:

- samples when the campaign stopped (its own stop rule: ``run`` has no never-seen rows), its state;
- device busy seconds (its measurements' cost, the ledger's ``profile`` rows) and idle seconds (``device_idle``:
  the device waiting for the engine, from the first ask to the last result) and their sum, the device's wall;
- the engine's seconds (fit, evaluate, query, export, transfer) and the process's whole wall (imports, worker
  start and export included).

It prints one row per run and the medians per mode: the idle share of the device's wall (target <= 15 %
pipelined), the engine's share of the process wall, samples at the stop (target: the same median), and the
paired ratios. JSON to ``--out``.

    python benchmarks/default_run_clock.py --seeds 10 --out benchmarks/out/default_run   # ~12 min, alone
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENGINE = ("fit", "evaluate", "query", "export", "transfer")


def one_run(seed: int, mode: str) -> dict:
    d = tempfile.mkdtemp(prefix=f"run-{mode}-")
    db = os.path.join(d, "acquisition.sqlite")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "acquisition", "run", "--db", db, "--seed", str(seed),
                           "--pipeline", mode, "--no-progress", "--bundle", os.path.join(d, "default.bundle")],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"run failed ({mode}, seed {seed}): {proc.stderr[-400:]}")
    con = sqlite3.connect(db)
    acts = dict(con.execute("select activity, sum(seconds) from ledger group by activity").fetchall())
    name, state = con.execute("select name, state from campaigns").fetchone()
    n = con.execute("select count(distinct m.key) from campaign_measurements cm join measurements m on m.id = "
                    "cm.measurement_id where cm.campaign = ? and cm.role = 'train'", [name]).fetchone()[0]
    its = con.execute("select n_train, fired, inflight from iterations where campaign = ? order by id", [name]
                      ).fetchall()
    con.close()
    busy = acts.get("profile", 0.0) + acts.get("validation_profile", 0.0)
    idle = acts.get("device_idle", 0.0)
    fired = next((r for r in its if r[1]), None)
    return {"seed": seed, "mode": mode, "state": state, "samples": n, "decided_at": fired[0] if fired else None,
            "busy_s": busy, "idle_s": idle, "device_wall_s": busy + idle,
            "idle_share": idle / (busy + idle) if busy + idle else float("nan"),
            "engine_s": sum(acts.get(a, 0.0) for a in ENGINE), "process_wall_s": wall,
            "iterations": len(its)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--out", default="benchmarks/out/default_run")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    runs = []
    for seed in range(args.seeds):
        for mode in (("off", "on") if seed % 2 == 0 else ("on", "off")):
            r = one_run(seed, mode)
            runs.append(r)
            print(f"seed {seed} {mode:>3}: {r['state']:<6} {r['samples']:>4} samples  "
                  f"device {r['device_wall_s']:5.1f} s "
                  f"(idle {r['idle_s']:4.1f} s = {100 * r['idle_share']:4.1f} %)  engine {r['engine_s']:4.1f} s  "
                  f"process {r['process_wall_s']:5.1f} s", flush=True)
    summary = {}
    for mode in ("off", "on"):
        rs = [r for r in runs if r["mode"] == mode]
        summary[mode] = {k: statistics.median(r[k] for r in rs) for k in
                         ("samples", "idle_share", "idle_s", "device_wall_s", "engine_s", "process_wall_s")}
        summary[mode]["engine_share_of_process"] = statistics.median(r["engine_s"] / r["process_wall_s"] for r in rs)
        summary[mode]["states"] = sorted(r["state"] for r in rs)
    pairs = {(r["seed"], r["mode"]): r for r in runs}
    seeds = range(args.seeds)
    summary["ratio_on_off"] = {k: statistics.median(pairs[(s, "on")][k] / pairs[(s, "off")][k] for s in seeds)
                               for k in ("samples", "device_wall_s", "process_wall_s")}
    print("\n| mode | samples at stop | device wall s | idle s | idle share | engine s | process wall s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for mode, label in (("off", "sequential"), ("on", "pipelined")):
        m = summary[mode]
        print(f"| {label} | {m['samples']:.0f} | {m['device_wall_s']:.1f} | {m['idle_s']:.1f} | "
              f"{100 * m['idle_share']:.1f} % | {m['engine_s']:.1f} | {m['process_wall_s']:.1f} |")
    r = summary["ratio_on_off"]
    print(f"paired ratios pipelined / sequential (median over {args.seeds} seeds): samples {r['samples']:.3f}, "
          f"device wall {r['device_wall_s']:.3f}, process wall {r['process_wall_s']:.3f}")
    with open(os.path.join(args.out, "default_run_clock.json"), "w") as fh:
        json.dump({"runs": runs, "summary": summary}, fh, indent=1)


if __name__ == "__main__":
    main()
