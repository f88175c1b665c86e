"""Using the measurement noise: each row's noise reaches the model (engine and ``fit``), the engine warns when a
target is above the noise floor, campaigns record the floor they ran under, and reports show it."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from acquisition.campaign import CampaignSpec, describe_floor, noise_floor_lines, noise_floor_of
from acquisition.engine import run_campaign
from acquisition.fitting import fit_and_export, load_dataset
from acquisition.report import build_report, render_markdown
from acquisition.store import Store
from profiler.families import get_family
from surrogates import load_bundle
from tests.acquisition.synthetic_profiler import SyntheticProfiler
from tests.quick_models import QUICK
from tests.tables import md_row

FAM = get_family("mbconv")
DOCTOR = {"id": 7, "platform": "5y57e71c0000", "created_at": "2026-11-30T06:00:00.000+00:00", "verdict": "ok",
          "probe_family": "mbconv", "probe_n": 12, "median_diff": 0.012, "worst_diff": 0.08, "within10": 0.92,
          "spearman": 0.998, "seconds": 55.0, "checks": {}, "reasons": []}


class NoisyProfiler(SyntheticProfiler):
    """The synthetic profiler, each measurement with its own noise estimate (as the placements give it)."""

    def measure(self, family: Any, config: dict[str, Any]):
        m = super().measure(family, config)
        if m.timing is not None:
            m.timing = replace(m.timing, placements=3, noise=0.01 + 0.04 * (len(m.key) % 3))
        return m


def spec(name: str = "n1", **kw) -> CampaignSpec:
    base = {"name": name, "family": "mbconv", "strategy": "random", "model": QUICK, "target_spearman": 0.97,
            "budget_samples": 80, "batch_size": 20, "initial_size": 20, "pool_size": 300, "fidelity": "full"}
    base.update(kw)
    return CampaignSpec(**base)


def with_doctor(store: Store, floor: dict[str, Any] | None) -> None:
    """The platform's latest doctor result as the store answers it (``latest_noise_floor``)."""
    store.latest_noise_floor = lambda platform: floor if floor and platform == floor["platform"] else None


@pytest.mark.slow
def test_each_rows_noise_reaches_the_campaigns_model(tmp_path: Path) -> None:
    with Store(tmp_path / "a.sqlite") as store:
        run_campaign(store, spec(), NoisyProfiler(), FAM, bundle_path=str(tmp_path / "n1.bundle"))
        assert all(r["noise"] is not None for r in store.members("n1", "train", status="ok"))
    model = load_bundle(tmp_path / "n1.bundle").model
    assert model.noise_var_ is not None  # the committee learned the measured noise


@pytest.mark.slow
def test_rows_without_noise_fit_the_plain_model(tmp_path: Path) -> None:
    with Store(tmp_path / "a.sqlite") as store:
        run_campaign(store, spec(), SyntheticProfiler(), FAM, bundle_path=str(tmp_path / "n1.bundle"))
    assert load_bundle(tmp_path / "n1.bundle").model.noise_var_ is None


@pytest.mark.slow
def test_fit_and_export_passes_the_stored_noise(tmp_path: Path) -> None:
    with Store(tmp_path / "a.sqlite") as store:
        run_campaign(store, spec(), NoisyProfiler(), FAM)
        ds = load_dataset(store, "mbconv")
        assert np.isfinite(ds.noise).all() and len(ds.noise) == len(ds)
        fit_and_export(store, "mbconv", out=str(tmp_path / "f.bundle"), model="gbt", charge=False)
    assert load_bundle(tmp_path / "f.bundle").model.noise_var_ is not None


def test_a_target_above_the_doctor_floor_warns_and_is_recorded(tmp_path: Path, caplog) -> None:
    with Store(tmp_path / "a.sqlite") as store:
        with_doctor(store, DOCTOR)
        with caplog.at_level(logging.WARNING, logger="latency_acquisition"):
            res = run_campaign(store, spec(target_acc10=0.95, target_spearman=0.999), SyntheticProfiler(), FAM)
        assert res.state in ("met", "budget")  # warned, never refused
        acc = ("campaign n1: a ±10 % target of 95 % on a machine where 92 % of blocks repeat within ±10 % (doctor, "
               "2026-11-30): the target cannot be verified")
        rho = ("campaign n1: a ρ target of 0.999 on a machine where two measurements of the same blocks rank at ρ "
               "0.9980 (doctor, 2026-11-30): the target cannot be verified")
        logged = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert logged.count(acc) == 1 and logged.count(rho) == 1
        recorded = store.get_campaign("n1")["spec"]
        assert recorded["noise_floor"]["source"] == "doctor" and recorded["noise_floor"]["id"] == 7
        assert recorded["noise_warnings"] == [acc, rho]
        assert res.noise_floor["id"] == 7 and res.noise_warnings == [acc, rho]


def test_targets_within_the_floor_do_not_warn(tmp_path: Path, caplog) -> None:
    with Store(tmp_path / "a.sqlite") as store:
        with_doctor(store, DOCTOR)
        with caplog.at_level(logging.INFO, logger="latency_acquisition"):
            res = run_campaign(store, spec(target_acc10=0.9), SyntheticProfiler(), FAM)
    assert not [r for r in caplog.records if "cannot be verified" in r.getMessage()]
    assert res.noise_floor["verdict"] == "ok" and res.noise_warnings == []


