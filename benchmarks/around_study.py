"""What ``--around`` does to accuracy on real models per device-hour (mbconv, this CPU).

Usage (from the repository root, alone on the machine; after ``benchmarks/real_models.py`` has filled ``--db``
with the models' glue and whole-model measurements and the ``mbv2`` calibration networks):

    python benchmarks/around_study.py --db benchmarks/out/real/real.sqlite --seeds 0 1 2 3 4

Per seed, two mbconv campaigns in fresh databases: over the whole space, and ``--around`` four mobile networks
(``AROUND``). Each runs to ``--budgets`` samples in turn (resumed to the next), its bundle exported at each;
every bundle predicts the ten mobile networks of ``benchmarks/real_models.py`` (the four served and six others),
raw and calibrated by family on ``mbv2`` networks, against their measurements in ``--db``. Prints, per arm and
budget, the device hours (the campaign's bill) and the median over seeds of MAPE and ±10 % on the ten models (the
learning curve per device-hour), then the device hours at which the around arm first matches the whole-space
arm's best ±10 %, against the hours the whole-space arm first needed for it; writes ``around_study.json`` to
``--out``. ``--summarise`` prints the summary of a finished study's JSON again.
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.getcwd())

AROUND = "torchvision:mobilenet_v2,torchvision:mnasnet1_0,timm:mobilenetv2_140,timm:spnasnet_100"
MOBILE = ["torchvision:mobilenet_v2", "torchvision:mnasnet0_5", "torchvision:mnasnet0_75", "torchvision:mnasnet1_0",
          "torchvision:mnasnet1_3", "timm:mobilenetv2_050", "timm:mobilenetv2_140", "timm:mnasnet_100",
          "timm:spnasnet_100", "timm:mobilenetv2_100"]


def run(cmd: list[str]) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def summarise(rows: list[dict], seeds: list[int], budgets: list[int]) -> None:
    """Medians over seeds per arm and budget (the learning curve per device-hour), and the device hours at which
    the around arm first matches the whole-space arm's best accuracy, against the hours the whole-space arm took."""
    import numpy as np

    print(f"{'arm':<12} {'budget':>6} {'device h':>9} {'raw MAPE':>9} {'raw +-10':>9} {'cal MAPE':>9} {'cal +-10':>9}"
          f"  (medians over {len(seeds)} seeds)")
    med: dict[tuple[str, int], dict[str, float]] = {}
    for arm in ("whole space", "around"):
        for budget in budgets:
            sel = [r for r in rows if r["arm"] == arm and r["budget"] == budget]
            med[arm, budget] = {k: float(np.median([r[k] for r in sel])) for k in
                                ("device_hours", "raw_mape", "raw_acc10", "cal_mape", "cal_acc10")}
            m = med[arm, budget]
            print(f"{arm:<12} {budget:>6} {m['device_hours']:>9.4f} {m['raw_mape']:>9.1f} {100 * m['raw_acc10']:>9.0f}"
                  f" {m['cal_mape']:>9.1f} {100 * m['cal_acc10']:>9.0f}")
    # the whole-space arm's best median accuracy and the first budget that reaches it (its curve need not rise)
    for kind in ("raw", "cal"):
        goal = max(med["whole space", b][f"{kind}_acc10"] for b in budgets)
        first = next(b for b in budgets if med["whole space", b][f"{kind}_acc10"] >= goal)
        hit = next((b for b in budgets if med["around", b][f"{kind}_acc10"] >= goal), None)
        where = f"the whole space's best +-10 % {100 * goal:.0f} % (first at {first} samples)"
        if hit is None:
            print(f"{kind}: around never reaches {where}")
        else:
            ratio = med["around", hit]["device_hours"] / med["whole space", first]["device_hours"]
            print(f"{kind}: around reaches {where} at {hit} samples, {ratio:.2f}x the device hours (target <= 0.5x)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", required=True, help="the database with the models' and calibration networks' measurements")
    ap.add_argument("--out", default="benchmarks/out/around")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--budgets", type=int, nargs="+", default=[50, 100, 150, 250])
    ap.add_argument("--cache", default="benchmarks/out/real/cache")
    ap.add_argument("--summarise", action="store_true", help="only print the summary of --out's around_study.json")
    args = ap.parse_args()
    if args.summarise:
        with open(os.path.join(args.out, "around_study.json")) as fh:
            rows = json.load(fh)
        summarise(rows, sorted({r["seed"] for r in rows}), sorted({r["budget"] for r in rows}))
        return 0
    os.makedirs(args.out, exist_ok=True)
    models = os.path.join(args.out, "mobile.txt")
    with open(models, "w") as fh:
        fh.write("\n".join(MOBILE) + "\n")
    rows = []
    for seed in args.seeds:
        for arm, extra in (("whole space", []), ("around", ["--around", AROUND])):
            tag = f"{'around' if extra else 'whole'}-s{seed}"
            db = os.path.join(args.out, f"{tag}.sqlite")
            for budget in args.budgets:
                bundle = os.path.join(args.out, f"{tag}-{budget}.bundle")
                run([sys.executable, "-m", "acquisition", "run", "--family", "mbconv", "--db", db, "--campaign", tag,
                     "--seed", str(seed), "--target-spearman", "0.99", "--target-acc10", "0.9", "--budget-samples",
                     str(budget), "--bundle", bundle, "--no-progress", *extra])
                from acquisition.bill import campaign_bill
                from acquisition.store import Store

                with Store(db, readonly=True) as store:
                    hours = campaign_bill(store, tag).hours
                row = {"arm": arm, "seed": seed, "budget": budget, "device_hours": hours}
                for label, cal in (("raw", []), ("cal", ["--calibrate-space", "mbv2", "--calibrate", "20"])):
                    out = os.path.join(args.out, f"eval-{tag}-{budget}-{label}")
                    run([sys.executable, "-m", "nas", "evaluate", "--models-from", models, "--bundle", bundle, *cal,
                         "--db", args.db, "--cache", args.cache, "--out", out, "--no-progress"])
                    with open(os.path.join(out, "real_models.json")) as fh:
                        m = json.load(fh)["metrics"]
                    row.update({f"{label}_mape": m["mape"], f"{label}_acc10": m["acc10"],
                                f"{label}_coverage80": m["coverage80"]})
                rows.append(row)
                print(rows[-1], flush=True)
    with open(os.path.join(args.out, "around_study.json"), "w") as fh:
        json.dump(rows, fh, indent=1)
    summarise(rows, args.seeds, args.budgets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
