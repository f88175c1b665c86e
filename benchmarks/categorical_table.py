"""A categorical architecture table built from the TF-NAS lookup tables (issue 27, item 6).

Whole-network latencies of a 21-layer MobileNetV2-like skeleton (TF-NAS's ImageNet stages), one categorical
choice per layer: kernel 3 or 5 and expansion 3, 4 or 6 (``k3e4``...), and ``skip`` on the layers that repeat a
stage's shape. A network's latency is the sum of its blocks' rows in the TF-NAS table (no squeeze-excite), so the
table has the shape of the categorical NAS tables of edge boards (one column per layer, the latency of the whole
network), with the latencies of two real devices::

    python benchmarks/categorical_table.py --tfnas ../shared/data/tfnas_mbconv_latency.csv \\
        --out benchmarks/out/categorical/tfnas-networks.csv --rows 3000

Columns: ``L01`` ... ``L21`` (text: a choice), ``device``, ``latency_ms``. The same networks on both devices.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys

import numpy as np

# (input_hw, cin, cout, stride, repeats) per stage; every repeat after the first keeps the shape: it may be skipped
STAGES = ((112, 16, 24, 2, 1), (56, 24, 24, 1, 3), (56, 24, 40, 2, 1), (28, 40, 40, 1, 3), (28, 40, 80, 2, 1),
          (14, 80, 80, 1, 3), (14, 80, 112, 1, 1), (14, 112, 112, 1, 3), (14, 112, 192, 2, 1), (7, 192, 192, 1, 3),
          (7, 192, 320, 1, 1))
CHOICES = tuple(f"k{k}e{e}" for k in (3, 5) for e in (3, 4, 6))


def layers() -> list[tuple[int, int, int, int]]:
    """(input_hw, cin, cout, stride) of each of the 21 layers."""
    return [(hw, cin, cout, s) for hw, cin, cout, s, n in STAGES for _ in range(n)]


def block_table(path: str) -> dict[tuple, float]:
    """(device, input_hw, cin, cout, stride, kernel, mid) -> latency_ms of the table's blocks without SE."""
    out = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if int(r["se_channels"]) == 0:
                out[(r["device"], int(r["input_hw"]), int(r["cin"]), int(r["cout"]), int(r["stride"]),
                     int(r["kernel"]), int(r["mid_channels"]))] = float(r["latency_ms"])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tfnas", required=True, help="the TF-NAS table (tfnas_mbconv_latency.csv)")
    ap.add_argument("--out", required=True, help="CSV to write")
    ap.add_argument("--rows", type=int, default=3000, help="networks per device (default 3000)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if a.rows < 1:
        print(f"error: --rows={a.rows} is not allowed: expected an integer >= 1", file=sys.stderr)
        return 2
    table = block_table(a.tfnas)
    devices = sorted({k[0] for k in table})
    shape = layers()
    rng = np.random.default_rng(a.seed)
    nets: set[tuple[str, ...]] = set()
    while len(nets) < a.rows:
        net = tuple(str(rng.choice(CHOICES + (("skip",) if (i > 0 and shape[i] == shape[i - 1]) else ())))
                    for i in range(len(shape)))
        nets.add(net)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"L{i + 1:02d}" for i in range(len(shape))] + ["device", "latency_ms"])
        for dev in devices:
            for net in sorted(nets):
                total = 0.0
                for (hw, cin, cout, s), c in zip(shape, net, strict=True):
                    if c != "skip":
                        total += table[(dev, hw, cin, cout, s, int(c[1]), int(c[3]) * cin)]
                w.writerow([*net, dev, f"{total:.6g}"])
    print(f"{a.out}: {len(nets)} networks x {len(devices)} devices ({', '.join(devices)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