def test_no_floor_suggests_doctor_once(tmp_path: Path, caplog) -> None:
    with Store(tmp_path / "a.sqlite") as store, caplog.at_level(logging.INFO, logger="latency_acquisition"):
        res = run_campaign(store, spec(target_acc10=0.99), SyntheticProfiler(), FAM)
    lines = [r for r in caplog.records if "python -m acquisition doctor" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.INFO
    assert res.noise_floor == {"source": "none"} and res.noise_warnings == []


class DoctorBeside(SyntheticProfiler):
    """Measures; after ``after`` measurements a doctor run on the same platform stores a floor."""

    def __init__(self, store: Store, after: int) -> None:
        super().__init__()
        self.store, self.after = store, after

    def measure(self, family: Any, config: dict[str, Any]):
        if self.calls == self.after:
            with_doctor(self.store, DOCTOR)
        return super().measure(family, config)


def test_a_floor_that_appears_later_warns_once(tmp_path: Path, caplog) -> None:
    with Store(tmp_path / "a.sqlite") as store:
        with_doctor(store, None)
        with caplog.at_level(logging.WARNING, logger="latency_acquisition"):
            res = run_campaign(store, spec(target_acc10=0.95, budget_samples=100), DoctorBeside(store, 30), FAM)
        warned = [r.getMessage() for r in caplog.records if "cannot be verified" in r.getMessage()]
        assert len(warned) == 1 and "92 % of blocks" in warned[0]
        assert store.get_campaign("n1")["spec"]["noise_floor"]["id"] == 7
        assert res.noise_warnings == warned


def test_a_resume_keeps_the_record_and_does_not_conflict(tmp_path: Path) -> None:
    with Store(tmp_path / "a.sqlite") as store:
        with_doctor(store, DOCTOR)
        run_campaign(store, spec(target_acc10=0.95, budget_samples=40), SyntheticProfiler(), FAM)
        res = run_campaign(store, spec(target_acc10=0.95, budget_samples=60), SyntheticProfiler(), FAM)
        recorded = store.get_campaign("n1")["spec"]
        assert recorded["budget_samples"] == 60 and recorded["noise_floor"]["id"] == 7
        assert len(recorded["noise_warnings"]) == 1 and res.noise_warnings == recorded["noise_warnings"]


def test_the_repeats_ceiling_is_the_floor_without_a_doctor_run(tmp_path: Path) -> None:
    with Store(tmp_path / "a.sqlite") as store:
        run_campaign(store, spec(), SyntheticProfiler(), FAM)
        again = SyntheticProfiler(noise=0.2)  # the same blocks measured again, much noisier
        for r in store.members("n1", "train", status="ok")[:30]:
            m = again.measure(FAM, r["config"])
            m.timing = replace(m.timing, min_ms=m.timing.min_ms * (1.3 if r["id"] % 2 else 1.0))
            store.record_repeat(m, r["id"])
        floor = noise_floor_of(store, "5y57e71c0000", "mbconv")
    assert floor["source"] == "repeats" and floor["n"] == 30 and floor["within10"] < 0.8
    warnings, info = noise_floor_lines(spec(target_acc10=0.9), floor)
    assert len(warnings) == 1 and "30 re-measured mbconv blocks" in warnings[0] and not info


def test_the_stores_own_doctor_floor_is_read(tmp_path: Path) -> None:
    if not hasattr(Store, "latest_noise_floor"):
        pytest.skip("the store has no noise floors yet (schema 8)")
    with Store(tmp_path / "a.sqlite") as store:
        store.ensure_platform("5y57e71c0000", {"kind": "synthetic"}, "synthetic")
        fid = store.record_noise_floor("5y57e71c0000", {k: v for k, v in DOCTOR.items() if k != "id"})
        floor = noise_floor_of(store, "5y57e71c0000", "mbconv")
    assert floor["source"] == "doctor" and floor["id"] == fid and floor["within10"] == 0.92


@pytest.mark.slow
def test_report_shows_the_floor_and_why_a_cell_is_empty(tmp_path: Path) -> None:
    with Store(tmp_path / "a.sqlite") as store:
        with_doctor(store, DOCTOR)
        run_campaign(store, spec("with", target_acc10=0.95), SyntheticProfiler(), FAM)
        with_doctor(store, None)
        run_campaign(store, spec("without"), SyntheticProfiler(), FAM)
        old = store.get_campaign("without")["spec"]  # a campaign stored before floors were recorded
        store.create_campaign("old", "mbconv", "5y57e71c0000",
                              {k: v for k, v in old.items() if k not in ("noise_floor", "noise_warnings")})
        rep = build_report(store)
    by = {c["name"]: c for c in rep["campaigns"]}
    assert by["with"]["noise_floor"]["id"] == 7 and len(by["with"]["noise_warnings"]) == 1
    md = render_markdown(rep)
    assert "noise floor" in md_row(md, "campaign")  # a column of the campaigns table
    assert "ok: median diff. 1.2 %, worst 8 %, 92.0 % within ±10 % (doctor, 2026-11-30)" in md
    assert "no doctor run on this platform" in md
    assert "not recorded (the campaign ran before noise floors were recorded)" in md
    assert "- campaign with: a ±10 % target of 95 %" in md


def test_describe_floor_of_repeats() -> None:
    floor = {"source": "repeats", "family": "mbconv", "n": 40, "median_diff": 0.027, "worst_diff": 0.19,
             "within10": 0.95, "spearman": 0.998}
    assert describe_floor(floor) == ("no doctor run; median diff. 2.7 %, worst 19 %, 95.0 % within ±10 % "
                                     "(40 re-measured mbconv blocks)")
