"""The cost report as a person reads it: platforms named by what they are, one definition of device hours in the
campaigns table and on the learning curves, and an HTML page whose tables are built to fit it (the page itself is
opened in a real browser by ``test_report_browser.py``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from acquisition.campaign import CampaignSpec
from acquisition.engine import run_campaign
from acquisition.report import _html, build_report, render_markdown, write_report
from acquisition.store import Store
from profiler.devices import CpuDevice, platform_id, platform_label
from profiler.families import get_family
from tests.acquisition.synthetic_profiler import SyntheticProfiler
from tests.quick_models import QUICK
from tests.tables import has_row

CAMPAIGNS = (("one-thread-holdout", 1, "holdout"), ("two-threads-cv", 2, "cv"))


class CpuLikeProfiler(SyntheticProfiler):
    """The synthetic profiler's instant, seeded measurements, on a platform fingerprinted exactly as this machine's
    CPU with ``threads`` threads would be (the report must name it by what it is)."""

    def __init__(self, threads: int) -> None:
        super().__init__()
        self.device = CpuDevice(threads=threads)
        self.fingerprint = self.device.fingerprint()
        self.platform_id = platform_id(self.fingerprint)


def build_store(path: Path) -> dict[str, dict]:
    """A store with two finished campaigns on two CPU platforms (1 and 2 threads): a holdout campaign with a
    validation set, and a cv one; bundles beside the store. Returns each campaign's fingerprint by name."""
    fam = get_family("mbconv")
    fingerprints = {}
    with Store(path) as store:
        for name, threads, verification in CAMPAIGNS:
            prof = CpuLikeProfiler(threads)
            spec = CampaignSpec(name=name, family="mbconv", strategy="representative", model=QUICK,
                                target_spearman=0.9999, budget_samples=60, batch_size=20, initial_size=20,
                                validation_size=30, pool_size=300, fidelity="full", verification=verification,
                                stop_on_target=False)
            run_campaign(store, spec, prof, fam, bundle_path=str(path.parent / f"{name}.bundle"))
            fingerprints[name] = prof.fingerprint
    return fingerprints


@pytest.fixture(scope="module")
def store_path(tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    path = tmp_path_factory.mktemp("report") / "r.sqlite"
    return path, build_store(path)


@pytest.mark.slow
def test_platforms_are_named_by_what_they_are(store_path) -> None:
    path, fps = store_path
    with Store(path, readonly=True) as store:
        rep = build_report(store)
    md = render_markdown(rep)
    for c in rep["campaigns"]:
        label = platform_label(fps[c["name"]])
        assert c["platform_label"] == label and c["platform"] == platform_id(fps[c["name"]])
        # what it is, then its short id: in the campaigns table and in the platforms table
        assert has_row(md, c["name"], "mbconv", f"{label} `{c['platform']}`")
        assert has_row(md, label, f"`{c['platform']}`", "cpu")
    assert {p["label"] for p in rep["platforms"]} == {platform_label(fp) for fp in fps.values()}
    assert "1 thread, float32, batch 1" in md and "2 threads, float32, batch 1" in md
    assert all(r["platform_label"] for r in rep["by_platform_family"])


def test_learning_curve_hours_are_the_campaigns_bill(store_path) -> None:
    path, _ = store_path
    with Store(path, readonly=True) as store:
        rep = build_report(store)
    by = {c["name"]: c for c in rep["campaigns"]}
    hold, cv = by["one-thread-holdout"], by["two-threads-cv"]
    assert hold["validation_samples"] == 30 and hold["validation_hours"] > 0 and cv["validation_hours"] == 0
    for c in (hold, cv):
        hours = [p["profiling_s"] / 3600 for p in c["learning_curve"]]
        assert hours == sorted(hours) and len(hours) == c["iterations"] >= 3
        # the curve ends where the table's device hours are: the same bill, validation included
        assert hours[-1] == pytest.approx(c["profiling_hours"], rel=1e-12)
        assert hours[0] > c["validation_hours"]  # the first fit comes after the validation set and initial design
    assert "validation set included" in render_markdown(rep)


@pytest.mark.slow
def test_html_tables_wrap_and_show_the_ids_small(store_path, tmp_path: Path) -> None:
    path, fps = store_path
    with Store(path, readonly=True) as store:
        files = write_report(store, str(tmp_path), fmt="html")
        rep = json.loads(Path(write_report(store, str(tmp_path / "json"), fmt="json")[0]).read_text())
    page = Path(files[0]).read_text()
    assert "table{border-collapse:collapse;max-width:100%" in page and "overflow-wrap:break-word" in page
    assert '<table class="wide">' in page  # the 16-column campaigns table gets the smaller font
    label = platform_label(fps["one-thread-holdout"])
    pid = {c["name"]: c["platform"] for c in rep["campaigns"]}["one-thread-holdout"]
    assert f"<td>{label} <code>{pid}</code></td>" in page
    assert "<p>Device hours are each campaign's bill" in page  # paragraphs are rendered, not dropped
    imgs = re.findall(r'<img src="([^"]+)"', page)
    assert {f"{n}_learning_curve.png" for n, _, _ in CAMPAIGNS} <= set(imgs)
    assert all((tmp_path / i).stat().st_size > 0 for i in imgs)


def test_html_renders_inline_code_bold_and_numbers() -> None:
    page = _html("# T\n\n- a **b** `c<d>`\n\n| x | y |\n| --- | --- |\n| 0.0123 | name `id` |\n")
    assert "<li>a <strong>b</strong> <code>c&lt;d&gt;</code></li>" in page
    assert '<td class="num">0.0123</td>\n<td>name <code>id</code></td>' in page
    assert '<div class="table"><table>' in page  # a narrow table keeps the normal font
