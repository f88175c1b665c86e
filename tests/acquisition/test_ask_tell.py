"""Ask/tell (``acquisition.Campaign``): a whole campaign driven through ``tell`` with no profiler, resume across a
re-open, every bad input (one-line error naming the value, nothing stored), the CSV round trip, schema 7, and
``run_campaign`` as the same loop (a run killed mid-batch ends with the very measurements of an uninterrupted one).
"""

from __future__ import annotations

import csv
import doctest
import hashlib
import io
import math
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import acquisition.ask_tell
from acquisition import Campaign, Platform, write_asks_csv
from acquisition.campaign import CampaignError, CampaignSpec
from acquisition.engine import run_campaign
from acquisition.store import SCHEMA_VERSION, Store
from profiler.families import get_family
from tests.acquisition.synthetic_profiler import SyntheticProfiler
from tests.surrogates.synthetic import roofline_ms

ROOT = Path(__file__).resolve().parents[2]
FAM = get_family("mbconv")
PHONE = Platform("pixel-8", device="Pixel 8", runtime="tflite 2.16", threads=4)
# a light campaign: the linear model (its committee fits in milliseconds), small pools
FAST = {"model": "linear", "pool_size": 300, "target_spearman": 0.95, "budget_samples": 200}


def my_latency_ms(config: dict[str, Any]) -> float:
    """The user's own measuring function: a roofline law of the block's counts with 2 % noise, seeded by the
    configuration (the same configuration always measures the same)."""
    cfg = FAM.validate(config)
    seed = int.from_bytes(hashlib.sha256(FAM.key(cfg).encode()).digest()[:4], "little")
    return roofline_ms(FAM.counts(cfg)) * float(np.random.default_rng(seed).lognormal(0.0, 0.02))


def table_counts(db: Path) -> dict[str, int]:
    con = sqlite3.connect(db)
    try:
        return {t: con.execute(f"select count(*) from {t}").fetchone()[0]
                for t in ("measurements", "ledger", "campaign_measurements", "campaign_asks", "iterations")}
    finally:
        con.close()


def open_phone(db: Path, name: str = "pixel", **kw: Any) -> Campaign:
    return Campaign(db, name, family="mbconv", platform=PHONE, **{**FAST, **kw})


def test_a_whole_campaign_through_tell_without_a_profiler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import profiler.worker

    def no_profiler(*a: Any, **k: Any) -> None:
        raise AssertionError("ask/tell must not start a profiler")

    monkeypatch.setattr(profiler.worker.Profiler, "__init__", no_profiler)
    db = tmp_path / "phone.sqlite"
    told = 0
    with open_phone(db, cost_s=1.5) as campaign:
        assert not campaign.done
        while not campaign.done:
            asks = campaign.ask()
            assert asks or campaign.done
            assert len({a.key for a in asks}) == len(asks)
            for a in asks:
                assert a.key == FAM.key(a.config) and a.role == "train" and a.protocol == "external"
                campaign.tell(a.key, my_latency_ms(a.config))
                told += 1
        st = campaign.status()
        assert campaign.ask() == []  # an ended campaign asks for nothing more
        bundle = campaign.export(tmp_path / "pixel.bundle")
    assert st.state == "met" and st.met and st.done and st.pending == 0 and st.failed == 0
    # the bound rule: the lower bound of the verified rho meets the target, from however few rows prove it
    assert st.samples == told < 200 and st.metrics["spearman_lo"] >= 0.95 and st.metrics["n_verify"] >= 15
    assert st.device_hours == pytest.approx(told * 1.5 / 3600)
    with Store(db, readonly=True) as store:
        plat = {p["id"]: p for p in store.platforms()}[PHONE.id]
        assert plat["kind"] == "external" and plat["fingerprint"]["runtime"] == "tflite 2.16"
        rows = list(store.measurements(family="mbconv"))
        assert {(r["platform"], r["protocol"], r["status"]) for r in rows} == {(PHONE.id, "external", "ok")}
        assert len(rows) == told and all(r["min_ms"] == pytest.approx(my_latency_ms(r["config"])) for r in rows)
        assert store.profiling_seconds(campaign="pixel") == pytest.approx(told * 1.5)  # charged once each
        its = store.iterations("pixel")
        assert its[-1]["fired"] and [r["n_train"] for r in its] == sorted(r["n_train"] for r in its)
        acts = {r[0] for r in store.db.execute("select distinct activity from ledger where campaign = 'pixel'")}
        assert {"profile", "fit", "evaluate", "query", "export"} <= acts
        assert store.get_campaign("pixel")["protocol"] == "external"
    from surrogates import load_bundle, spearman

    pred = load_bundle(bundle)
    assert pred.manifest["platform"]["id"] == PHONE.id and pred.manifest["n_train"] == told
    fresh = FAM.space.sample(200, method="random", seed=123)
    assert spearman(np.array([my_latency_ms(c) for c in fresh]), pred.predict(fresh)) > 0.95


