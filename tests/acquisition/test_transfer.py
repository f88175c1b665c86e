"""Transfer sources, the probe set, and campaigns that learn from other platforms (acquisition/transfer.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from acquisition.campaign import CampaignError, CampaignSpec
from acquisition.cli import _print_sources
from acquisition.engine import run_campaign
from acquisition.profiling import profile_configs
from acquisition.report import build_report, render_markdown
from acquisition.store import Store
from acquisition.transfer import (
    PROBE_SEED,
    TransferError,
    TransferSource,
    bundle_source,
    judge_sources,
    probe_configs,
    store_sources,
)
from profiler.families import get_family
from surrogates import FeatureEncoder, load_bundle
from tests.acquisition.synthetic_profiler import SyntheticProfiler
from tests.quick_models import QUICK
from tests.tables import has_row

FAM = get_family("mbconv")
# the new platform computes 4x slower and moves memory 2x slower than the source: related, not proportional
SOURCE = {"platform": "5ource000001", "law": {}}
TARGET = {"platform": "7arget000001", "law": {"gmacs_per_s": 5.0, "gbytes_per_s": 4.0, "layer_us": 25.0}}


def prof(which: dict, noise: float = 0.02) -> SyntheticProfiler:
    return SyntheticProfiler(noise=noise, platform=which["platform"], law=which["law"])


def spec(name: str = "t", **kw) -> CampaignSpec:
    base = {"name": name, "family": "mbconv", "strategy": "random", "model": QUICK, "target_spearman": 0.99,
            "budget_samples": 120, "batch_size": 20, "initial_size": 20, "pool_size": 400, "fidelity": "full",
            "transfer": "auto", "stop_on_target": False}
    base.update(kw)
    return CampaignSpec(**base)


@pytest.fixture(scope="module")
def source_db(tmp_path_factory) -> Path:
    """A store holding 300 measurements of mbconv on the source platform."""
    db = tmp_path_factory.mktemp("src") / "s.sqlite"
    with Store(db) as store:
        p = prof(SOURCE)
        store.ensure_platform(p.platform_id, p.fingerprint, p.device.spec)
        profile_configs(store, p, FAM, FAM.space.sample(300, seed=11), progress=False)
    return db


def test_store_sources_are_the_other_platforms(source_db: Path) -> None:
    with Store(source_db, readonly=True) as store:
        (src,) = store_sources(store, FAM, TARGET["platform"])
        assert src.name == f"store:{SOURCE['platform']}" and len(src.configs) == 300 and src.kind == "store"
        assert store_sources(store, FAM, SOURCE["platform"]) == []  # its own platform is not a source
        assert store_sources(store, FAM, TARGET["platform"], "none") == []
        assert len(store_sources(store, FAM, TARGET["platform"], [SOURCE["platform"]])) == 1
        with pytest.raises(TransferError, match="'nope' has no ok 'mbconv' measurement"):
            store_sources(store, FAM, TARGET["platform"], ["nope"])
        with pytest.raises(TransferError, match="is the campaign's own platform"):
            store_sources(store, FAM, SOURCE["platform"], [SOURCE["platform"]])
        assert store_sources(store, get_family("resv1"), TARGET["platform"]) == []


def test_bad_sources_are_refused_with_their_name() -> None:
    cfgs = FAM.space.sample(40, seed=1)
    with pytest.raises(TransferError, match="'s' has 10 rows"):
        TransferSource("s", "table", cfgs[:10], np.ones(10))
    with pytest.raises(TransferError, match="40 configurations but 39 latencies"):
        TransferSource("s", "table", cfgs, np.ones(39))
    with pytest.raises(TransferError, match="not a positive number"):
        TransferSource("s", "table", cfgs, np.r_[np.ones(39), -1.0])


@pytest.mark.slow
def test_judging_keeps_agreeing_sources_and_ignores_the_rest(source_db: Path) -> None:
    enc = FeatureEncoder(FAM)
    with Store(source_db, readonly=True) as store:
        (good,) = store_sources(store, FAM, TARGET["platform"])
    shuffled = TransferSource("shuffled", "table", good.configs,
                              np.random.default_rng(0).permutation(good.latency_ms))
    models = [good.fit(enc), shuffled.fit(enc)]
    probes = FAM.space.sample(20, seed=5)
    target = prof(TARGET)
    measured = np.array([target.measure(FAM, c).timing.min_ms for c in probes])
    j = judge_sources([good, shuffled], models, enc, probes, measured)
    assert j[0].used and j[0].agreement > 0.9
    assert not j[1].used and "agreement" in j[1].reason
    j = judge_sources([good, good], models[:1] * 2, enc, probes, measured, max_sources=1)
    assert [x.used for x in j].count(True) == 1 and "better sources" in next(x.reason for x in j if not x.used)


def test_the_probe_set_is_the_same_for_every_seed_and_platform() -> None:
    def draw(n, method, seed, exclude):
        return FAM.space.sample(n, method=method, seed=seed, family=FAM.name, exclude=exclude)

    a, b = probe_configs(draw, 20), probe_configs(draw, 20)
    assert a == b == draw(20, "sobol", PROBE_SEED, set())


@pytest.mark.slow
def test_a_campaign_learns_from_a_related_platform(source_db: Path, tmp_path: Path, capsys) -> None:
    db = tmp_path / "t.sqlite"
    with Store(source_db, readonly=True) as s:
        sources = store_sources(s, FAM, TARGET["platform"])
    with Store(db) as store:
        res = run_campaign(store, spec("with", budget_samples=60), prof(TARGET), FAM, sources=sources,
                           bundle_path=str(tmp_path / "w.bundle"))
        _print_sources(res, store.campaign_sources("with"))
        out = capsys.readouterr().out
        assert "transfer: 1 of 1 source(s) used; the final model stands on them" in out
        assert f"store:{SOURCE['platform']}: 300 rows, agreement on the probe set 0.9" in out
        run_campaign(store, spec("without", budget_samples=60, transfer="none"), prof(TARGET), FAM,
                     bundle_path=str(tmp_path / "p.bundle"))
        rec = store.campaign_sources("with")
        assert [r["used"] for r in rec] == [True] and rec[0]["agreement"] > 0.9
        assert rec[0]["detail"]["platform"] == SOURCE["platform"]
        its = store.iterations("with")
        assert all(it["model"].startswith("transfer:") and it["transfer_gain"] > 0 for it in its)
        assert all(it["model"] == QUICK and it["transfer_gain"] is None for it in store.iterations("without"))
        acts = {r[0] for r in store.db.execute("select distinct activity from ledger where campaign = 'with'")}
        assert "transfer" in acts
        rep = build_report(store)
        by = {c["name"]: c for c in rep["campaigns"]}
        assert by["with"]["sources"][0]["used"] and by["without"]["sources"] == []
        assert by["with"]["final_model"] in ("transfer:gp", "transfer:linear-gbt")
        md = render_markdown(rep)
        assert "## Transfer sources" in md and has_row(md, "with", f"store:{SOURCE['platform']}", "store", "300")
    pred, plain = load_bundle(tmp_path / "w.bundle", family="mbconv"), load_bundle(tmp_path / "p.bundle")
    assert pred.manifest["extra"]["transfer"] == {"sources": [f"store:{SOURCE['platform']}"],
                                                  "model_uses_them": True}
    assert plain.manifest["extra"]["transfer"] == {"sources": [], "model_uses_them": False}
    cfgs = FAM.space.sample(100, seed=77)
    truth = np.array([prof(TARGET).measure(FAM, c).timing.min_ms for c in cfgs])
    err = {k: float(np.median(np.abs(p.predict(cfgs) / truth - 1))) for k, p in (("with", pred), ("no", plain))}
    assert err["with"] < 0.7 * err["no"], err


@pytest.mark.slow
def test_an_unrelated_source_is_not_used(source_db: Path, tmp_path: Path) -> None:
    with Store(source_db, readonly=True) as s:
        (src,) = store_sources(s, FAM, TARGET["platform"])
    bad = TransferSource("shuffled", "table", src.configs, np.random.default_rng(3).permutation(src.latency_ms))
    with Store(tmp_path / "u.sqlite") as store:
        run_campaign(store, spec("u", budget_samples=60), prof(TARGET), FAM, sources=[bad])
        (rec,) = store.campaign_sources("u")
        assert not rec["used"]
        assert all(not it["model"].startswith("transfer:") for it in store.iterations("u"))
        assert all(it["transfer_gain"] is None for it in store.iterations("u"))


def test_a_holdout_campaign_of_one_model_compares_it_with_the_transfer_model_out_of_fold(
        source_db: Path, tmp_path: Path) -> None:
    """The naive way with transfer (one model, a validation set): both models are fitted in committees so that
    they can be compared out of fold (this raised AttributeError: no oof_log_ on a bare model)."""
    with Store(source_db, readonly=True) as s:
        sources = store_sources(s, FAM, TARGET["platform"])
    with Store(tmp_path / "h.sqlite") as store:
        res = run_campaign(store, spec("h", verification="holdout", validation_size=20, budget_samples=60),
                           prof(TARGET), FAM, sources=sources, bundle_path=str(tmp_path / "h.bundle"))
        its = store.iterations("h")
        assert res.n_validation == 20 and its and all(it["verification"] == "holdout" for it in its)
        assert any(it["transfer_gain"] is not None for it in its)  # the two models were compared
    assert load_bundle(tmp_path / "h.bundle").manifest["n_train"] == res.n_train + 20  # refitted with validation


def test_sources_need_transfer_on(source_db: Path, tmp_path: Path) -> None:
    with Store(source_db, readonly=True) as s:
        sources = store_sources(s, FAM, TARGET["platform"])
    with Store(tmp_path / "n.sqlite") as store, pytest.raises(CampaignError, match="transfer='none'"):
        run_campaign(store, spec("n", transfer="none"), prof(TARGET), FAM, sources=sources)
    with pytest.raises(CampaignError, match="transfer='maybe' is not allowed"):
        spec("n", transfer="maybe").validate()


def test_a_bundle_is_a_source(source_db: Path, tmp_path: Path) -> None:
    with Store(source_db) as store:
        run_campaign(store, spec("src", transfer="none", budget_samples=60), prof(SOURCE), FAM,
                     bundle_path=str(tmp_path / "src.bundle"))
    src = bundle_source(tmp_path / "src.bundle", FAM, n=200)
    assert src.kind == "bundle" and len(src.configs) == 200 and src.detail["platform"] == SOURCE["platform"]
    with pytest.raises(TransferError, match="cannot be used"):
        bundle_source(tmp_path / "src.bundle", get_family("resv1"))
    with pytest.raises(TransferError, match="cannot be used"):
        bundle_source(tmp_path / "missing.bundle", FAM)


@pytest.mark.slow
def test_a_source_that_agreed_with_the_probes_by_chance_is_dropped_as_rows_come_in(tmp_path: Path) -> None:
    """The source knows the target's latency on the probe set and nothing elsewhere (random latencies): it
    passes the first judgement, and is dropped once the campaign's own rows show it."""
    probes = FAM.space.sample(20, method="sobol", seed=PROBE_SEED, family=FAM.name)
    others = FAM.space.sample(280, seed=21)
    target = prof(TARGET)
    y_probes = [target.measure(FAM, c).timing.min_ms for c in probes]
    rng = np.random.default_rng(0)
    lucky = TransferSource("lucky", "table", probes + others,
                           np.r_[y_probes, rng.permutation(np.geomspace(0.05, 50, len(others)))])
    with Store(tmp_path / "l.sqlite") as store:
        run_campaign(store, spec("l", budget_samples=100), target, FAM, sources=[lucky])
        its = store.iterations("l")
        assert its[0]["model"].startswith("transfer:"), "the probes alone vouch for it"
        assert its[-1]["model"] == QUICK and its[-1]["transfer_gain"] is None
        (rec,) = store.campaign_sources("l")
        assert not rec["used"] and rec["agreement"] < 0.5 and rec["detail"]["judged_on"] == 100
