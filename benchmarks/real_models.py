"""Real models on this CPU: predicted (blocks from bundles + glue measured) against measured whole.

Usage (from the repository root; one thread, batch 1, 224 x 224):

    python -m acquisition run --family resv1 --db real.sqlite --campaign resv1 --bundle resv1.bundle ...
    python -m acquisition run --family mbconv --db real.sqlite --campaign mbconv --bundle mbconv.bundle ...
    (the same for mbconvx and resv1x)
    python benchmarks/real_models.py --db real.sqlite --bundle resv1.bundle --bundle mbconv.bundle \
        --bundle mbconvx.bundle --bundle resv1x.bundle --out out/real

It measures the glue of every model and every model whole (stored in ``--db``, reused on a second run), prints
the per-model table (measured, predicted, error, 80 % interval, block coverage) and ρ, MAPE, ±10 % over the
models, raw and calibrated by family on networks of our own spaces (``mbv2``, ``mbv3``, ``resnet``, ``resnext``;
never the real models), overall and per model group, writes ``real_models.json`` and ``real_models.png`` to
``--out``/raw and ``--out``/calibrated, and times ``nas predict`` of 100 models (the models here, repeated) from
cached decompositions, cold (a fresh process), median of ``--repeats``.
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.getcwd())

MODELS = [
    "torchvision:resnet18", "torchvision:resnet34", "torchvision:resnet50", "torchvision:resnet101",
    "torchvision:resnet152", "torchvision:mobilenet_v2", "torchvision:mnasnet0_5", "torchvision:mnasnet0_75",
    "torchvision:mnasnet1_0", "torchvision:mnasnet1_3", "timm:resnet26", "timm:mobilenetv2_050",
    "timm:mobilenetv2_140", "timm:mnasnet_100", "timm:spnasnet_100", "timm:mobilenetv2_100", "timm:resnet18",
    "timm:resnet34", "timm:resnet50",
    # the general families (mbconvx, resv1x)
    "torchvision:mobilenet_v3_large", "torchvision:mobilenet_v3_small", "torchvision:efficientnet_b0",
    "torchvision:efficientnet_b1", "timm:mobilenetv3_large_100", "timm:mobilenetv3_small_100",
    "timm:mobilenetv3_large_075", "timm:efficientnet_b0", "timm:efficientnet_lite0", "timm:semnasnet_100",
    "timm:tinynet_a", "torchvision:resnext50_32x4d", "torchvision:wide_resnet50_2", "timm:resnext50_32x4d",
]
# model groups for the summary by group (first pattern that the name contains)
GROUPS = (("ResNeXt / Wide ResNet", ("resnext", "wide_")), ("ResNet", ("resnet",)),
          ("MobileNetV3 / EfficientNet", ("mobilenet_v3", "mobilenetv3", "efficientnet", "semnasnet", "tinynet")),
          ("MobileNetV2 / MNASNet", ("mobilenet", "mnasnet", "spnasnet")))


def group_of(name: str) -> str:
    return next(g for g, pats in GROUPS if any(p in name for p in pats))


def by_group(res: dict) -> dict[str, dict[str, float]]:
    """MAPE, share within +-10 % and interval coverage per model group."""
    out: dict[str, dict[str, float]] = {}
    for g, _ in GROUPS:
        rows = [r for r in res["models"] if group_of(r["model"]) == g and r.get("error_pct") is not None]
        if rows:
            err = [abs(r["error_pct"]) for r in rows]
            inside = [r["p10_ms"] <= r["measured_ms"] <= r["p90_ms"] for r in rows]
            out[g] = {"n": len(rows), "mape": sum(err) / len(err), "acc10": sum(e <= 10 for e in err) / len(err),
                      "coverage80": sum(inside) / len(inside)}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--bundle", action="append", required=True)
    ap.add_argument("--out", default="benchmarks/out/real")
    ap.add_argument("--cache", default="benchmarks/out/real/cache")
    ap.add_argument("--calibrate-space", action="append", default=None,
                    help="our own spaces to calibrate on, one line per family (default: mbv2, mbv3, resnet, resnext)")
    ap.add_argument("--calibrate", type=int, default=20, help="networks per calibration space (20)")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    models_file = os.path.join(args.out, "models.txt")
    with open(models_file, "w") as fh:
        fh.write("\n".join(MODELS) + "\n")
    bundles = [a for b in args.bundle for a in ("--bundle", b)]
    spaces = [a for sp in (args.calibrate_space or ["mbv2", "mbv3", "resnet", "resnext"])
              for a in ("--calibrate-space", sp)]
    results = {}
    for label, extra in (("raw", []), ("calibrated", [*spaces, "--calibrate", str(args.calibrate)])):
        out = os.path.join(args.out, label)
        cmd = [sys.executable, "-m", "nas", "evaluate", "--models-from", models_file, *bundles, *extra, "--db",
               args.db, "--cache", args.cache, "--out", out, "--device", "cpu", "--threads", "1", "--no-progress"]
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        with open(os.path.join(out, "real_models.json")) as fh:
            results[label] = json.load(fh)
    cal = []
    # nas predict of 100 models from the cached decompositions, cold
    hundred = os.path.join(args.out, "hundred.txt")
    with open(hundred, "w") as fh:
        fh.write("\n".join((MODELS * 6)[:100]) + "\n")
    walls = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "nas", "predict", "--models-from", hundred, *bundles, *cal,
                            "--db", args.db, "--cache", args.cache, "--json"], capture_output=True, text=True)
        walls.append(time.perf_counter() - t0)
        if r.returncode != 0:
            print(r.stderr)
            return 1
    walls.sort()
    print(f"nas predict of 100 models from cached decompositions, cold: median {walls[len(walls) // 2]:.2f} s "
          f"over {len(walls)} runs (min {walls[0]:.2f}, max {walls[-1]:.2f})")
    for label, res in results.items():
        m = res.get("metrics", {})
        print(label, json.dumps({"n": res["n"], **{k: m.get(k) for k in ("spearman", "mape", "acc10", "coverage80",
                                                                         "min_block_coverage")}}))
        for g, v in by_group(res).items():
            print(f"  {label} {g}: {v['n']} models, MAPE {v['mape']:.1f} %, +-10 % {100 * v['acc10']:.0f} %, "
                  f"80 % interval coverage {100 * v['coverage80']:.0f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