def test_asks_are_stored_resumed_and_never_handed_out_twice(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    with open_phone(db, cost_s=2.0) as c:
        first, second = c.ask(5), c.ask(5)
        assert len(first) == len(second) == 5 and not {a.key for a in first} & {a.key for a in second}
        assert all(a.batch == "initial" and a.drawn == "initial" for a in first + second)
        rest = c.ask()
        assert len(rest) == 10 and c.ask() == []  # the initial design (20) is all handed out, nothing told
        for a in first[:3]:
            c.tell(a.key, my_latency_ms(a.config))
        assert len(c.pending()) == 17
    before = table_counts(db)
    assert before["measurements"] == 3 and before["ledger"] == 3 and before["campaign_asks"] == 20
    # a new session (a crash, another process) asks again for the same pending configurations, in order
    with Campaign(db, "pixel") as c:
        again = c.ask()
        assert [a.key for a in again] == [a.key for a in first[3:] + second + rest]
        assert table_counts(db) == before, "asking again stores nothing new and charges nothing"
        for a in again:
            c.tell(a.config, my_latency_ms(a.config))  # by configuration this time
        batch = c.ask()  # every pending one told: the engine fits and asks for its next batch
        assert len(batch) == 20 and {a.batch for a in batch} == {"0"}
        assert {a.drawn for a in batch} == {"random", "strategy"}
        assert not {a.key for a in batch} & {a.key for a in first + second + rest}
        assert c.status().iterations == 1 and c.status().samples == 20
    with Store(db, readonly=True) as store:
        keys = [r["key"] for r in store.members("pixel")]
        assert len(keys) == len(set(keys)) == 20
        assert store.profiling_seconds(campaign="pixel") == pytest.approx(20 * 2.0)


def test_cost_given_or_declared_or_a_function_of_latency(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    with open_phone(db, cost_s=lambda ms: 0.5 + 40 * ms / 1e3) as c:
        a, b, d = c.ask(3)
        c.tell(a.key, 10.0)  # the cost model: 0.5 + 0.4 s
        c.tell(b.key, 10.0, cost_s=7.0)  # given
        c.tell_failed(d.key, "unsupported op: hswish", cost_s=1.0)
    with Store(db, readonly=True) as store:
        got = {r["key"]: r for r in store.members("pixel")}
        assert got[a.key]["cost_s"] == pytest.approx(0.9) and got[b.key]["cost_s"] == 7.0
        assert got[d.key]["status"] == "failed" and got[d.key]["reason"] == "unsupported op: hswish"
    with Campaign(db, "pixel") as c:  # a function is not stored: this session declares none
        e = c.pending()[0]
        with pytest.raises(CampaignError, match="cost_s is missing"):
            c.tell(e.key, 3.0)
        c.tell(e.key, 3.0, cost_s=0.25)
        assert c.status().failed == 1 and c.status().samples == 4


@pytest.mark.parametrize(("latency", "needle"), [
    (0, "latency_ms=0 "), (-1.5, "latency_ms=-1.5"), (math.nan, "latency_ms=nan"), (math.inf, "latency_ms=inf"),
    ("abc", "latency_ms='abc'"), (True, "latency_ms=True"), (None, "latency_ms=None"),
])
def test_bad_latency_is_refused_and_nothing_is_stored(tmp_path: Path, latency: Any, needle: str) -> None:
    db = tmp_path / "l.sqlite"
    with open_phone(db, cost_s=1.0) as c:
        a = c.ask(1)[0]
        before = table_counts(db)
        with pytest.raises(CampaignError, match=needle.replace("(", r"\(")) as exc:
            c.tell(a.key, latency)
        assert "\n" not in str(exc.value)
        assert table_counts(db) == before
        c.tell(a.key, 1.0)  # the same ask is still pending and can be told


def test_bad_tells_name_the_value_and_store_nothing(tmp_path: Path) -> None:
    db = tmp_path / "b.sqlite"
    with open_phone(db) as c:  # no declared cost
        a, b = c.ask(2)
        before = table_counts(db)
        cases = [
            (lambda: c.tell("0123456789abcdef0123", 1.0, cost_s=1), "unknown key '0123456789abcdef0123'"),
            (lambda: c.tell(a.key, 1.0), "cost_s is missing"),
            (lambda: c.tell(a.key, 1.0, cost_s=-2), "cost_s=-2"),
            (lambda: c.tell(a.key, 1.0, cost_s="x"), "cost_s='x'"),
            (lambda: c.tell({**a.config, "kernel": 4}, 1.0, cost_s=1), "kernel"),
            (lambda: c.tell({**a.config, "colour": "red"}, 1.0, cost_s=1), "unknown field 'colour'"),
            (lambda: c.tell(FAM.space.sample(1, seed=99)[0], 1.0, cost_s=1), "has not asked for it"),
            (lambda: c.tell(42, 1.0, cost_s=1), "key_or_config=42"),
            (lambda: c.tell_failed(a.key, "  ", cost_s=1), "reason='  '"),
            (lambda: c.ask(0), "k=0"),
        ]
        for call, needle in cases:
            with pytest.raises(CampaignError, match=needle) as exc:
                call()
            assert "\n" not in str(exc.value)
        assert table_counts(db) == before
        c.tell(a.key, 1.0, cost_s=1)
        with pytest.raises(CampaignError, match=f"key '{a.key}' is already told"):
            c.tell(a.key, 2.0, cost_s=1)
        assert table_counts(db)["measurements"] == 1 and b.key in {p.key for p in c.pending()}


def test_resume_with_another_family_platform_protocol_or_setting_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "m.sqlite"
    with open_phone(db, cost_s=1.0) as c:
        c.ask()
    before = table_counts(db)
    other = Platform("pixel-8", device="Pixel 8", runtime="tflite 2.17", threads=4)
    cases = [
        (dict(family="resv1"), "family 'mbconv', not 'resv1'"),
        (dict(platform=other), f"platform {PHONE.id}, not on this device's platform {other.id}"),
        (dict(protocol="vendor-bench-v2"), "protocol 'external', not 'vendor-bench-v2'"),
        (dict(model="gbt"), "model='gbt' (stored: 'linear')"),
        (dict(platform="feedfacecafe"), "platform 'feedfacecafe' is not in"),
        (dict(fidelity="auto"), "unknown setting 'fidelity'"),
        (dict(budget_samples=0), "budget_samples=0"),
    ]
    for kw, needle in cases:
        with pytest.raises(CampaignError, match=re.escape(needle)) as exc:
            Campaign(db, "pixel", **kw)
        assert "\n" not in str(exc.value)
    assert table_counts(db) == before
    with Campaign(db, "pixel", budget_samples=300, cost_s=2.0) as c:  # the budgets and the cost may change
        assert c.spec.budget_samples == 300 and c.spec.cost_s == 2.0 and len(c.ask()) == 20


def test_creating_needs_a_family_and_a_platform_and_bad_ones_write_nothing(tmp_path: Path) -> None:
    db = tmp_path / "n.sqlite"
    with pytest.raises(CampaignError, match="give family="):
        Campaign(db, "x")
    with pytest.raises(CampaignError, match="give platform="):
        Campaign(db, "x", family="mbconv")
    with pytest.raises(CampaignError, match="platform name 'bad/name'"):
        Campaign(db, "x", family="mbconv", platform=Platform("bad/name"))
    with pytest.raises(CampaignError, match="campaign name 'bad name!'"):
        Campaign(db, "bad name!", family="mbconv", platform=PHONE)
    with pytest.raises(CampaignError, match="target_spearman=2"):
        Campaign(db, "x", family="mbconv", platform=PHONE, target_spearman=2)
    with pytest.raises(CampaignError, match="platform field threads=\\[4\\]"):
        Platform("p", threads=[4])
    assert not db.exists()
    # a campaign measured elsewhere on a platform the database already has (here a CPU run's platform)
    with Store(db) as store:
        run_campaign(store, CampaignSpec(name="cpu", family="mbconv", model="linear", budget_samples=20,
                                         fidelity="full"), SyntheticProfiler(), FAM)
    with Campaign(db, "cpu-elsewhere", family="mbconv", platform="5y57e71c0000", protocol="synthetic-v1",
                  model="linear", transfer="none", cost_s=1.0) as c:
        # the same platform, protocol and seed: the CPU run's initial design is reused (at no cost), not asked for
        # again, and the first batch asked for is the first iteration's
        asks = c.ask()
        st = c.status()
        assert st.samples == 20 and st.iterations == 1 and len(asks) == 20 and {a.batch for a in asks} == {"0"}
        assert c.store.profiling_seconds(campaign="cpu-elsewhere") == 0


def test_csv_round_trip_names_bad_rows_and_stores_all_or_nothing(tmp_path: Path) -> None:
    db = tmp_path / "csv.sqlite"
    with open_phone(db, cost_s=3.0) as c:
        asks = c.ask()
        path = tmp_path / "next.csv"
        assert write_asks_csv(asks, FAM, path) == 20
        lines = path.read_text().splitlines()
        assert lines[0] == ",".join(["key", *FAM.space.names, "latency_ms", "cost_s", "failed"])
        rows = [ln.split(",") for ln in lines[1:]]
        assert [r[0] for r in rows] == [a.key for a in asks] and all(r[-3:] == ["", "", ""] for r in rows)
        # the user measures: latencies filled in; one row by its parameters only, one with its own cost, one
        # failed, one left for later, and one bad row
        filled = [lines[0]]
        for i, (r, a) in enumerate(zip(rows, asks, strict=True)):
            r = list(r)
            if i == 0:
                r[0] = ""  # no key: the parameters name the configuration
            if i != 18:
                r[-3] = f"{my_latency_ms(a.config):.6f}"
            if i == 1:
                r[-2] = "9.5"
            if i == 2:
                r[-3], r[-1] = "", "unsupported op"
            filled.append(",".join(r))
        good = "\n".join(filled) + "\n"
        bad = good.splitlines()
        bad_row = bad[6].split(",")
        bad_row[-3] = "abc"
        bad[6] = ",".join(bad_row)
        bad_other = bad[9].split(",")
        bad_other[-3] = "-1"
        bad[9] = ",".join(bad_other)
        (tmp_path / "measured.csv").write_text("\n".join(bad) + "\n")
        before = table_counts(db)
        with pytest.raises(CampaignError) as exc:
            c.tell_csv(tmp_path / "measured.csv")
        msg = str(exc.value)
        assert msg.startswith("measured.csv line 7: latency_ms 'abc' is not a positive number")
        assert "line(s) 10" in msg and "nothing was stored" in msg and "\n" not in msg
        assert table_counts(db) == before
        # a duplicated key, a key that contradicts its parameters, a config outside the space
        dup = good.splitlines()
        dup.append(dup[5])
        with pytest.raises(CampaignError, match=r"dup.csv line 22: key '\w+' is also on line 6"):
            c.tell_csv(io.StringIO("\n".join(dup) + "\n"), label="dup.csv")
        wrong = good.splitlines()
        cells = wrong[4].split(",")
        cells[0] = asks[5].key
        wrong[4] = ",".join(cells)
        with pytest.raises(CampaignError, match=r"line 5: key .* does not match the parameters in its row"):
            c.tell_csv(io.StringIO("\n".join(wrong) + "\n"))
        outside = good.splitlines()
        cells = outside[3].split(",")
        cells[1 + FAM.space.names.index("kernel")] = "4"
        outside[3] = ",".join(cells)
        with pytest.raises(CampaignError, match="line 4: configuration outside the 'mbconv' space"):
            c.tell_csv(io.StringIO("\n".join(outside) + "\n"))
        with pytest.raises(CampaignError, match="has no 'latency_ms' column"):
            c.tell_csv(io.StringIO("key,cin\n"))
        assert table_counts(db) == before
        done = c.tell_csv(io.StringIO(good))
        assert (done.told, done.failed, done.left) == (18, 1, 1)
        st = c.status()
        assert st.pending == 1 and st.samples == 19 and st.failed == 1
    with Store(db, readonly=True) as store:
        costs = sorted(r["cost_s"] for r in store.members("pixel"))
        assert costs == [3.0] * 18 + [9.5]
        assert store.profiling_seconds(campaign="pixel") == pytest.approx(18 * 3.0 + 9.5)


def test_asking_beside_a_batch_out_thinks_ahead_once(tmp_path: Path) -> None:
    # a device that tells one result at a time and asks again after each: the step beside the last batch (the
    # budget spoken for: it asks for nothing) is taken once, not a fit at every ask() until the batch is told
    with open_phone(tmp_path / "one.sqlite", budget_samples=40, batch_size=10, initial_size=10,
                    target_spearman=0.9999, pipeline="on", cost_s=1.0) as campaign:
        out: list[Any] = []
        while not campaign.done:
            out += campaign.ask()
            if not out:
                break
            a = out.pop(0)
            campaign.tell(a.key, my_latency_ms(a.config))
    with Store(tmp_path / "one.sqlite", readonly=True) as store:
        its = store.iterations("pixel")
        asked = {a["batch"] for a in store.asks("pixel")}
        idle = [k for k, it in enumerate(its) if it["pending"] and str(k) not in asked]
        assert len(idle) <= 1, f"steps beside a batch that asked for nothing: {idle} of {len(its)}"
        assert any(it["pending"] for it in its) and its[-1]["n_train"] == 40


@pytest.mark.slow
# sequential: the rest of the second batch is pending after 24 measurements; pipelined: the third batch too
@pytest.mark.parametrize(("pipeline", "pending", "iterations"), [("off", 6, 2), ("on", 16, 3)])
def test_run_is_the_same_loop_and_a_kill_mid_batch_changes_nothing(pipeline: str, pending: int, iterations: int,
                                                                   tmp_path: Path) -> None:
    """run_campaign asks, profiles and tells: a run interrupted in the middle of a batch re-asks the pending
    configurations on resume, so it ends with exactly the measurements of an uninterrupted run."""

    class Interrupted(Exception):
        pass

    class Flaky(SyntheticProfiler):
        def __init__(self, stop_at: int) -> None:
            super().__init__()
            self.stop_at = stop_at

        def measure(self, family: Any, config: dict[str, Any], *a: Any) -> Any:
            if self.calls + 1 == self.stop_at:
                raise Interrupted
            return super().measure(family, config)

    def spec() -> CampaignSpec:
        return CampaignSpec(name="c", family="mbconv", model="linear", strategy="representative", batch_size=10,
                            initial_size=10, pool_size=300, budget_samples=60, target_spearman=0.9999,
                            fidelity="full", pipeline=pipeline)

    def members(db: Path) -> list[tuple[str, str, str]]:
        with Store(db, readonly=True) as store:
            return [(r["key"], r["drawn"], r["role"]) for r in store.members("c")]

    with Store(tmp_path / "whole.sqlite") as store:
        whole = run_campaign(store, spec(), SyntheticProfiler(), FAM)
    with Store(tmp_path / "killed.sqlite") as store:
        with pytest.raises(Interrupted):
            run_campaign(store, spec(), Flaky(stop_at=25), FAM)  # in the middle of the second batch
        assert len(store.pending_asks("c")) == pending and store.iteration_count("c") == iterations
        prof = SyntheticProfiler()
        resumed = run_campaign(store, spec(), prof, FAM)
        assert prof.calls == 60 - 24, "only what was not measured is measured"
    assert whole.state == resumed.state == "budget"
    assert members(tmp_path / "killed.sqlite") == members(tmp_path / "whole.sqlite")


def test_schema_6_database_gains_asks_and_an_old_campaign_resumes(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite"
    spec = CampaignSpec(name="old", family="mbconv", model="linear", budget_samples=20, fidelity="full")
    with Store(db) as store:
        run_campaign(store, spec, SyntheticProfiler(), FAM)
        store.db["campaign_asks"].drop()
        store.db["campaigns"].transform(drop={"protocol"})
        store.db.execute("PRAGMA user_version = 6")
    with Store(db, readonly=True) as ro:  # read-only: no migration, no asks
        assert ro.schema_version == 6 and ro.pending_asks("old") == []
        assert ro.get_campaign("old").get("protocol") is None
    with Store(db) as store:
        assert store.schema_version == SCHEMA_VERSION == 10 and "campaign_asks" in store.db.table_names()
        assert {"pred_log", "pred_n"} <= set(store.db["campaign_asks"].columns_dict)
        assert {"stop_rule", "fired", "cv_spearman"} <= set(store.db["iterations"].columns_dict)
        assert store.get_campaign("old")["protocol"] is None
        spec.budget_samples = 40
        res = run_campaign(store, spec, SyntheticProfiler(), FAM)  # finds its initial design measured
        assert res.n_train == 40 and store.get_campaign("old")["protocol"] == "synthetic-v1"
        assert [a["batch"] for a in store.asks("old")] == ["1"] * 20


def test_import_acquisition_is_light_and_the_docstring_example_runs() -> None:
    code = ("import sys, acquisition; assert 'torch' not in sys.modules and 'sklearn' not in sys.modules; "
            "from acquisition import Campaign, Platform; assert 'torch' not in sys.modules; print('ok')")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
    for module in (acquisition.ask_tell.campaign, acquisition.ask_tell.platform):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        assert result.attempted > 0 and result.failed == 0


@pytest.mark.slow
def test_the_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    readme = (ROOT / "README.md").read_text()
    code = next(b for b in re.findall(r"```python\n(.*?)```", readme, flags=re.S) if "from acquisition import" in b)
    assert "def my_latency_ms" in code and "campaign.tell(" in code and "campaign.ask()" in code
    assert "budget_samples=400" in code
    monkeypatch.chdir(tmp_path)
    exec(compile(code.replace("budget_samples=400", "budget_samples=40"), "README.md", "exec"), {})  # a short run
    out = capsys.readouterr().out
    assert out.startswith("campaign pixel: budget; 40 samples") and (tmp_path / "pixel.bundle").is_file()
    # the README's predict example, on the bundle just exported (the same family)
    predict = next(b for b in re.findall(r"```python\n(.*?)```", readme, flags=re.S) if "load_bundle(" in b)
    exec(compile(predict.replace('"default.bundle"', '"pixel.bundle"'), "README.md", "exec"), {})
    assert float(capsys.readouterr().out.strip().strip("[]")) > 0  # one latency in ms


# -- the shell: python -m acquisition ask / tell -----------------------------------------------------------------
def fill_in(src: Path, dst: Path, *, bad_line: int | None = None) -> int:
    """The user's side of the shell workflow: measure every configuration of ``ask``'s CSV with
    :func:`my_latency_ms` and save the file with ``latency_ms`` filled in (line ``bad_line`` gets 'abc')."""
    with src.open(newline="") as fh:
        reader = csv.DictReader(fh)
        fields, rows = reader.fieldnames, list(reader)
    for i, r in enumerate(rows):
        cfg = FAM.validate(FAM.space.coerce({p: r[p] for p in FAM.space.names}))
        r["latency_ms"] = "abc" if bad_line == i + 2 else f"{my_latency_ms(cfg):.6f}"
    with dst.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    return len(rows)


def test_ask_and_tell_from_the_shell_until_the_target_is_met(tmp_path: Path) -> None:
    from acquisition.cli import main
    from tests.acquisition.test_cli import assert_one_line_error, run_cli

    db, nxt, measured = tmp_path / "s.sqlite", tmp_path / "next.csv", tmp_path / "measured.csv"
    base = ["--db", str(db), "--campaign", "pixel"]
    new = [*base, "--family", "mbconv", "--platform-name", "pixel-8", "--platform-field", "device=Pixel 8",
           "--platform-field", "threads=4", "--cost-s", "2", "--model", "linear", "--pool-size", "300",
           "--target-spearman", "0.95", "--budget-samples", "200"]
    # bad input: one line, exit 2, nothing written
    for argv, needle in [
        (["ask", *base, "--out", str(nxt)], "--family"),
        (["ask", *base, "--family", "mbconv", "--out", str(nxt)], "--platform-name"),
        (["ask", *new, "--platform-field", "threads", "--out", str(nxt)], "--platform-field 'threads'"),
        (["ask", *new, "--n", "0", "--out", str(nxt)], "--n"),
        (["ask", *new, "--cost-s", "-1", "--out", str(nxt)], "--cost-s"),
        (["ask", *new, "--family", "nope", "--out", str(nxt)], "nope"),
        (["ask", *new, "--out", str(tmp_path / "no" / "next.csv")], "--out"),
        (["tell", *base, "--csv", str(measured)], str(db)),
    ]:
        code, out, err = run_cli(*argv, entry=main)
        assert code == 2, (argv, err)
        assert_one_line_error(err, needle)
        assert not db.exists() and not nxt.exists()
    code, out, err = run_cli("ask", *new, "--n", "20", "--out", str(nxt), entry=main)
    assert code == 0, err
    first = nxt.read_text()
    assert first.splitlines()[0] == ",".join(["key", *FAM.space.names, "latency_ms", "cost_s", "failed"])
    assert len(first.splitlines()) == 21 and "asked for 20 configuration(s)" in err
    # asked again (a new process): the same configurations, nothing new stored
    before = table_counts(db)
    code, out, err = run_cli("ask", *base, "--out", "-", entry=main)
    assert code == 0 and out == first and table_counts(db) == before
    # a resume with another family is refused, nothing written
    code, out, err = run_cli("ask", *base, "--family", "resv1", "--out", str(nxt), entry=main)
    assert code == 2 and table_counts(db) == before and nxt.read_text() == first
    assert_one_line_error(err, "family 'mbconv', not 'resv1'")
    # a bad row: named by its line, nothing stored
    fill_in(nxt, measured, bad_line=7)
    code, out, err = run_cli("tell", *base, "--csv", str(measured), entry=main)
    assert code == 2 and table_counts(db) == before
    assert_one_line_error(err, "measured.csv line 7: latency_ms 'abc' is not a positive number")
    told = 0
    for _ in range(15):
        n = fill_in(nxt, measured)
        told += n
        code, out, err = run_cli("tell", *base, "--csv", str(measured), entry=main)
        assert code == 0, err
        assert out.startswith(f"told {n} measurement(s) and 0 failure(s) to campaign pixel")
        code, out, err = run_cli("ask", *base, "--out", str(nxt), entry=main)
        assert code == 0, err
        if len(nxt.read_text().splitlines()) == 1:  # nothing more to ask: done
            break
    assert "campaign pixel: met" in err and "predictor bundle" in err
    assert (tmp_path / "pixel.bundle").is_file()
    with Store(db, readonly=True) as store:
        assert store.get_campaign("pixel")["state"] == "met"
        assert store.profiling_seconds(campaign="pixel") == pytest.approx(told * 2.0)
        assert len(store.members("pixel")) == told and store.pending_asks("pixel") == []
    code, out, err = run_cli("status", "--db", str(db), entry=main)
    assert code == 0 and "pixel" in out


def test_a_holdout_campaign_asks_for_its_validation_set_first(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    with open_phone(db, cost_s=1.0, verification="holdout", validation_size=10, initial_size=10, batch_size=10) as c:
        val = c.ask()
        assert len(val) == 10 and {(a.role, a.drawn, a.batch) for a in val} == {("validation", "validation",
                                                                                  "validation")}
        for a in val:
            c.tell(a.key, my_latency_ms(a.config))
        init = c.ask()
        assert len(init) == 10 and {a.role for a in init} == {"train"} and not {a.key for a in init} & {
            a.key for a in val}
        for a in init:
            c.tell(a.key, my_latency_ms(a.config))
        assert len(c.ask()) == 10 and c.status().iterations == 1 and c.status().samples == 10
        acts = dict(c.store.db.execute("select activity, count(*) from ledger where campaign = 'pixel' and activity "
                                       "like '%profile' group by activity").fetchall())
        assert acts == {"validation_profile": 10, "profile": 10}


def test_the_cli_module_docstring_example_runs() -> None:
    import acquisition.cli.ask_tell

    result = doctest.testmod(acquisition.cli.ask_tell)
    assert result.attempted > 0 and result.failed == 0


# -- create_campaign / load_campaign (as Optuna's create_study / load_study) --------------------------------------
def test_create_refuses_a_stored_name_and_load_refuses_a_missing_one(tmp_path: Path) -> None:
    from acquisition import create_campaign, load_campaign

    db = tmp_path / "a.sqlite"
    with pytest.raises(CampaignError, match=r"campaign 'p' is not in .*create_campaign\(db, 'p'") as e:
        load_campaign(db, "p")
    assert len(str(e.value).splitlines()) == 1 and not db.exists()
    phone = Platform("pixel-8", device="Pixel 8")
    with create_campaign(db, "p", family="mbconv", platform=phone, cost_s=1.0, budget_samples=60) as c:
        first = c.ask()
        c.tell(first[0].key, my_latency_ms(first[0].config))
    before = table_counts(db)
    with pytest.raises(CampaignError, match=r"campaign 'p' is already in .*load_campaign\(db, 'p'\) resumes it"):
        create_campaign(db, "p", family="mbconv", platform=phone)
    assert table_counts(db) == before  # nothing written by the refusal
    with create_campaign(db, "p", family="mbconv", platform=phone, load_if_exists=True) as c:
        assert [a.key for a in c.ask()] == [a.key for a in first[1:]]  # the same pending asks
    with load_campaign(db, "p", budget_samples=80) as c:  # a budget may change on resuming
        assert c.spec.budget_samples == 80 and c.spec.cost_s == 1.0 and c.platform == phone.id
        assert c.status().samples == 1
    with pytest.raises(CampaignError, match="batch_size"):  # any other setting may not
        load_campaign(db, "p", batch_size=7)
    assert table_counts(db) == before


def test_create_campaign_checks_like_campaign(tmp_path: Path) -> None:
    from acquisition import create_campaign

    with pytest.raises(CampaignError, match="unknown setting 'budget'"):
        create_campaign(tmp_path / "a.sqlite", "p", family="mbconv", platform=Platform("x"), budget=3)
    with pytest.raises(CampaignError, match=r"directory .* does not exist"):
        create_campaign(tmp_path / "no" / "a.sqlite", "p", family="mbconv", platform=Platform("x"))
