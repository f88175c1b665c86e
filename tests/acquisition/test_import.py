"""``python -m acquisition import``: a recorded many-device table becomes one ``recorded`` platform per device,
importing again adds only what is new, every bad table is a one-line error naming its line and column that stores
nothing, and the imported platforms are transfer sources of a new platform."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from acquisition.importing import RECORDED_PROTOCOL, recorded_platform
from acquisition.store import Store
from acquisition.transfer import store_sources
from profiler.families import get_family
from tests.acquisition.test_cli import run_cli

FAM = get_family("mbconv")
CFGS = FAM.space.sample(40, seed=4)


def write_table(path: Path, rows: list[dict], columns: list[str] | None = None) -> Path:
    columns = columns or [*FAM.space.names, "device", "latency_ms"]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def table_rows(devices=("jetson", "pixel")) -> list[dict]:
    macs = [FAM.counts(c).macs for c in CFGS]
    return [{**c, "device": d, "latency_ms": f"{(k + 1) * 1e-6 * m + 0.02:.6f}"}
            for k, d in enumerate(devices) for c, m in zip(CFGS, macs, strict=True)]


def test_a_table_becomes_one_recorded_platform_per_device(tmp_path: Path) -> None:
    table = write_table(tmp_path / "zoo.csv", table_rows())
    db = tmp_path / "s.sqlite"
    code, out, err = run_cli("import", "--csv", str(table), "--family", "mbconv", "--device-col", "device",
                             "--db", str(db))
    assert code == 0, err
    pid, fp = recorded_platform("jetson", str(table))
    assert f"jetson: platform {pid}, 40 measurement(s) added, 0 already stored" in out
    with Store(db, readonly=True) as store:
        plats = {p["id"]: p for p in store.platforms()}
        assert plats[pid]["kind"] == "recorded" and plats[pid]["fingerprint"] == fp
        rows = list(store.measurements(family="mbconv", platform=pid))
        assert len(rows) == 40 and {r["protocol"] for r in rows} == {RECORDED_PROTOCOL}
        assert {r["stop"] for r in rows} == {"recorded"}
        assert store.profiling_seconds() == 0, "a recorded row cost this project no device time"
        # both devices are transfer sources of a new platform
        srcs = store_sources(store, FAM, "new-platform")
        assert sorted(s.detail["platform"] for s in srcs) == sorted([pid, recorded_platform("pixel", str(table))[0]])
    code, out, _ = run_cli("import", "--csv", str(table), "--family", "mbconv", "--device-col", "device",
                           "--db", str(db))
    assert code == 0 and "0 measurement(s) added, 40 already stored" in out


def test_the_filter_and_units(tmp_path: Path) -> None:
    table = write_table(tmp_path / "zoo.csv", table_rows())
    db = tmp_path / "f.sqlite"
    code, out, err = run_cli("import", "--csv", str(table), "--family", "mbconv", "--device-col", "device",
                             "--where", "device=pixel", "--unit", "s", "--db", str(db))
    assert code == 0 and "on 1 recorded platform(s)" in out, err
    with Store(db, readonly=True) as store:
        (plat,) = store.platforms()
        ms = np.array([r["min_ms"] for r in store.measurements(family="mbconv")])
        assert plat["fingerprint"]["name"] == "pixel" and ms.min() > 20  # seconds read as seconds


@pytest.mark.parametrize(("change", "needle"), [
    (lambda rows: rows[3].update(latency_ms="-1"), "line 5: column 'latency_ms' holds '-1': expected a positive"),
    (lambda rows: rows[7].update(latency_ms="fast"), "line 9: column 'latency_ms' holds 'fast'"),
    (lambda rows: rows[2].update(cin="3"), "line 4: cin=3 is not allowed"),
    (lambda rows: rows[5].update(device=""), "line 7: column 'device' is empty"),
    (lambda rows: rows.append({**rows[0], "latency_ms": "9.0"}), "lines 2 and 82 hold the same configuration on "
                                                                  "device 'jetson' with different latencies"),
])
def test_a_bad_row_is_named_and_stores_nothing(tmp_path: Path, change, needle: str) -> None:
    rows = table_rows()
    change(rows)
    table = write_table(tmp_path / "bad.csv", rows)
    db = tmp_path / "b.sqlite"
    with Store(db):
        pass
    code, _, err = run_cli("import", "--csv", str(table), "--family", "mbconv", "--device-col", "device",
                           "--db", str(db))
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    with Store(db, readonly=True) as store:
        assert list(store.measurements()) == [] and store.platforms() == []


def test_missing_columns_and_files(tmp_path: Path) -> None:
    table = write_table(tmp_path / "t.csv", table_rows(), [*FAM.space.names, "board", "latency_ms"])
    code, _, err = run_cli("import", "--csv", str(table), "--family", "mbconv", "--device-col", "device",
                           "--db", str(tmp_path / "m.sqlite"))
    assert code == 2 and "column 'device' is not in the table t.csv: columns are" in err
    code, _, err = run_cli("import", "--csv", str(tmp_path / "nope.csv"), "--family", "mbconv", "--device-col",
                           "device", "--db", str(tmp_path / "m.sqlite"))
    assert code == 2 and "does not exist" in err
    code, _, err = run_cli("import", "--csv", str(table), "--family", "mbconv", "--device-col", "board",
                           "--where", "board", "--db", str(tmp_path / "m.sqlite"))
    assert code == 2 and "--where 'board' is not allowed: expected COLUMN=VALUE" in err
