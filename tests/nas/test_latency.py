from __future__ import annotations

import os

import numpy as np
import pytest

from nas.latency import Calibration, NetworkLatencyModel
from nas.network import NetworkError
from nas.spaces import get_space
from surrogates import load_bundle
from tests.nas.conftest import OVERHEAD_MS, SLOPE, network_ms


@pytest.fixture(scope="module")
def model(bundle_dir: str) -> NetworkLatencyModel:
    return NetworkLatencyModel.load([os.path.join(bundle_dir, "mbconv.bundle"),
                                     os.path.join(bundle_dir, "resv1.bundle")])


def test_raw_prediction_is_the_sum_of_block_predictions(model, bundle_dir) -> None:
    nets = get_space("stacked-resv1").sample(5, seed=0)
    pred = load_bundle(os.path.join(bundle_dir, "resv1.bundle"))
    expected = [sum(pred.predict([b.config])[0] for b in n.blocks) for n in nets]
    d = model.predict_dist(nets)
    np.testing.assert_allclose(d.block_sum_ms, expected, rtol=1e-9)
    np.testing.assert_allclose(d.median_ms, expected, rtol=1e-9)  # identity calibration
    assert np.all(d.log_std > 0)
    # the cache answers a repeat identically
    np.testing.assert_allclose(model.predict(nets), expected, rtol=1e-9)


def test_calibration_recovers_a_known_overhead(model) -> None:
    nets = get_space("stacked-resv1").sample(40, seed=1)
    y = np.asarray([network_ms(n) for n in nets])
    raw = model.predict(nets)
    cal = model.calibrate(nets[:12], y[:12])
    assert cal.n == 12 and cal.intercept_ms >= 0 and cal.std_scale >= 1.0
    after = model.predict(nets[12:])
    assert np.mean(np.abs(after / y[12:] - 1)) < np.mean(np.abs(raw[12:] / y[12:] - 1))
    assert cal.slope == pytest.approx(SLOPE, rel=0.15)
    assert cal.intercept_ms == pytest.approx(OVERHEAD_MS, abs=0.3)
    model.calibration = Calibration(platform=model.platform)


def test_few_networks_fit_the_slope_only() -> None:
    cal = Calibration.fit([1.0, 2.0], [1.2, 2.4])
    assert cal.intercept_ms == 0.0 and cal.slope == pytest.approx(1.2)
    with pytest.raises(NetworkError, match="positive and finite"):
        Calibration.fit([1.0, -2.0], [1.0, 2.0])
    with pytest.raises(NetworkError, match="matching, non-empty"):
        Calibration.fit([], [])


def test_prob_within_and_interval(model) -> None:
    nets = get_space("stacked-mbconv").sample(4, seed=2)
    d = model.predict_dist(nets)
    lo, hi = d.interval(0.8)
    assert np.all(lo < d.median_ms) and np.all(d.median_ms < hi)
    p_small, p_med, p_big = (d.prob_within(b) for b in (1e-3, float(d.median_ms[0]), 1e6))
    assert np.all(p_small < 0.01) and p_med[0] == pytest.approx(0.5) and np.all(p_big > 0.99)


def test_missing_family_and_platform_errors(model, bundle_dir, tmp_path) -> None:
    only_mb = NetworkLatencyModel.load([os.path.join(bundle_dir, "mbconv.bundle")])
    with pytest.raises(NetworkError, match=r"block 0 is of family .resv2., which has no bundle \(bundles for: mbconv"):
        only_mb.predict(get_space("stacked-resv2").sample(1))
    with pytest.raises(NetworkError, match="two bundles for family 'mbconv'"):
        NetworkLatencyModel.load([os.path.join(bundle_dir, "mbconv.bundle")] * 2)
    with pytest.raises(NetworkError, match="calibration was fitted on platform 'elsewhere'"):
        NetworkLatencyModel(model.predictors, Calibration(platform="elsewhere"))


def test_calibration_file_roundtrip_and_errors(tmp_path) -> None:
    cal = Calibration(0.5, 1.08, 1.3, 10, "p")
    p = tmp_path / "c.json"
    cal.save(p)
    assert Calibration.load(p) == cal
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(NetworkError, match="is not a calibration file"):
        Calibration.load(tmp_path / "bad.json")
    with pytest.raises(NetworkError, match="cannot be read"):
        Calibration.load(tmp_path / "missing.json")
